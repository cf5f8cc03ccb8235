package segment_test

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// A damaged block of the disk cache (a flipped byte, a cut file) is never
// served: the read fetches it again from the store behind, and the cache
// holds a good copy afterwards, also for a new process.
func TestDiskCacheNeverServesADamagedBlock(t *testing.T) {
	ctx := context.Background()
	inner := segment.FSStore(segment.DirFS(t.TempDir()), "test")
	data := make([]byte, 3*segment.DiskCacheBlock+1234)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.UintN(256))
	}
	up, err := inner.Create(ctx, "a/seg.parquet")
	require.NoError(t, err)
	_, err = up.Write(data)
	require.NoError(t, err)
	require.NoError(t, up.Commit())

	dir := t.TempDir()
	readAll := func(c *segment.DiskCache) {
		t.Helper()
		o, err := c.Wrap(inner, "test").Open(ctx, "a/seg.parquet", int64(len(data)))
		require.NoError(t, err)
		defer o.Close()
		got := make([]byte, len(data))
		n, err := o.ReadAt(got, 0)
		require.NoError(t, err)
		require.Equal(t, len(data), n)
		require.Equal(t, data, got, "the bytes of the object")
	}
	c, err := segment.OpenDiskCache(dir, 1<<30)
	require.NoError(t, err)
	readAll(c)
	require.EqualValues(t, 4, c.Stats().Misses)

	var entries []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			entries = append(entries, p)
		}
		return err
	}))
	require.Len(t, entries, 4)
	b, err := os.ReadFile(entries[0])
	require.NoError(t, err)
	b[len(b)/3] ^= 0x40
	require.NoError(t, os.WriteFile(entries[0], b, 0o600)) // a flipped bit
	require.NoError(t, os.Truncate(entries[1], 100))       // a cut file

	readAll(c)
	st := c.Stats()
	assert.EqualValues(t, 6, st.Misses, "the two damaged blocks were fetched again")
	assert.EqualValues(t, 2, st.Hits)

	c, err = segment.OpenDiskCache(dir, 1<<30)
	require.NoError(t, err)
	readAll(c)
	assert.EqualValues(t, 0, c.Stats().Misses, "a new process finds four good blocks")
	assert.EqualValues(t, 4, c.Stats().Hits)
}
