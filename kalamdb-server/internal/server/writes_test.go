package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/faultstore"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
)

// A backend whose writes fail (RocksDB on a full disk) makes /readyz
// answer 503 naming the problem while reads go on; once a write works
// again, /readyz's own probe sees it without any other traffic.
func TestReadinessReportsABackendThatRejectsWrites(t *testing.T) {
	logs := &syncBuffer{}
	var fb *faultstore.Backend
	s, err := open(context.Background(), loadConfig(t, memoryConfig, nil), slog.New(slog.NewTextHandler(logs, nil)), backends.Default(),
		hooks{backend: func(b store.StorageBackend) store.StorageBackend {
			fb = faultstore.Wrap(b)
			return fb
		}})
	require.NoError(t, err)
	defer func() { _ = s.Shutdown(context.Background()) }()
	s.flush.Stop()
	s.writes.probeEvery = 0 // every /readyz probes
	h := s.Handler()
	createTable(t, h)
	assert.Equal(t, readiness{Status: "ready"}, ready(t, h))

	full := fmt.Errorf("IO error: While appending to file: 000012.log: No space left on device: %w", faultstore.ErrInjected)
	fb.SetRule(func(op faultstore.Op) error {
		if op.IsWrite() {
			return full
		}
		return nil
	})
	rec := do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":4,"v":"d"}]}`)
	assert.Equal(t, 500, rec.Code)
	rec = do(t, h, "GET", "/readyz", "")
	assert.Equal(t, 503, rec.Code)
	assert.Contains(t, rec.Body.String(), `"code":"NOT_READY"`)
	assert.Contains(t, rec.Body.String(), `storage backend \"memory\" rejects writes (no space left on device) since `)
	assert.NotContains(t, rec.Body.String(), "000012.log", "details stay in the log")
	assert.Equal(t, 3, rowCount(t, h), "reads go on")
	assert.Equal(t, 1, countLines(logs.String(), "storage backend writes fail"), "logged once")
	rec = do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":4,"v":"d"}]}`)
	assert.Equal(t, 500, rec.Code)
	assert.Equal(t, 1, countLines(logs.String(), "storage backend writes fail"), "logged once")

	fb.SetRule(nil)
	assert.Equal(t, readiness{Status: "ready"}, ready(t, h), "the probe's write works")
	assert.Contains(t, logs.String(), "storage backend writes work again")
	rec = do(t, h, "POST", "/v1/namespaces/app/tables/m/rows", `{"rows":[{"id":4,"v":"d"}]}`)
	assert.Equal(t, 201, rec.Code)
}

// Errors of the caller do not count as the backend failing, nor does a
// batch whose check failed (another server changed the key first: the
// write reads it again).
func TestCallerErrorsAreNoBackendFault(t *testing.T) {
	for _, err := range []error{store.ErrNotFound, store.ErrPartitionNotFound, store.ErrInvalidArgument, context.Canceled, store.ErrConditionFailed} {
		assert.False(t, backendFault(fmt.Errorf("x: %w", err)), "%v", err)
	}
	assert.True(t, backendFault(errors.New("IO error")))
	assert.True(t, backendFault(store.ErrClosed))
}

func countLines(logs, substr string) int {
	n := 0
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}
