package segment_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// hostileIDs are user ids chosen to escape a directory, collide or break a
// file system.
func hostileIDs() []string {
	return []string{
		"alice", "Alice", "ALICE", "bob", "u-alice", "x-616c696365", "x2-00",
		"..", ".", "../", "../../etc/passwd", "/", "/etc", "a/b", "a\\b", "a/../b",
		"\x00", "a\x00b", "\x00\x00", " ", "a b", "CON", "nul", "aux.txt",
		"ü", "Ü", "日本語", "😀", "\xff\xfe", "a\nb", "-", "_", "-rf",
		strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("a", 100),
		strings.Repeat("Z", 100), strings.Repeat("\xff", 101), strings.Repeat("x", 255),
		strings.Repeat("é", 128), strings.Repeat("/", 256), strings.Repeat("a", 256),
	}
}

func TestUserDirIsSafeAndInjective(t *testing.T) {
	ids := hostileIDs()
	rng := rand.New(rand.NewPCG(7, 9))
	for range 600 {
		b := make([]byte, 1+rng.IntN(catalog.MaxUserIDLen))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if rng.IntN(3) == 0 {
				b[i] = "aZ./\x00-_"[rng.IntN(7)]
			}
		}
		ids = append(ids, string(b))
	}
	seen := map[string]string{}   // dir -> id
	folded := map[string]string{} // lowercased dir -> id
	for _, id := range ids {
		dir, err := segment.UserDir(id)
		require.NoError(t, err, "%q", id)
		require.NoError(t, segment.CheckPath(dir), "%q -> %q", id, dir)
		for _, el := range strings.Split(dir, "/") {
			require.LessOrEqual(t, len(el), 255, "element of %q", dir)
			require.NotContains(t, []string{"", ".", ".."}, el)
			require.True(t, strings.HasPrefix(dir, "u-") || strings.HasPrefix(dir, "x"), dir)
		}
		require.Equal(t, path.Clean(dir), dir)
		back, err := segment.ParseUserDir(dir)
		require.NoError(t, err, dir)
		require.Equal(t, id, back)
		if other, ok := seen[dir]; ok && other != id {
			t.Fatalf("%q and %q share directory %q", id, other, dir)
		}
		seen[dir] = id
		low := strings.ToLower(dir)
		if other, ok := folded[low]; ok && other != id {
			t.Fatalf("%q and %q collide on a case-insensitive file system: %q", id, other, dir)
		}
		folded[low] = id
	}
	// No user directory lies inside another.
	dirs := make([]string, 0, len(seen))
	for d := range seen {
		dirs = append(dirs, d)
	}
	for _, a := range dirs {
		first := strings.SplitN(a, "/", 2)[0]
		for _, b := range dirs {
			if a != b && strings.HasPrefix(b, a+"/") {
				t.Fatalf("%q is inside %q", b, a)
			}
			if a != b && strings.SplitN(b, "/", 2)[0] == first {
				require.Equal(t, strings.Count(a, "/"), strings.Count(b, "/"), "same first element, same depth")
			}
		}
	}
}

func TestUserDirExamples(t *testing.T) {
	for id, want := range map[string]string{
		"alice":   "u-alice",
		"Alice":   "x-416c696365",
		"../":     "x-2e2e2f",
		"a\x00b":  "x-610062",
		"user_42": "u-user_42",
		"ü":       "x-c3bc",
	} {
		got, err := segment.UserDir(id)
		require.NoError(t, err)
		assert.Equal(t, want, got, "%q", id)
	}
	long, err := segment.UserDir(strings.Repeat("\x01", 256))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(long, "x3-"), long)
	assert.Equal(t, 2, strings.Count(long, "/"))
}

func TestUserDirRejectsInvalidIDs(t *testing.T) {
	for _, id := range []string{"", strings.Repeat("a", catalog.MaxUserIDLen+1)} {
		_, err := segment.UserDir(id)
		assert.ErrorIs(t, err, core.ErrInvalidArgument, "%q", id)
	}
}

func TestParseUserDirAcceptsOnlyCanonicalNames(t *testing.T) {
	for _, dir := range []string{"", "alice", "u-", "u-Alice", "u-a/b", "x-", "x-ABCD", "x-616", "x-61", "x2-61/62", "x1-61", "x02-" + strings.Repeat("6", 200) + "/61", "y-61", "../x-61", "x-zz"} {
		_, err := segment.ParseUserDir(dir)
		assert.ErrorIs(t, err, core.ErrCorrupt, "%q", dir)
	}
}

func TestUserDirsStayInsideTheTableDirectory(t *testing.T) {
	root := t.TempDir()
	fsys := segment.DirFS(root)
	table := segment.TableDir("app", "items")
	for i, id := range hostileIDs() {
		dir, err := segment.UserDir(id)
		require.NoError(t, err)
		p := table + "/" + dir + "/" + fmt.Sprintf("f%d", i)
		require.NoError(t, segment.MkdirAllDurable(fsys, table+"/"+dir))
		f, err := fsys.Create(p)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	// Every file is below app/items, one per id.
	n := 0
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(filepath.Join(root, "app", "items"), p)
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(rel, ".."), "%s escaped", p)
		n++
		return nil
	}))
	assert.Equal(t, len(hostileIDs()), n)
}

func TestCheckPath(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "app/items/u-x/seg.parquet"} {
		assert.NoError(t, segment.CheckPath(ok), ok)
	}
	for _, bad := range []string{"", "/a", "a//b", "a/", "./a", "a/../b", "..", "a\x00", "a\\b"} {
		assert.ErrorIs(t, segment.CheckPath(bad), segment.ErrBadPath, "%q", bad)
	}
}
