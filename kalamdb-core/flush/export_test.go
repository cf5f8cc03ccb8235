package flush_test

import "github.com/kalamdb/kalamdb-go/kalamdb-core/flush"

func flushOpen(e *env, opts flush.Options) (*flush.Manager, error) {
	return flush.Open(e.ctx, e.bs, opts)
}
