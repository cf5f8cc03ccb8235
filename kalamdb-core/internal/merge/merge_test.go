package merge_test

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/merge"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// version is one row version of a test cursor. Its row has one value that
// names the cursor and position it came from.
type version struct {
	key     string
	seq     int64
	deleted bool
}

// cursor is a merge.Cursor over versions. Like a store iterator it reuses
// one buffer for its keys, so a key is valid only until the next Next.
type cursor struct {
	name   string
	vs     []version
	pos    int // index of the current version; -1 before the first Next
	buf    []byte
	failAt int // Next fails instead of moving to this index; -1: never
	err    error
	nexts  int // calls to Next
	closes int // calls to Close
	closed bool
}

func newCursor(name string, vs ...version) *cursor {
	return &cursor{name: name, vs: vs, pos: -1, failAt: -1}
}

func (c *cursor) Next() bool {
	c.nexts++
	if c.closed {
		panic(fmt.Sprintf("cursor %s: Next after Close", c.name))
	}
	if c.err != nil || c.pos >= len(c.vs) {
		return false
	}
	c.pos++
	if c.pos == c.failAt {
		c.err = fmt.Errorf("cursor %s: reading version %d: %w", c.name, c.pos, errRead)
		return false
	}
	if c.pos >= len(c.vs) {
		return false
	}
	// Overwrite the previous key in place, as a reused buffer would.
	clear(c.buf)
	c.buf = append(c.buf[:0], c.vs[c.pos].key...)
	return true
}

func (c *cursor) Key() []byte   { return c.buf }
func (c *cursor) Seq() int64    { return c.vs[c.pos].seq }
func (c *cursor) Deleted() bool { return c.vs[c.pos].deleted }
func (c *cursor) Err() error    { return c.err }

func (c *cursor) Row(dst *row.Row) error {
	dst.Seq, dst.Deleted = c.vs[c.pos].seq, c.vs[c.pos].deleted
	dst.Values = append(dst.Values[:0], row.String(fmt.Sprintf("%s/%d", c.name, c.pos)))
	return nil
}

func (c *cursor) Close() error {
	c.closes++
	c.closed = true
	return c.err
}

// remainderCursor is a cursor that reports how many versions it has left.
type remainderCursor struct{ *cursor }

func (c remainderCursor) Remaining() int { return len(c.vs) - c.pos }

// keyHolderCursor is a cursor that lets the merge read its key field.
type keyHolderCursor struct{ *cursor }

func (c keyHolderCursor) KeyField() *[]byte { return &c.buf }

var errRead = errors.New("read failed")

// got is one version as the merge returned it.
type got struct {
	key     string
	seq     int64
	deleted bool
	from    string // the row's value: cursor/position
}

// drain reads m to its end.
func drain(t *testing.T, m *merge.Iter) []got {
	t.Helper()
	var out []got
	var r row.Row
	for m.Next() {
		require.NoError(t, m.Row(&r))
		require.Equal(t, m.Seq(), r.Seq)
		require.Equal(t, m.Deleted(), r.Deleted)
		out = append(out, got{string(m.Key()), m.Seq(), m.Deleted(), r.Values[0].Str()})
	}
	return out
}

// want returns what a merge of the cursors' versions must return, from a
// naive merge: all versions sorted by key, then descending _seq, then by
// cursor (the first added wins a tie), keeping the first of each key.
func want(cs []*cursor) []got {
	type v struct {
		got
		idx int
	}
	var all []v
	for i, c := range cs {
		for pos, x := range c.vs {
			if c.failAt >= 0 && pos >= c.failAt {
				break
			}
			all = append(all, v{got{x.key, x.seq, x.deleted, fmt.Sprintf("%s/%d", c.name, pos)}, i})
		}
	}
	slices.SortFunc(all, func(a, b v) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(b.seq, a.seq), cmp.Compare(a.idx, b.idx))
	})
	var out []got
	for i, x := range all {
		if i == 0 || x.key != all[i-1].key {
			out = append(out, x.got)
		}
	}
	return out
}

func requireAllClosed(t *testing.T, cs []*cursor) {
	t.Helper()
	for _, c := range cs {
		require.True(t, c.closed, "cursor %s closed", c.name)
	}
}

