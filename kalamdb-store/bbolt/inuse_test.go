package bbolt_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/bbolt"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

func openAt(path string) (store.StorageBackend, error) {
	c := bbolt.DefaultConfig()
	c.Path, c.LockTimeoutSeconds = path, 1
	return bbolt.OpenWith(c)
}

// TestHoldOpenHelper is the other process of TestOpenInUseElsewhere.
func TestHoldOpenHelper(t *testing.T) { storetest.HoldOpenChild(t, openAt) }

// TestOpenInUseElsewhere: a file another process has open is refused,
// after lock_timeout_seconds, with an error that says it is in use and
// names it.
func TestOpenInUseElsewhere(t *testing.T) {
	dir := t.TempDir()
	storetest.HoldInOtherProcess(t, "TestHoldOpenHelper", dir)
	_, err := openAt(dir)
	require.ErrorContains(t, err, dir)
	require.ErrorContains(t, err, "is in use: it is locked by another process")
}
