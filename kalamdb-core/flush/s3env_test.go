package flush_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// onS3 makes the environments created until the returned function is
// called keep their segments in a new bucket of the moto server, read
// through a disk cache, instead of in a directory. It skips t when moto is
// missing (fails it under KALAMDB_REQUIRE_S3=1).
var onS3 bool

func withS3(t *testing.T) (restore func()) {
	s3test.Shared(t)
	s3test.SetCredentials(t)
	onS3 = true
	return func() { onS3 = false }
}

// remote is an environment's object store: the bucket survives reopens,
// and so does the disk cache unless a test empties it.
type remote struct {
	url      string
	bucket   *blob.Bucket
	store    *objstore.Store
	cacheDir string
	faults   *faultStore
}

// viaProxy, when set, is the endpoint the environments' stores talk to
// (a fault-injecting proxy in front of the moto server), with short
// timeouts: short enough for a hanging request to end soon, long enough
// for a request on a busy machine to finish.
var viaProxy *s3test.Proxy

func newRemote(t testing.TB) *remote {
	srv, u := s3test.Bucket(t)
	var opts objstore.Options
	if viaProxy != nil {
		u = strings.Replace(u, url.QueryEscape(srv.Endpoint), url.QueryEscape(viaProxy.URL), 1)
		opts = objstore.Options{RequestTimeout: time.Second, UploadTimeout: 3 * time.Second}
	}
	s, b, err := objstore.Open(context.Background(), u, opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return &remote{url: u, bucket: b, store: s, cacheDir: t.TempDir()}
}

// open returns the Store a Manager uses: the bucket behind the disk cache,
// behind the fault injector.
func (r *remote) open(t testing.TB) segment.Store {
	c, err := segment.OpenDiskCache(r.cacheDir, 64<<20)
	require.NoError(t, err)
	r.faults = &faultStore{Store: c.Wrap(r.store, r.url)}
	return r.faults
}

// objects lists the bucket.
func (r *remote) objects(t testing.TB) []string {
	var out []string
	require.NoError(t, r.store.List(context.Background(), "", func(o segment.ObjectInfo) error {
		out = append(out, o.Name)
		return nil
	}))
	sort.Strings(out)
	return out
}

// faultStore is a segment.Store that consults a rule before each of its
// operations (and of its uploads' and objects'), as faultfs does for a
// file system: a failed operation is not applied.
type faultStore struct {
	segment.Store
	mu   sync.Mutex
	rule func(op, name string) error
}

var errStoreInjected = errors.New("faultstore: injected fault")

func (f *faultStore) SetRule(r func(op, name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rule = r
}

func (f *faultStore) check(op, name string) error {
	f.mu.Lock()
	r := f.rule
	f.mu.Unlock()
	if r == nil {
		return nil
	}
	return r(op, name)
}

func (f *faultStore) Create(ctx context.Context, name string) (segment.Upload, error) {
	if err := f.check("create", name); err != nil {
		return nil, err
	}
	u, err := f.Store.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &faultUpload{Upload: u, f: f, name: name}, nil
}

func (f *faultStore) Open(ctx context.Context, name string, size int64) (segment.Object, error) {
	if err := f.check("open", name); err != nil {
		return nil, err
	}
	return f.Store.Open(ctx, name, size)
}

func (f *faultStore) Remove(ctx context.Context, name string) error {
	if err := f.check("remove", name); err != nil {
		return err
	}
	return f.Store.Remove(ctx, name)
}

func (f *faultStore) List(ctx context.Context, prefix string, fn func(segment.ObjectInfo) error) error {
	if err := f.check("list", prefix); err != nil {
		return err
	}
	return f.Store.List(ctx, prefix, fn)
}

type faultUpload struct {
	segment.Upload
	f    *faultStore
	name string
}

func (u *faultUpload) Write(p []byte) (int, error) {
	if err := u.f.check("write", u.name); err != nil {
		return 0, err
	}
	return u.Upload.Write(p)
}

func (u *faultUpload) Commit() error {
	if err := u.f.check("commit", u.name); err != nil {
		u.Upload.Abort()
		return err
	}
	return u.Upload.Commit()
}

// storeFault is the error of an injected store fault.
func storeFault(op, name string, crash bool) error {
	if crash {
		return fmt.Errorf("objects %s %s: %w", op, name, errCrashed)
	}
	return fmt.Errorf("objects %s %s: %w", op, name, errStoreInjected)
}

var errCrashed = errors.New("faultstore: simulated crash")
