package layout_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
)

func TestTablePartition(t *testing.T) {
	p, err := layout.TablePartition(42, "app", "messages")
	require.NoError(t, err)
	assert.Equal(t, "t:app.messages.42", p.Name())
	id, ns, tbl, ok := layout.ParseTablePartition(p)
	require.True(t, ok)
	assert.Equal(t, uint64(42), id)
	assert.Equal(t, "app", ns)
	assert.Equal(t, "messages", tbl)

	long := strings.Repeat("n", layout.MaxNameLen)
	p, err = layout.TablePartition(^uint64(0), long, long)
	require.NoError(t, err, "the longest names fit in a partition name")
	id, _, _, ok = layout.ParseTablePartition(p)
	assert.True(t, ok)
	assert.Equal(t, ^uint64(0), id)

	_, err = layout.TablePartition(1, "bad name", "x")
	assert.ErrorIs(t, err, store.ErrInvalidArgument)

	for _, name := range []string{"system:catalog", "t:x", "t:a.b", "t:a.b.c", "t:.b.1", "t:a..1", "t:a.b.c.1"} {
		_, _, _, ok := layout.ParseTablePartition(store.MustPartition(name))
		assert.False(t, ok, name)
	}
}

func TestCatalogKeys(t *testing.T) {
	assert.True(t, bytes.HasPrefix(layout.NamespaceKey("a"), layout.NamespacesPrefix()))
	assert.True(t, bytes.HasPrefix(layout.TableKey("a", "t"), layout.TablesPrefix("a")))
	assert.True(t, bytes.HasPrefix(layout.TableKey("a", "t"), layout.AllTablesPrefix()))
	assert.False(t, bytes.HasPrefix(layout.TableKey("ab", "t"), layout.TablesPrefix("a")), "namespace a does not list ab's tables")
	assert.False(t, bytes.HasPrefix(layout.NextTableIDKey(), layout.AllTablesPrefix()))
	id, err := layout.ParseSequenceKey(layout.SequenceKey(7))
	require.NoError(t, err)
	assert.Equal(t, uint64(7), id)
	_, err = layout.ParseSequenceKey([]byte{1})
	assert.Error(t, err)
	assert.Len(t, layout.SystemPartitions(), 4)
}