// TestMergeMatchesModel merges random cursors (none to many, empty or
// not, some added deferred under a bound of their first key) of random
// versions, with keys that share a prefix and then are short or long,
// hold zero bytes, are prefixes of one another, or are equal across
// cursors with different or equal _seq, tombstones among them, and
// compares the result with a naive merge. Every cursor reuses its key
// buffer, and some let the merge read their key field.
func TestMergeMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for round := range 3000 {
		prefix := []string{"", "u\x00", "user-0042\x00\x01"}[r.IntN(3)]
		keys := modelKeys(r, prefix, 1+r.IntN(40))
		n := r.IntN(8)
		if r.IntN(10) == 0 {
			n = 20 + r.IntN(20)
		}
		cs := make([]*cursor, n)
		seq := int64(0)
		for i := range cs {
			// Each cursor holds an ascending subset of the keys.
			var vs []version
			for _, k := range keys {
				if r.IntN(3) == 0 {
					seq += int64(r.IntN(3)) // equal _seq in a few places
					vs = append(vs, version{k, seq, r.IntN(4) == 0})
				}
			}
			if r.IntN(5) == 0 {
				vs = nil
			}
			cs[i] = newCursor(fmt.Sprintf("c%d", i), vs...)
		}
		skip := len(prefix)
		if r.IntN(4) == 0 {
			skip = r.IntN(len(prefix) + 1) // a shorter common prefix is right too
		}
		m := merge.New(skip, len(cs))
		for _, c := range cs {
			var mc merge.Cursor = c
			switch r.IntN(3) {
			case 1:
				mc = keyHolderCursor{c}
			case 2:
				mc = remainderCursor{c}
			}
			if len(c.vs) > 0 && r.IntN(3) == 0 {
				first := c.vs[0].key
				bound := first[:skip+r.IntN(len(first)-skip+1)]
				m.AddDeferred(mc, []byte(bound))
				continue
			}
			m.Add(mc)
		}
		what := fmt.Sprintf("round %d", round)
		require.Equal(t, want(cs), drain(t, m), what)
		require.NoError(t, m.Err(), what)
		require.False(t, m.Next(), what)
		require.NoError(t, m.Close(), what)
		requireAllClosed(t, cs)
	}
}

// modelKeys returns n distinct sorted keys that start with prefix.
func modelKeys(r *rand.Rand, prefix string, n int) []string {
	stems := []string{"", "a", "a\x00", "0123456789abcdef", "0123456789abcdefX", "0123456789abcde\x00\x00", "\xff\xff\xff\xff\xff\xff\xff\xff"}
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		b := []byte(prefix + stems[r.IntN(len(stems))])
		for range r.IntN(12) {
			b = append(b, "\x00\x01az\xff"[r.IntN(5)])
		}
		if k := string(b); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestMergeNewestWins checks the choice among the versions of one key:
// the highest _seq wins whichever cursor holds it, a winning tombstone is
// returned (and hides the older versions), a tombstone that lost is not,
// and between equal _seq the cursor added first wins.
func TestMergeNewestWins(t *testing.T) {
	buffer := newCursor("buffer",
		version{"a", 9, true},  // a tombstone over an older live version
		version{"b", 3, false}, // older than the cold tombstone
		version{"c", 7, false}, // the same version as the cold one
		version{"e", 8, false}, // newer than a cold tombstone
	)
	cold := newCursor("cold",
		version{"a", 5, false},
		version{"b", 6, true},
		version{"c", 7, false},
		version{"d", 1, false},
		version{"e", 2, true},
	)
	m := merge.New(0, 2)
	m.Add(buffer)
	m.Add(cold)
	require.Equal(t, []got{
		{"a", 9, true, "buffer/0"},
		{"b", 6, true, "cold/1"},
		{"c", 7, false, "buffer/2"},
		{"d", 1, false, "cold/3"},
		{"e", 8, false, "buffer/3"},
	}, drain(t, m))
	require.NoError(t, m.Close())
}

// TestMergeEqualKeysAcrossManyCursors has every cursor hold every key,
// each key's newest version in a different cursor, and long keys (whose
// bytes the merge must keep while the cursors reuse their buffers).
func TestMergeEqualKeysAcrossManyCursors(t *testing.T) {
	const n, keys = 9, 50
	cs := make([]*cursor, n)
	for i := range cs {
		var vs []version
		for k := range keys {
			vs = append(vs, version{fmt.Sprintf("a-long-common-stem-%04d", k), int64((i+k)%n + 1), (i+k)%5 == 0})
		}
		cs[i] = newCursor(fmt.Sprintf("c%d", i), vs...)
	}
	m := merge.New(0, n)
	for _, c := range cs {
		m.Add(c)
	}
	got := drain(t, m)
	require.Equal(t, want(cs), got)
	require.Len(t, got, keys)
	for _, g := range got {
		require.EqualValues(t, n, g.seq)
	}
	require.NoError(t, m.Close())
}

// TestMergeEmpty covers merges without versions: no cursors, and cursors
// that are all empty.
func TestMergeEmpty(t *testing.T) {
	m := merge.New(0, 0)
	require.False(t, m.Next())
	require.NoError(t, m.Err())
	require.Zero(t, m.Remaining())
	require.NoError(t, m.Close())

	cs := []*cursor{newCursor("a"), newCursor("b"), newCursor("c")}
	m = merge.New(0, 3)
	m.Add(cs[0])
	m.AddDeferred(cs[1], []byte("x"))
	m.Add(cs[2])
	require.False(t, m.Next())
	require.False(t, m.Next())
	require.NoError(t, m.Close())
	requireAllClosed(t, cs)
}

// TestMergeErrors makes a cursor fail at its first version, in the middle,
// once it is the last one with versions left, and when it is read
// deferred: the merge returns every version
// before the failure, then stops, and reports the error from Err and
// Close, which still closes every cursor.
func TestMergeErrors(t *testing.T) {
	vs := func(keys ...string) []version {
		var out []version
		for i, k := range keys {
			out = append(out, version{k, int64(i + 1), false})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		failAt   int
		deferred bool
		want     []string
	}{
		{"first", 0, false, nil},
		{"middle", 2, false, []string{"a", "b", "c", "d", "e"}},
		{"alone", 4, false, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}},
		{"deferred", 0, true, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok := newCursor("ok", vs("a", "d", "f")...)
			bad := newCursor("bad", vs("c", "e", "g", "i", "k")...)
			bad.failAt = tc.failAt
			other := newCursor("other", vs("b", "h")...)
			m := merge.New(0, 3)
			m.Add(ok)
			if tc.deferred {
				m.AddDeferred(bad, []byte("c"))
			} else {
				m.Add(bad)
			}
			m.Add(other)
			var keys []string
			for m.Next() {
				keys = append(keys, string(m.Key()))
			}
			require.Equal(t, tc.want, keys)
			require.ErrorIs(t, m.Err(), errRead)
			require.False(t, m.Next(), "an error ends the merge")
			require.ErrorIs(t, m.Close(), errRead)
			require.ErrorIs(t, m.Close(), errRead, "Close is idempotent")
			requireAllClosed(t, []*cursor{ok, bad, other})
		})
	}
}

