// Package storetest checks that a segment.Store keeps the contract the
// cold tier relies on: an object is visible only once its upload commits,
// whole; an aborted upload leaves nothing; ranged reads return the bytes
// written; removal and listing work by name and prefix.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"testing"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// Run runs the contract's checks, each on a new store from newStore.
func Run(t *testing.T, newStore func(t *testing.T) segment.Store) {
	ctx := context.Background()
	data := make([]byte, 3*segment.DiskCacheBlock+12345)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	write := func(t *testing.T, s segment.Store, name string, b []byte) {
		t.Helper()
		up, err := s.Create(ctx, name)
		if err != nil {
			t.Fatalf("Create %s: %v", name, err)
		}
		for len(b) > 0 {
			n := min(len(b), 100_000)
			if _, err := up.Write(b[:n]); err != nil {
				t.Fatalf("Write %s: %v", name, err)
			}
			b = b[n:]
		}
		if err := up.Commit(); err != nil {
			t.Fatalf("Commit %s: %v", name, err)
		}
	}
	list := func(t *testing.T, s segment.Store, prefix string) map[string]segment.ObjectInfo {
		t.Helper()
		out := map[string]segment.ObjectInfo{}
		if err := s.List(ctx, prefix, func(o segment.ObjectInfo) error { out[o.Name] = o; return nil }); err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		return out
	}

	t.Run("RoundTripAndRangedReads", func(t *testing.T) {
		s := newStore(t)
		write(t, s, "ns/t/u-a/seg-1-1.parquet", data)
		for _, size := range []int64{int64(len(data)), -1} {
			o, err := s.Open(ctx, "ns/t/u-a/seg-1-1.parquet", size)
			if err != nil {
				t.Fatal(err)
			}
			if o.Size() != int64(len(data)) {
				t.Fatalf("size %d, want %d", o.Size(), len(data))
			}
			for _, r := range [][2]int{{0, 8}, {len(data) - 8, 8}, {segment.DiskCacheBlock - 3, 10}, {5, len(data) - 10}, {0, len(data)}} {
				p := make([]byte, r[1])
				n, err := o.ReadAt(p, int64(r[0]))
				if err != nil && !(errors.Is(err, io.EOF) && n == r[1]) {
					t.Fatalf("ReadAt(%d, %d): %d, %v", r[0], r[1], n, err)
				}
				if n != r[1] || !bytes.Equal(p, data[r[0]:r[0]+r[1]]) {
					t.Fatalf("ReadAt(%d, %d) returned other bytes", r[0], r[1])
				}
			}
			p := make([]byte, 20)
			n, err := o.ReadAt(p, int64(len(data)-10))
			if n != 10 || !errors.Is(err, io.EOF) || !bytes.Equal(p[:10], data[len(data)-10:]) {
				t.Fatalf("a read past the end: %d, %v; want 10, io.EOF", n, err)
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("NothingVisibleBeforeCommit", func(t *testing.T) {
		s := newStore(t)
		up, err := s.Create(ctx, "a/b.parquet")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(data[:1000]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, "a/b.parquet", -1); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open before Commit: %v, want fs.ErrNotExist", err)
		}
		if _, ok := list(t, s, "")["a/b.parquet"]; ok {
			t.Fatal("listed before Commit")
		}
		if err := up.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, ok := list(t, s, "")["a/b.parquet"]; !ok {
			t.Fatal("not listed after Commit")
		}
	})

	t.Run("AbortLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		up, err := s.Create(ctx, "a/c.parquet")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(data); err != nil {
			t.Fatal(err)
		}
		up.Abort()
		up.Abort() // twice is harmless
		if _, err := s.Open(ctx, "a/c.parquet", -1); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open after Abort: %v, want fs.ErrNotExist", err)
		}
		if l := list(t, s, ""); len(l) != 0 {
			t.Fatalf("an aborted upload left %v", l)
		}
	})

	t.Run("RemoveAndList", func(t *testing.T) {
		s := newStore(t)
		before := time.Now().Add(-time.Minute)
		write(t, s, "x/t1/u-a/s1.parquet", data[:10])
		write(t, s, "x/t1/u-b/s2.parquet", data[:20])
		write(t, s, "x/t2/s3.parquet", data[:30])
		all := list(t, s, "")
		if len(all) != 3 || all["x/t1/u-b/s2.parquet"].Size != 20 || all["x/t2/s3.parquet"].ModTime.Before(before) {
			t.Fatalf("listing: %v", all)
		}
		if l := list(t, s, "x/t1/"); len(l) != 2 {
			t.Fatalf("listing prefix x/t1/: %v", l)
		}
		if l := list(t, s, "x/t1/u-a"); len(l) != 1 {
			t.Fatalf("listing prefix x/t1/u-a: %v", l)
		}
		if err := s.Remove(ctx, "x/t1/u-a/s1.parquet"); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, "x/t1/u-a/s1.parquet"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("removing a missing object: %v, want fs.ErrNotExist", err)
		}
		if _, err := s.Open(ctx, "x/t1/u-a/s1.parquet", 10); err == nil {
			if o, _ := s.Open(ctx, "x/t1/u-a/s1.parquet", 10); o != nil {
				_, err = o.ReadAt(make([]byte, 10), 0)
				o.Close()
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("reading a removed object: %v, want fs.ErrNotExist", err)
			}
		}
		if l := list(t, s, ""); len(l) != 2 {
			t.Fatalf("after a removal: %v", l)
		}
		stop := errors.New("stop")
		if err := s.List(ctx, "", func(segment.ObjectInfo) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("List returns fn's error: %v", err)
		}
	})

	t.Run("BadNames", func(t *testing.T) {
		s := newStore(t)
		for _, name := range []string{"", "/abs", "a/../b", "a//b"} {
			if _, err := s.Create(ctx, name); !errors.Is(err, segment.ErrBadPath) {
				t.Fatalf("Create(%q): %v, want segment.ErrBadPath", name, err)
			}
		}
	})
}
