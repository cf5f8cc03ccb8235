package flush_test

import (
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
)

func flushOpen(e *env, opts flush.Options) (*flush.Manager, error) {
	return flush.Open(e.ctx, e.bs, opts)
}

type flushOptions = flush.Options

func keysString(s string) []byte { return keys.AppendString(nil, s) }
