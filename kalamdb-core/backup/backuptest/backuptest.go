// Package backuptest fills a database with what a backup must carry (user,
// shared and stream tables; flushed and buffered rows; tombstones; a column
// added after a flush) and describes what the table API reads of it, so
// that tests compare databases before and after a backup, a restore or a
// migration.
package backuptest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Users are the users whose rows Populate writes in user tables.
var Users = []string{"alice", "bob"}

// Populate creates namespace "app" with a user table (notes), a shared
// table (prices) and a stream table (events), and writes, flushes,
// updates and deletes rows so that the database holds segments, buffered
// rows, tombstones in both, and rows written before and after a column was
// added.
func Populate(t testing.TB, m *flush.Manager) {
	t.Helper()
	ctx := context.Background()
	db := m.DB()
	cat := db.Catalog()
	_, err := cat.CreateNamespace(ctx, "app")
	require.NoError(t, err)
	_, err = cat.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "notes", Type: catalog.UserTable, PrimaryKey: "id",
		Columns: []catalog.Column{{Name: "id", Type: row.TypeInt64}, {Name: "text", Type: row.TypeString}}})
	require.NoError(t, err)
	_, err = cat.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "prices", Type: catalog.SharedTable, PrimaryKey: "sku",
		Columns: []catalog.Column{{Name: "sku", Type: row.TypeString}, {Name: "cents", Type: row.TypeInt64}}})
	require.NoError(t, err)
	_, err = cat.CreateTable(ctx, catalog.Table{Namespace: "app", Name: "events", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "kind", Type: row.TypeString}, {Name: "n", Type: row.TypeInt64}},
		Stream:  catalog.StreamOptions{TTL: 365 * 24 * time.Hour, MaxBuffer: 1 << 20}})
	require.NoError(t, err)

	notes, err := db.User(ctx, "app", "notes")
	require.NoError(t, err)
	prices, err := db.Shared(ctx, "app", "prices")
	require.NoError(t, err)
	events, err := db.Stream(ctx, "app", "events")
	require.NoError(t, err)

	for _, u := range Users {
		for i := 1; i <= 40; i++ {
			_, err := notes.Insert(ctx, u, []row.Value{row.Int64(int64(i)), row.String(fmt.Sprintf("%s note %d", u, i))})
			require.NoError(t, err)
		}
	}
	for i := 1; i <= 30; i++ {
		_, err := prices.Insert(ctx, []row.Value{row.String(fmt.Sprintf("sku%03d", i)), row.Int64(int64(100 * i))})
		require.NoError(t, err)
	}
	_, err = m.Flush(ctx, "app", "notes")
	require.NoError(t, err)
	_, err = m.Flush(ctx, "app", "prices")
	require.NoError(t, err)

	// Buffered changes over flushed rows: updates, and deletes that leave
	// tombstones in the buffer.
	for _, u := range Users {
		_, err := notes.Update(ctx, u, row.Int64(2), map[string]row.Value{"text": row.String(u + " edited")})
		require.NoError(t, err)
		require.NoError(t, notes.Delete(ctx, u, row.Int64(3)))
	}
	require.NoError(t, prices.Delete(ctx, row.String("sku005")))
	_, err = prices.Update(ctx, row.String("sku006"), map[string]row.Value{"cents": row.Int64(1)})
	require.NoError(t, err)
	// A second flush, so that a segment holds tombstones too.
	_, err = m.Flush(ctx, "app", "prices")
	require.NoError(t, err)

	// A column added after the flushes: flushed rows read it as null.
	_, err = db.AddColumn(ctx, "app", "notes", catalog.Column{Name: "tag", Type: row.TypeString, Nullable: true})
	require.NoError(t, err)
	notes, err = db.User(ctx, "app", "notes")
	require.NoError(t, err)
	for _, u := range Users {
		for i := 41; i <= 50; i++ {
			_, err := notes.Insert(ctx, u, []row.Value{row.Int64(int64(i)), row.String("late"), row.String("t" + u)})
			require.NoError(t, err)
		}
		require.NoError(t, notes.Delete(ctx, u, row.Int64(45)))
	}
	for i := 1; i <= 20; i++ {
		_, err := events.Append(ctx, []row.Value{row.String("click"), row.Int64(int64(i))})
		require.NoError(t, err)
	}
}

