package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// SegmentCache registers the counters of the cache of Parquet footers, row
// groups and key indexes, read from stats at each scrape:
// kalamdb_segment_cache_footer_reads_total,
// kalamdb_segment_cache_lookups_total{cache,result} and
// kalamdb_segment_cache_bytes{cache}, where cache is "row_group" or
// "key_index" and result "hit" or "miss".
func (m *Metrics) SegmentCache(stats func() segment.CacheStats) {
	m.reg.MustRegister(&segmentCache{stats: stats,
		footers: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "segment_cache", "footer_reads_total"),
			"Parquet footers read from files (a miss of the footer cache).", nil, nil),
		lookups: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "segment_cache", "lookups_total"),
			"Lookups of decoded row groups (scans, reads of a row) and key indexes (lookups of a key, such as the uniqueness check of an insert) in the segment cache, by result.",
			[]string{"cache", "result"}, nil),
		bytes: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "segment_cache", "bytes"),
			"Memory held by the cached row groups and key indexes.", []string{"cache"}, nil),
	})
}

type segmentCache struct {
	stats                   func() segment.CacheStats
	footers, lookups, bytes *prometheus.Desc
}

func (c *segmentCache) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.footers
	ch <- c.lookups
	ch <- c.bytes
}

func (c *segmentCache) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.footers, prometheus.CounterValue, float64(s.FooterReads))
	for _, x := range []struct {
		cache             string
		hits, misses, mem int64
	}{{"row_group", s.GroupHits, s.GroupMisses, s.GroupBytes}, {"key_index", s.KeyHits, s.KeyMisses, s.KeyBytes}} {
		ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(x.hits), x.cache, "hit")
		ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(x.misses), x.cache, "miss")
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(x.mem), x.cache)
	}
}
