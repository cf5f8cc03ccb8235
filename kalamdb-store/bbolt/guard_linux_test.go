package bbolt

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// mappingSize returns the length of the memory mapping that starts at addr,
// from /proc/self/maps.
func mappingSize(t *testing.T, addr uintptr) int {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rng, _, _ := strings.Cut(sc.Text(), " ")
		lo, hi, ok := strings.Cut(rng, "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && uintptr(start) == addr {
			return int(end - start)
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("no mapping starts at %#x", addr)
	return 0
}

// TestRemapGuard checks the guard against bbolt's real memory map while a
// database grows from the smallest map to well past DB.AllocSize: the map
// is never smaller than the floor the guard assumes, no write remaps
// without going through the second attempt (which is what keeps open
// iterators from deadlocking a writer), and past AllocSize every second
// attempt is a real remap.
func TestRemapGuard(t *testing.T) {
	for _, initialMB := range []int{0, 20} {
		t.Run(fmt.Sprintf("initial_mmap_mb=%d", initialMB), func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.Path, cfg.SyncWrites, cfg.InitialMmapMB = t.TempDir(), false, initialMB
			b, e := openTest(t, cfg)
			p := store.MustPartition("p")
			require.NoError(t, b.CreatePartition(ctx, p))

			val := make([]byte, 16<<10)
			remaps, spurious := 0, 0
			size := mappingSize(t, e.db.Info().Data)
			for i := 0; i < 250; i++ { // about 40 MiB
				ops := make([]store.Operation, 10)
				for j := range ops {
					ops[j] = store.PutOp(p, []byte(fmt.Sprintf("k%04d.%d", i, j)), val)
				}
				before := e.regrows.Load()
				require.NoError(t, b.Batch(ctx, ops))
				retried := e.regrows.Load() > before

				now := mappingSize(t, e.db.Info().Data)
				var hw int
				require.NoError(t, e.db.View(func(tx *bolt.Tx) error { hw = int(tx.Size()); return nil }))
				floor := mmapSize(max(hw, e.initialMap))
				require.GreaterOrEqual(t, now, floor, "write %d: the map (%d) is at least the floor the guard assumes", i, now)
				require.Equal(t, now, mmapSize(now), "write %d: the map size is one bbolt's mmapSize gives", i)
				if now != size {
					remaps++
					require.True(t, retried, "write %d remapped (%d -> %d) on its first attempt", i, size, now)
				} else if retried {
					spurious++
					require.LessOrEqual(t, now, e.db.AllocSize,
						"write %d: past AllocSize a second attempt always remaps", i)
				}
				size = now
			}
			require.Greater(t, remaps, 0, "the test grew the file past its map")
			t.Logf("remaps %d, second attempts without a remap %d, final map %d MiB", remaps, spurious, size>>20)
		})
	}
}