// TestMergeOnStart checks the start function: it runs at the first Next,
// once, may add cursors, and its error ends the merge.
func TestMergeOnStart(t *testing.T) {
	a, b := newCursor("a", version{"x", 1, false}), newCursor("b", version{"y", 1, false})
	m := merge.New(0, 2)
	m.Add(a)
	runs := 0
	m.OnStart(func() error {
		runs++
		require.Zero(t, a.nexts, "the start function runs before the cursors are positioned")
		m.Add(b)
		return nil
	})
	require.Zero(t, runs, "nothing runs before the first Next")
	require.Equal(t, []got{{"x", 1, false, "a/0"}, {"y", 1, false, "b/0"}}, drain(t, m))
	require.Equal(t, 1, runs)
	require.NoError(t, m.Close())
	requireAllClosed(t, []*cursor{a, b})

	c := newCursor("c", version{"x", 1, false})
	m = merge.New(0, 1)
	m.Add(c)
	m.OnStart(func() error { return errRead })
	require.False(t, m.Next())
	require.ErrorIs(t, m.Err(), errRead)
	require.Zero(t, c.nexts, "a failed start reads no cursor")
	require.ErrorIs(t, m.Close(), errRead)
	requireAllClosed(t, []*cursor{c})
}

// TestMergeAddAfterStart checks that a cursor added once the merge has
// started is closed and ends the merge with an error.
func TestMergeAddAfterStart(t *testing.T) {
	a := newCursor("a", version{"x", 1, false}, version{"y", 1, false})
	m := merge.New(0, 1)
	m.Add(a)
	require.True(t, m.Next())
	late := newCursor("late", version{"a", 1, false})
	m.Add(late)
	require.True(t, late.closed)
	require.Zero(t, late.nexts)
	require.False(t, m.Next())
	require.ErrorContains(t, m.Err(), "added after the merge started")
	require.Error(t, m.Close())
	requireAllClosed(t, []*cursor{a})
}

