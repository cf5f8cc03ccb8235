package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
)

// ObjectStore registers the metrics of the object store that holds the
// segments, read at each scrape (stats, cache), and returns the function
// that observes each request's latency (objstore.Options.Observe):
// kalamdb_object_store_requests_total{op},
// kalamdb_object_store_request_errors_total,
// kalamdb_object_store_get_bytes_total,
// kalamdb_object_store_request_duration_seconds{op,result},
// kalamdb_segment_disk_cache_blocks_total{result} (hit, miss),
// kalamdb_segment_disk_cache_evictions_total and
// kalamdb_segment_disk_cache_bytes.
func (m *Metrics) ObjectStore(stats func() objstore.Stats, cache func() segment.DiskCacheStats) func(op string, d time.Duration, err error) {
	ns := func(sub, name string) string { return prometheus.BuildFQName(Namespace, sub, name) }
	m.reg.MustRegister(&objectStore{stats: stats, cache: cache,
		requests: prometheus.NewDesc(ns("object_store", "requests_total"), "Requests to the object store of the segments, by kind (get: a ranged read).", []string{"op"}, nil),
		errors:   prometheus.NewDesc(ns("object_store", "request_errors_total"), "Requests to the object store that failed.", nil, nil),
		getBytes: prometheus.NewDesc(ns("object_store", "get_bytes_total"), "Bytes fetched from the object store.", nil, nil),
		blocks:   prometheus.NewDesc(ns("segment_disk_cache", "blocks_total"), "Blocks of segments read through the local disk cache, by result (a miss is fetched from the object store).", []string{"result"}, nil),
		evicted:  prometheus.NewDesc(ns("segment_disk_cache", "evictions_total"), "Blocks evicted from the local disk cache to stay within its size.", nil, nil),
		bytes:    prometheus.NewDesc(ns("segment_disk_cache", "bytes"), "Disk space held by the local disk cache of segments.", nil, nil),
	})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "object_store", Name: "request_duration_seconds",
		Help:    "Latency of the requests to the object store of the segments, by kind and result.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"op", "result"})
	m.reg.MustRegister(h)
	return func(op string, d time.Duration, err error) {
		result := "ok"
		if err != nil {
			result = "error"
		}
		h.WithLabelValues(op, result).Observe(d.Seconds())
	}
}

type objectStore struct {
	stats                                              func() objstore.Stats
	cache                                              func() segment.DiskCacheStats
	requests, errors, getBytes, blocks, evicted, bytes *prometheus.Desc
}

func (c *objectStore) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.errors, c.getBytes, c.blocks, c.evicted, c.bytes} {
		ch <- d
	}
}

func (c *objectStore) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for op, n := range map[string]int64{"get": s.Gets, "head": s.Heads, "put": s.Puts, "delete": s.Deletes, "list": s.Lists} {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), op)
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors))
	ch <- prometheus.MustNewConstMetric(c.getBytes, prometheus.CounterValue, float64(s.GetBytes))
	d := c.cache()
	ch <- prometheus.MustNewConstMetric(c.blocks, prometheus.CounterValue, float64(d.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(c.blocks, prometheus.CounterValue, float64(d.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(d.Evictions))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(d.Bytes))
}
