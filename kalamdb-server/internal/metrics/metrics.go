// Package metrics holds kalamdb-server's Prometheus metrics: HTTP requests by
// route and status with their latency, storage-backend operation counts and
// latency (through an instrumented StorageBackend), flushes, and buffered
// rows. Each Metrics has its own registry, so tests and servers in one
// process never share counters.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "kalamdb"

// FlushTriggers are the values of the trigger label of kalamdb_flush_total.
var FlushTriggers = []string{"manual", "policy", "shutdown"}

// CompactionTriggers are the values of the trigger label of
// kalamdb_compaction_total: "manual" (POST …/compact, a major compaction)
// and "policy" (after a policy flush).
var CompactionTriggers = []string{"manual", "policy"}

// Metrics is the set of metrics of one server.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge
	connections  prometheus.Gauge
	refused      *prometheus.CounterVec

	storageOps      *prometheus.CounterVec
	storageDuration *prometheus.HistogramVec

	flushes       *prometheus.CounterVec
	flushRows     prometheus.Counter
	flushDuration prometheus.Histogram

	compactions        *prometheus.CounterVec
	compactionSegments prometheus.Counter
	compactionDropped  prometheus.Counter
	compactionDuration prometheus.Histogram
}

// New returns a Metrics with its own registry, which also carries the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests handled, by route pattern, method and status code.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to handle an HTTP request, by route pattern and method.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	m.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_in_flight",
		Help: "HTTP requests being handled now.",
	})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "http", Name: "connections",
		Help: "Client connections open now.",
	})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "connections_refused_total",
		Help: "Client connections closed on arrival, by the bound they exceeded (server.max_connections, server.max_connections_per_client).",
	}, []string{"limit"})
	m.storageOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "storage", Name: "operations_total",
		Help: "Storage backend operations, by backend, operation and result (ok, not_found, error).",
	}, []string{"backend", "op", "result"})
	m.storageDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "storage", Name: "operation_duration_seconds",
		Help:    "Latency of storage backend operations, by backend and operation.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12), // 1µs … ~4s
	}, []string{"backend", "op"})
	m.flushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "flush", Name: "total",
		Help: "Table flushes, by trigger (manual, policy, shutdown) and result (ok, error).",
	}, []string{"trigger", "result"})
	m.flushRows = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "flush", Name: "rows_total",
		Help: "Rows written to Parquet segments by flushes.",
	})
	m.flushDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "flush", Name: "duration_seconds",
		Help:    "Time one table flush took.",
		Buckets: prometheus.ExponentialBuckets(.001, 4, 10), // 1ms … ~4min
	})
	m.compactions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "compaction", Name: "total",
		Help: "Table compactions that merged segments (result ok) or failed (result error), by trigger (manual, policy).",
	}, []string{"trigger", "result"})
	m.compactionSegments = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "compaction", Name: "segments_merged_total",
		Help: "Parquet segments merged away by compactions.",
	})
	m.compactionDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "compaction", Name: "versions_dropped_total",
		Help: "Row versions that compactions left out: superseded versions and tombstones.",
	})
	m.compactionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "compaction", Name: "duration_seconds",
		Help:    "Time one table compaction that merged segments took.",
		Buckets: prometheus.ExponentialBuckets(.001, 4, 10), // 1ms … ~4min
	})
	m.reg.MustRegister(
		m.httpRequests, m.httpDuration, m.httpInFlight, m.connections, m.refused,
		m.storageOps, m.storageDuration,
		m.flushes, m.flushRows, m.flushDuration,
		m.compactions, m.compactionSegments, m.compactionDropped, m.compactionDuration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, trigger := range FlushTriggers {
		m.flushes.WithLabelValues(trigger, "ok")
		m.flushes.WithLabelValues(trigger, "error")
	}
	for _, trigger := range CompactionTriggers {
		m.compactions.WithLabelValues(trigger, "ok")
		m.compactions.WithLabelValues(trigger, "error")
	}
	return m
}

// Registry returns the registry holding the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Route returns the metrics of one HTTP route, resolved once so that
// observing a request does not look labels up.
func (m *Metrics) Route(route, method string) *RouteMetrics {
	r := &RouteMetrics{m: m, route: route, method: method, duration: m.httpDuration.WithLabelValues(route, method),
		byStatus: make(map[int]prometheus.Counter, len(commonStatuses))}
	for _, s := range commonStatuses {
		r.byStatus[s] = m.httpRequests.WithLabelValues(route, method, strconv.Itoa(s))
	}
	return r
}

