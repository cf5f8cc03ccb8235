package flush_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// TestAddColumnAcrossTiers adds a column to a table whose rows are in
// segments and in the buffer, while flushes run: rows from segments written
// before read it as null, new rows and updates carry it into new segments,
// a compaction merges old and new segments into one with the column, and
// everything reads the same after a reopen.
func TestAddColumnAcrossTiers(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e, s, us := itemsTable(t, typ)
			for _, u := range us {
				for id := int64(1); id <= 30; id++ {
					require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
				}
			}
			require.NoError(t, flushItems(e))
			for _, u := range us {
				for id := int64(31); id <= 40; id++ {
					require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
				}
			}

			// Flushes keep running while the column is added.
			ctx, cancel := context.WithCancel(e.ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if err := flushItems(e); err != nil {
						t.Errorf("flush: %v", err)
						return
					}
				}
			}()
			tbl, err := e.m.DB().AddColumn(e.ctx, ns, "items", catalog.Column{Name: "note", Type: row.TypeString, Nullable: true})
			require.NoError(t, err)
			n := len(tbl.Columns)
			for _, u := range us {
				for id := int64(41); id <= 50; id++ {
					require.NoError(t, s.insert(e.ctx, u, append(vals(id, 0), row.String(fmt.Sprintf("note %d", id)))))
				}
				require.NoError(t, setNote(e, s, u, 5, "cold row, new note"))
			}
			cancel()
			wg.Wait()
			require.False(t, t.Failed())
			require.NoError(t, flushItems(e))

			check := func(what string) {
				t.Helper()
				s := e.store("items")
				for _, u := range us {
					got := scanAll(t, e.ctx, s, u, 17)
					require.Len(t, got, 50, what)
					for i, r := range got {
						id := int64(i + 1)
						require.Len(t, r.Values, n, "%s: user %q row %d", what, u, id)
						requireValues(t, vals(id, 0)[1:], r.Values[1:n-1], fmt.Sprintf("%s: user %q row %d", what, u, id))
						note := r.Values[n-1]
						switch {
						case id == 5:
							assert.Equal(t, "cold row, new note", note.Str(), what)
						case id > 40:
							assert.Equal(t, fmt.Sprintf("note %d", id), note.Str(), what)
						default:
							assert.True(t, note.IsNull(), "%s: user %q row %d written before the column: %v", what, u, id, note)
						}
					}
					r, err := s.get(e.ctx, u, 7)
					require.NoError(t, err)
					require.Len(t, r.Values, n, what)
					assert.True(t, r.Values[n-1].IsNull(), what)
				}
			}
			check("after the flushes")
			res, err := e.m.MajorCompact(e.ctx, ns, "items")
			require.NoError(t, err)
			assert.Positive(t, res.Merged)
			check("after a compaction")
			e.reopen()
			check("after a reopen")
			assertFilesMatchManifest(t, e)
		})
	}
}

func setNote(e *env, s rowStore, user string, id int64, note string) error {
	set := map[string]row.Value{"note": row.String(note)}
	var err error
	if s.u != nil {
		_, err = s.u.Update(e.ctx, user, row.Int64(id), set)
	} else {
		_, err = s.s.Update(e.ctx, row.Int64(id), set)
	}
	return err
}
