package segment_test

import (
	"testing"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/storetest"
)

func TestFSStoreKeepsTheStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) segment.Store { return segment.FSStore(segment.DirFS(t.TempDir()), "test") })
}