// Dump describes every table of db as the table API reads it: its
// definition, then every live row (for user tables, of each of Users) or
// event, with _seq.
func Dump(t testing.TB, db *tables.DB) string {
	t.Helper()
	ctx := context.Background()
	all, err := db.Catalog().Tables("")
	require.NoError(t, err)
	sort.Slice(all, func(i, j int) bool { return all[i].FullName() < all[j].FullName() })
	var b strings.Builder
	for _, tb := range all {
		fmt.Fprintf(&b, "table %s %s pk=%s cols=", tb.FullName(), tb.Type, tb.PrimaryKey)
		for _, c := range tb.Columns {
			fmt.Fprintf(&b, "%s:%s,", c.Name, c.Type)
		}
		b.WriteString("\n")
		switch tb.Type {
		case catalog.StreamTable:
			st, err := db.Stream(ctx, tb.Namespace, tb.Name)
			require.NoError(t, err)
			var after int64
			for {
				page, err := st.Read(ctx, tables.StreamReadOptions{After: after, Limit: 1000})
				require.NoError(t, err)
				for _, e := range page.Events {
					writeRow(&b, "", e)
				}
				after = page.Next
				if !page.More {
					break
				}
			}
		case catalog.UserTable:
			for _, u := range Users {
				rs, err := db.RowStore(ctx, tb.Namespace, tb.Name, u)
				require.NoError(t, err)
				scanAll(t, &b, u, rs.Scan)
			}
		default:
			rs, err := db.RowStore(ctx, tb.Namespace, tb.Name, "")
			require.NoError(t, err)
			scanAll(t, &b, "", rs.Scan)
		}
	}
	return b.String()
}

func scanAll(t testing.TB, b *strings.Builder, user string, scan func(context.Context, tables.ScanOptions) (tables.Page, error)) {
	t.Helper()
	var after row.Value
	for {
		page, err := scan(context.Background(), tables.ScanOptions{After: after, Limit: 1000})
		require.NoError(t, err)
		for _, r := range page.Rows {
			writeRow(b, user, r)
		}
		if !page.More {
			return
		}
		after = page.Next
	}
}

func writeRow(b *strings.Builder, user string, r row.Row) {
	fmt.Fprintf(b, "  %s seq=%d", user, r.Seq)
	for _, v := range r.Values {
		b.WriteString(" " + v.String())
	}
	b.WriteString("\n")
}

// Writers are goroutines that write until stopped, counting the writes
// acknowledged, for tests of backups taken while clients write.
type Writers struct {
	acked []atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// StartWriters starts n writers; writer w calls write(w, i) for i = 0, 1,
// … until Stop, and stops at the first error, which fails t. It returns
// once every writer has had a few writes acknowledged.
func StartWriters(t testing.TB, n int, write func(w int, i int64) error) *Writers {
	ws := &Writers{acked: make([]atomic.Int64, n), stop: make(chan struct{})}
	started := make(chan struct{}, n)
	for w := 0; w < n; w++ {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			for i := int64(0); ; i++ {
				select {
				case <-ws.stop:
					return
				default:
				}
				if err := write(w, i); err != nil {
					t.Errorf("writer %d, write %d: %v", w, i, err)
					started <- struct{}{}
					return
				}
				ws.acked[w].Store(i + 1)
				if i == 5 {
					started <- struct{}{}
				}
			}
		}()
	}
	for w := 0; w < n; w++ {
		<-started
	}
	return ws
}

// Acked returns, per writer, how many of its writes were acknowledged so
// far: writes 0 to Acked()[w]-1 of writer w.
func (ws *Writers) Acked() []int64 {
	out := make([]int64, len(ws.acked))
	for w := range ws.acked {
		out[w] = ws.acked[w].Load()
	}
	return out
}

// Stop stops the writers and waits for them.
func (ws *Writers) Stop() {
	close(ws.stop)
	ws.wg.Wait()
}