// commonStatuses are resolved up front for every route; others are looked
// up when they happen.
var commonStatuses = []int{200, 201, 204, 400, 401, 403, 404, 409, 413, 415, 500}

// RouteMetrics observes the requests of one route.
type RouteMetrics struct {
	m        *Metrics
	route    string
	method   string
	duration prometheus.Observer
	// byStatus holds the counters of commonStatuses; read-only once built.
	byStatus map[int]prometheus.Counter
}

// Begin marks a request as in flight; call the returned function with its
// status when it ends.
func (r *RouteMetrics) Begin() func(status int) {
	start := time.Now()
	r.m.httpInFlight.Inc()
	return func(status int) {
		r.m.httpInFlight.Dec()
		r.duration.Observe(time.Since(start).Seconds())
		r.counter(status).Inc()
	}
}

func (r *RouteMetrics) counter(status int) prometheus.Counter {
	if c, ok := r.byStatus[status]; ok {
		return c
	}
	return r.m.httpRequests.WithLabelValues(r.route, r.method, strconv.Itoa(status))
}

// ConnectionOpened counts a client connection that was accepted.
func (m *Metrics) ConnectionOpened() { m.connections.Inc() }

// ConnectionClosed counts a client connection that closed.
func (m *Metrics) ConnectionClosed() { m.connections.Dec() }

// ConnectionRefused counts a connection closed on arrival because it
// exceeded the bound named by limit.
func (m *Metrics) ConnectionRefused(limit string) { m.refused.WithLabelValues(limit).Inc() }

// ObserveCompaction records one table compaction that merged merged
// segments and dropped dropped versions, or failed; a compaction that found
// nothing to merge is not counted.
func (m *Metrics) ObserveCompaction(trigger string, merged int, dropped int64, d time.Duration, err error) {
	if err != nil {
		m.compactions.WithLabelValues(trigger, "error").Inc()
		return
	}
	if merged == 0 {
		return
	}
	m.compactions.WithLabelValues(trigger, "ok").Inc()
	m.compactionSegments.Add(float64(merged))
	m.compactionDropped.Add(float64(dropped))
	m.compactionDuration.Observe(d.Seconds())
}

// ObserveFlush records one table flush.
func (m *Metrics) ObserveFlush(trigger string, rows int, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.flushes.WithLabelValues(trigger, result).Inc()
	if err == nil {
		m.flushRows.Add(float64(rows))
		m.flushDuration.Observe(d.Seconds())
	}
}

// BufferedRows registers a gauge, kalamdb_buffered_rows, whose value is
// asked of count at every scrape.
func (m *Metrics) BufferedRows(count func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "buffered_rows",
		Help: "Rows held in table buffers (the storage backend) and not yet flushed to Parquet.",
	}, count))
}

// ColdTier registers the gauges of the cold tier's health, whose values
// are asked of failing (tables whose last flush or compaction failed) and
// lastFailure (zero: none since start) at every scrape:
// kalamdb_cold_tier_healthy (1 when no table is failing, else 0),
// kalamdb_cold_tier_failing_tables and
// kalamdb_cold_tier_last_failure_timestamp_seconds (0 when none).
func (m *Metrics) ColdTier(failing func() int, lastFailure func() time.Time) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "cold_tier", Name: "healthy",
			Help: "1 while every table's last flush and compaction to Parquet succeeded, 0 while one fails (its rows stay buffered; see the log).",
		}, func() float64 {
			if failing() > 0 {
				return 0
			}
			return 1
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "cold_tier", Name: "failing_tables",
			Help: "Tables whose last flush or compaction to Parquet failed; the scheduler retries them with backoff.",
		}, func() float64 { return float64(failing()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "cold_tier", Name: "last_failure_timestamp_seconds",
			Help: "Unix time of the latest failed flush or compaction to Parquet; 0 when none since start.",
		}, func() float64 {
			t := lastFailure()
			if t.IsZero() {
				return 0
			}
			return float64(t.UnixNano()) / 1e9
		}),
	)
}
