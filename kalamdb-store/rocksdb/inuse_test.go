package rocksdb

import (
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/storetest"
)

func openAt(path string) (store.StorageBackend, error) {
	c := DefaultConfig()
	c.Path = path
	return OpenWith(c)
}

// TestHoldOpenHelper is the other process of TestOpenInUseElsewhere.
func TestHoldOpenHelper(t *testing.T) { storetest.HoldOpenChild(t, openAt) }

// TestOpenInUseElsewhere: a database another process has open is refused
// with an error that says it is in use and names its path, not RocksDB's
// bare "Resource temporarily unavailable"; so is a second open in this
// process.
func TestOpenInUseElsewhere(t *testing.T) {
	dir := t.TempDir()
	storetest.HoldInOtherProcess(t, "TestHoldOpenHelper", dir)
	_, err := openAt(dir)
	require.ErrorContains(t, err, dir+" is in use: another process")

	here := t.TempDir()
	b, err := openAt(here)
	require.NoError(t, err)
	defer b.Close()
	_, err = openAt(here)
	require.ErrorContains(t, err, here+" is in use: another process")
}