// TestMergeClose checks that Close closes every cursor (read to its end,
// partly read, deferred and never read) once, runs the OnClose function
// once, and that a closed merge has no more versions.
func TestMergeClose(t *testing.T) {
	done := newCursor("done", version{"a", 1, false})
	partly := newCursor("partly", version{"b", 1, false}, version{"z", 1, false})
	unread := newCursor("unread", version{"y", 1, false})
	m := merge.New(0, 3)
	m.Add(done)
	m.Add(partly)
	m.AddDeferred(unread, []byte("x"))
	released := 0
	m.OnClose(func() { released++ })
	require.True(t, m.Next())
	require.True(t, m.Next())
	require.Equal(t, "b", string(m.Key()))
	require.Zero(t, unread.nexts, "a deferred cursor is read only when the merge reaches its bound")
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	require.Equal(t, 1, released)
	for _, c := range []*cursor{done, partly, unread} {
		require.Equal(t, 1, c.closes, "cursor %s closed once", c.name)
	}
	require.False(t, m.Next())

	// Closed before its first Next.
	c := newCursor("c", version{"a", 1, false})
	m = merge.New(0, 1)
	m.Add(c)
	m.OnClose(func() { released++ })
	require.NoError(t, m.Close())
	require.Equal(t, 2, released)
	require.Zero(t, c.nexts)
	require.Equal(t, 1, c.closes)
	require.False(t, m.Next())
}

// TestMergeSolitaryAndRemaining checks Remaining (the sum over the cursors
// left that report one) and Solitary: nil while two cursors have versions
// left, then the last one, positioned on the merge's current version, so
// that reading it directly continues the merge.
func TestMergeSolitaryAndRemaining(t *testing.T) {
	short := newCursor("short", version{"a", 1, false}, version{"c", 1, false})
	long := newCursor("long", version{"b", 1, false}, version{"d", 1, false}, version{"e", 1, false}, version{"f", 1, false})
	m := merge.New(0, 2)
	m.Add(remainderCursor{short})
	m.Add(remainderCursor{long})
	require.True(t, m.Next())
	require.Equal(t, 2+4, m.Remaining())
	require.Nil(t, m.Solitary())
	var keys []string
	var src merge.Cursor = m
	for {
		keys = append(keys, string(src.Key()))
		if s := m.Solitary(); s != nil && src == merge.Cursor(m) {
			require.Equal(t, "d", string(m.Key()))
			require.Equal(t, "d", string(s.Key()))
			require.Equal(t, 3, m.Remaining())
			src = s
		}
		if !src.Next() {
			break
		}
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e", "f"}, keys)
	require.NotEqual(t, merge.Cursor(m), src, "the merge handed over to its last cursor")
	require.NoError(t, m.Close())
	requireAllClosed(t, []*cursor{short, long})
}

// TestMergeDeferredBoundEqualToAKey adds a cursor deferred under a bound
// that equals another cursor's key, and whose first key is that key too:
// it must be read before that key's versions are told apart.
func TestMergeDeferredBoundEqualToAKey(t *testing.T) {
	a := newCursor("a", version{"k", 1, false}, version{"m", 1, false})
	b := newCursor("b", version{"k", 2, true}, version{"n", 1, false})
	m := merge.New(0, 2)
	m.Add(a)
	m.AddDeferred(b, []byte("k"))
	require.Equal(t, []got{{"k", 2, true, "b/0"}, {"m", 1, false, "a/1"}, {"n", 1, false, "b/1"}}, drain(t, m))
	require.NoError(t, m.Close())
}

var benchKey []byte

// BenchmarkIter merges cursors of 8-byte keys after a 4-byte prefix (the
// shape of a user table's scan), n cursors of 100,000/n keys each, with
// disjoint key ranges or interleaved keys, and reads each version's key.
func BenchmarkIter(b *testing.B) {
	for _, layout := range []string{"disjoint", "interleaved"} {
		for _, n := range []int{2, 3, 20} {
			b.Run(fmt.Sprintf("%s/%d", layout, n), func(b *testing.B) {
				const total = 100_000
				per := total / n
				keys := make([][]version, n)
				for i := range keys {
					keys[i] = make([]version, per)
					for j := range per {
						id := i*per + j
						if layout == "interleaved" {
							id = j*n + i
						}
						keys[i][j] = version{key: fmt.Sprintf("user%08d", id), seq: int64(id)}
					}
				}
				cs := make([]*cursor, n)
				b.ReportAllocs()
				for b.Loop() {
					m := merge.New(4, n)
					for i := range cs {
						cs[i] = newCursor("", keys[i]...)
						m.Add(keyHolderCursor{cs[i]})
					}
					count := 0
					for m.Next() {
						count++
						benchKey = m.Key()
					}
					if count != total/per*per {
						b.Fatalf("merged %d versions, want %d", count, total)
					}
					if err := m.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
