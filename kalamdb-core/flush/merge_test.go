package flush_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// mergeKeys are primary keys that exercise the merge's key comparison:
// short and long (beyond the 16 bytes compared as integers), sharing long
// prefixes, differing only past byte 16, holding zero bytes, and each a
// prefix of another.
func mergeKeys(r *rand.Rand, n int) []string {
	stems := []string{"", "a", "ab", "a\x00", "a\x00\x00", "0123456789abcdef", "0123456789abcdefX", "0123456789abcdef\x00"}
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, s := range stems {
		if s != "" {
			add(s)
		}
	}
	for len(out) < n {
		s := stems[r.IntN(len(stems))]
		var b strings.Builder
		b.WriteString(s)
		for range r.IntN(20) {
			b.WriteByte("\x00az~"[r.IntN(4)])
		}
		if b.Len() > 0 {
			add(b.String())
		}
	}
	return out
}

// mergeRow returns the values of key k at generation gen: a string and a
// bytes column that are null at some generations.
func mergeRow(k string, gen int) []row.Value {
	s, b := row.String(fmt.Sprintf("%s/%d", k, gen)), row.Bytes([]byte(fmt.Sprintf("b%d", gen)))
	if gen%3 == 1 {
		s = row.Null()
	}
	if gen%4 == 2 {
		b = row.Null()
	}
	return []row.Value{row.String(k), row.Int64(int64(gen)), s, b}
}

// TestMergedScanMatchesModel writes, updates and deletes rows of string
// keys across many small flushes (segments with overlapping key ranges,
// row groups of 3 versions, buffered versions and tombstones over cold
// ones), then pages through them with every page size from several
// starting points, inclusive and exclusive, existing keys or not, and
// compares each page with a model. It runs with the row-group cache on
// and off, on a shared table and on two users of a user table.
func TestMergedScanMatchesModel(t *testing.T) {
	for _, cache := range []int64{0, -1} {
		for _, typ := range []catalog.TableType{catalog.SharedTable, catalog.UserTable} {
			for seed := range uint64(2) {
				t.Run(fmt.Sprintf("cache=%d/%s/seed=%d", cache, typ, seed), func(t *testing.T) {
					testMergedScan(t, cache, typ, seed)
				})
			}
		}
	}
}

func testMergedScan(t *testing.T, cache int64, typ catalog.TableType, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 42))
	e := newEnv(t, func(o *flush.Options) { o.RowGroupRows = 3; o.RowGroupCacheBytes = cache })
	if _, err := e.m.DB().Catalog().CreateNamespace(e.ctx, ns); err != nil {
		t.Fatal(err)
	}
	_, err := e.m.DB().Catalog().CreateTable(e.ctx, catalog.Table{
		Namespace: ns, Name: "m", Type: typ, PrimaryKey: "k", Flush: catalog.FlushPolicy{RowLimit: 1 << 30},
		Columns: []catalog.Column{
			{Name: "k", Type: row.TypeString},
			{Name: "gen", Type: row.TypeInt64},
			{Name: "s", Type: row.TypeString, Nullable: true},
			{Name: "b", Type: row.TypeBytes, Nullable: true},
		},
	})
	require.NoError(t, err)
	s := e.store("m")
	users := []string{""}
	if typ == catalog.UserTable {
		users = []string{"u1", "u2"}
	}
	ks := mergeKeys(r, 60)
	live := map[string]map[string]int{} // user -> key -> generation
	for _, u := range users {
		live[u] = map[string]int{}
	}
	gen := 0
	for round := range 12 {
		for range 15 {
			u := users[r.IntN(len(users))]
			k := ks[r.IntN(len(ks))]
			gen++
			if _, ok := live[u][k]; !ok {
				require.NoError(t, s.insert(e.ctx, u, mergeRow(k, gen)))
				live[u][k] = gen
				continue
			}
			if r.IntN(3) == 0 {
				require.NoError(t, s.deleteKey(e.ctx, u, k))
				delete(live[u], k)
				continue
			}
			require.NoError(t, s.updateKey(e.ctx, u, k, gen))
			live[u][k] = gen
		}
		if round%4 != 3 { // the last rounds of each four stay buffered
			_, err := e.m.Flush(e.ctx, ns, "m")
			require.NoError(t, err)
		}
	}
	for _, u := range users {
		want := slices.Sorted(func(yield func(string) bool) {
			for k := range live[u] {
				if !yield(k) {
					return
				}
			}
		})
		// Paging from the beginning (pages of 1 start after every live
		// key), then one page from each starting point: every key, live
		// or not, and keys between them.
		for _, pageSize := range []int{1, 2, 3, 1000} {
			checkPages(t, e, s, u, want, live[u], "", false, pageSize, -1)
		}
		starts := append([]string{"\x00", "zzz"}, ks...)
		for _, k := range ks[:10] {
			starts = append(starts, k+"\x00", k[:len(k)/2])
		}
		for _, from := range starts {
			for _, after := range []bool{false, true} {
				checkPages(t, e, s, u, want, live[u], from, after, 4, 1)
			}
		}
		n, err := s.count(e.ctx, u)
		require.NoError(t, err)
		require.EqualValues(t, len(want), n)
	}
}

// checkPages reads from from (after it, with after) in pages of pageSize,
// to the end or at most pages pages (when positive), and compares the rows
// with want, the sorted live keys.
func checkPages(t *testing.T, e *env, s rowStore, user string, want []string, gens map[string]int, from string, after bool, pageSize, pages int) {
	t.Helper()
	i, _ := slices.BinarySearch(want, from)
	if after && i < len(want) && want[i] == from {
		i++
	}
	want = want[i:]
	if pages > 0 {
		want = want[:min(len(want), pages*pageSize)]
	}
	opts := tables.ScanOptions{Limit: pageSize}
	switch {
	case from == "":
	case after:
		opts.After = row.String(from)
	default:
		opts.Start = row.String(from)
	}
	what := fmt.Sprintf("user %q from %q (after: %v) pages of %d", user, from, after, pageSize)
	var got []row.Row
	for n := 0; n != pages && n < len(want)+2; n++ {
		page, err := s.scan(e.ctx, user, opts)
		require.NoError(t, err, what)
		got = append(got, page.Rows...)
		if !page.More {
			break
		}
		require.Len(t, page.Rows, pageSize, what)
		require.Equal(t, page.Rows[len(page.Rows)-1].Values[0], page.Next, what)
		opts.Start, opts.After = row.Null(), page.Next
	}
	require.Len(t, got, len(want), what)
	for j, r := range got {
		k := want[j]
		requireValues(t, mergeRow(k, gens[k]), r.Values, fmt.Sprintf("%s: row %d", what, j))
		require.False(t, r.Deleted, what)
	}
}

// updateKey sets the columns of string key k to generation gen.
func (s rowStore) updateKey(ctx context.Context, user, k string, gen int) error {
	v := mergeRow(k, gen)
	set := map[string]row.Value{"gen": v[1], "s": v[2], "b": v[3]}
	var err error
	if s.u != nil {
		_, err = s.u.Update(ctx, user, row.String(k), set)
	} else {
		_, err = s.s.Update(ctx, row.String(k), set)
	}
	return err
}

// deleteKey deletes string key k.
func (s rowStore) deleteKey(ctx context.Context, user, k string) error {
	if s.u != nil {
		return s.u.Delete(ctx, user, row.String(k))
	}
	return s.s.Delete(ctx, row.String(k))
}
