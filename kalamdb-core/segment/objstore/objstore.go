// Package objstore keeps the cold tier's segments in an object store (AWS
// S3 and S3-compatible stores, Google Cloud Storage, Azure Blob Storage)
// through gocloud.dev/blob: it implements segment.Store over a
// *blob.Bucket.
//
// An upload is one object written by a blob.Writer: the object store makes
// it visible, whole, when the writer closes (a multipart upload completes
// then), and an aborted upload (its context cancelled before Close) leaves
// nothing. Reads are ranged GETs, one per ReadAt; put a segment.DiskCache
// in front of the Store so that reads fetch each byte range once.
//
// Every failure to reach the store (an error, a timeout, a truncated
// response) is an error wrapping ErrUnavailable, and so store.ErrUnavailable,
// which a server answers with 503; a missing object wraps fs.ErrNotExist.
//
// The package links no URL opener: a program imports the openers it
// supports (gocloud.dev/blob/s3blob, gcsblob, azureblob, fileblob) for
// Open to accept their schemes.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// Defaults of Options.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultUploadTimeout  = 10 * time.Minute
)

// Options tune a Store.
type Options struct {
	// RequestTimeout bounds one request other than an upload (a ranged
	// GET, a HEAD, a DELETE, a page of a listing); 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// UploadTimeout bounds an upload, from Create to Commit; 0 means
	// DefaultUploadTimeout.
	UploadTimeout time.Duration
	// Observe, when set, is told of every request: its kind ("get",
	// "head", "put", "delete", "list"), how long it took and its error.
	// It must be fast and safe for concurrent use (a metrics histogram).
	Observe func(op string, d time.Duration, err error)
}

// ErrUnavailable is the error of a request the object store did not
// answer well (a failure, a timeout, a truncated response): errors.Is
// finds it, and store.ErrUnavailable through it, in every such error of a
// Store, so that a server can answer 503 and say that the object store,
// not its storage backend, is out of reach.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string { return "object store unavailable" }

// Is makes an unavailable object store also store.ErrUnavailable.
func (unavailableError) Is(target error) bool { return target == store.ErrUnavailable }

// Stats counts a Store's requests.
type Stats struct {
	// Gets is the number of ranged GETs, GetBytes the bytes they returned.
	Gets, GetBytes int64
	// Heads, Puts, Deletes and Lists count the other requests (a List
	// counts each page); PutBytes is the bytes uploaded.
	Heads, Puts, PutBytes, Deletes, Lists int64
	// Errors counts the requests that failed.
	Errors int64
}

// Store is a segment.Store over a bucket. It is safe for concurrent use.
type Store struct {
	b    *blob.Bucket
	desc string
	opts Options

	gets, getBytes, heads, puts, putBytes, deletes, lists, errs atomic.Int64

	// health: the outcome of the latest request (see Health).
	healthMu sync.Mutex
	failing  bool
	since    time.Time
	lastErr  error
}

// Health reports whether the latest request to the store failed, since
// when requests fail, and the latest error.
func (s *Store) Health() (failing bool, since time.Time, err error) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.failing, s.since, s.lastErr
}

var _ segment.Store = (*Store)(nil)

// New returns the Store of bucket b, described by desc in messages (a URL
// without credentials, see Redact). The Store does not close b.
func New(b *blob.Bucket, desc string, opts Options) *Store {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.UploadTimeout <= 0 {
		opts.UploadTimeout = DefaultUploadTimeout
	}
	return &Store{b: b, desc: desc, opts: opts}
}

// Open opens the bucket of rawURL with the URL openers the program links
// (gocloud.dev/blob's default URL mux) and returns its Store and the
// bucket, which the caller closes. It does not contact the store; see
// Check.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, *blob.Bucket, error) {
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("objstore: opening %s: %w", Redact(rawURL), err)
	}
	return New(b, Redact(rawURL), opts), b, nil
}

// String implements segment.Store.
func (s *Store) String() string { return s.desc }

// Stats returns the request counters.
func (s *Store) Stats() Stats {
	return Stats{Gets: s.gets.Load(), GetBytes: s.getBytes.Load(), Heads: s.heads.Load(), Puts: s.puts.Load(),
		PutBytes: s.putBytes.Load(), Deletes: s.deletes.Load(), Lists: s.lists.Load(), Errors: s.errs.Load()}
}

// Check reports whether the bucket can be reached and listed: one request.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	_, _, err := s.b.ListPage(ctx, blob.FirstPageToken, 1, nil)
	s.lists.Add(1)
	s.observe("list", start, err)
	if err != nil {
		return s.fail("listing", "", err)
	}
	return nil
}

func (s *Store) observe(op string, start time.Time, err error) {
	failed := err != nil && gcerrors.Code(err) != gcerrors.NotFound && gcerrors.Code(err) != gcerrors.Canceled
	if failed {
		s.errs.Add(1)
	}
	s.healthMu.Lock()
	switch {
	case failed && !s.failing:
		s.failing, s.since, s.lastErr = true, time.Now(), err
	case failed:
		s.lastErr = err
	case err == nil:
		s.failing, s.lastErr = false, nil
	}
	s.healthMu.Unlock()
	if s.opts.Observe != nil {
		s.opts.Observe(op, time.Since(start), err)
	}
}

// fail wraps the error of a request on name: fs.ErrNotExist for a missing
// object, the caller's own cancellation as it is, anything else as
// store.ErrUnavailable.
func (s *Store) fail(what, name string, err error) error {
	obj := s.desc
	if name != "" {
		obj += " " + name
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("objstore: %s %s: %w", what, obj, fs.ErrNotExist)
	case gcerrors.Canceled:
		return fmt.Errorf("objstore: %s %s: %w", what, obj, context.Canceled)
	}
	return fmt.Errorf("%w: objstore: %s %s: %w", ErrUnavailable, what, obj, err)
}

// Create implements segment.Store: the object appears, whole, when the
// upload commits; cancelling the upload's context before then (Abort)
// leaves nothing.
func (s *Store) Create(ctx context.Context, name string) (segment.Upload, error) {
	if err := segment.CheckPath(name); err != nil {
		return nil, err
	}
	uctx, cancel := context.WithTimeout(ctx, s.opts.UploadTimeout)
	start := time.Now()
	w, err := s.b.NewWriter(uctx, name, &blob.WriterOptions{
		ContentType: "application/vnd.apache.parquet", DisableContentTypeDetection: true,
	})
	if err != nil {
		cancel()
		s.puts.Add(1)
		s.observe("put", start, err)
		return nil, s.fail("uploading", name, err)
	}
	return &upload{s: s, w: w, cancel: cancel, name: name, start: start}, nil
}

type upload struct {
	s      *Store
	w      *blob.Writer
	cancel context.CancelFunc
	name   string
	start  time.Time
	n      int64
	done   bool
}

func (u *upload) Write(p []byte) (int, error) {
	n, err := u.w.Write(p)
	u.n += int64(n)
	if err != nil {
		return n, u.s.fail("uploading", u.name, err)
	}
	return n, nil
}

func (u *upload) Commit() error {
	if u.done {
		return fmt.Errorf("objstore: %s: upload already ended", u.name)
	}
	u.done = true
	err := u.w.Close()
	u.cancel()
	u.s.puts.Add(1)
	u.s.observe("put", u.start, err)
	if err != nil {
		return u.s.fail("uploading", u.name, err)
	}
	u.s.putBytes.Add(u.n)
	return nil
}

func (u *upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	// Cancelled before Close, the writer abandons the upload.
	u.cancel()
	_ = u.w.Close()
}

// Open implements segment.Store. With a negative size it asks the store
// (a HEAD request).
func (s *Store) Open(ctx context.Context, name string, size int64) (segment.Object, error) {
	if err := segment.CheckPath(name); err != nil {
		return nil, err
	}
	if size < 0 {
		rctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		start := time.Now()
		a, err := s.b.Attributes(rctx, name)
		cancel()
		s.heads.Add(1)
		s.observe("head", start, err)
		if err != nil {
			return nil, s.fail("opening", name, err)
		}
		size = a.Size
	}
	return &object{s: s, ctx: context.WithoutCancel(ctx), name: name, size: size}, nil
}

// object reads an object with one ranged GET per ReadAt.
type object struct {
	s    *Store
	ctx  context.Context
	name string
	size int64
}

func (o *object) Size() int64  { return o.size }
func (o *object) Close() error { return nil }

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("objstore: reading %s at offset %d", o.name, off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := p
	if rest := o.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n, err := o.s.get(o.ctx, o.name, off, want)
	if err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// get reads len(p) bytes of name at off with one ranged GET; fewer bytes
// than asked is a truncated response, an error.
func (s *Store) get(ctx context.Context, name string, off int64, p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	s.gets.Add(1)
	r, err := s.b.NewRangeReader(ctx, name, off, int64(len(p)), nil)
	if err != nil {
		s.observe("get", start, err)
		return 0, s.fail("reading", name, err)
	}
	n, err := io.ReadFull(r, p)
	cerr := r.Close()
	s.getBytes.Add(int64(n))
	if err == nil {
		err = cerr
	}
	s.observe("get", start, err)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("truncated response: %d of %d bytes at offset %d: %w", n, len(p), off, io.ErrUnexpectedEOF)
		}
		return n, s.fail("reading", name, err)
	}
	return n, nil
}

// Remove implements segment.Store.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := segment.CheckPath(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	err := s.b.Delete(ctx, name)
	s.deletes.Add(1)
	s.observe("delete", start, err)
	if err != nil {
		return s.fail("removing", name, err)
	}
	return nil
}

// List implements segment.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(segment.ObjectInfo) error) error {
	token := blob.FirstPageToken
	for {
		rctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		start := time.Now()
		page, next, err := s.b.ListPage(rctx, token, 1000, &blob.ListOptions{Prefix: prefix})
		cancel()
		s.lists.Add(1)
		s.observe("list", start, err)
		if err != nil {
			return s.fail("listing", prefix, err)
		}
		for _, o := range page {
			if o.IsDir {
				continue
			}
			if err := fn(segment.ObjectInfo{Name: o.Key, Size: o.Size, ModTime: o.ModTime}); err != nil {
				return err
			}
		}
		if len(next) == 0 {
			return nil
		}
		token = next
	}
}

// secretParams are query parameters whose values Redact hides: any whose
// name holds one of these words.
var secretParams = []string{"secret", "password", "token", "key", "signature", "credential", "sig", "sas"}

// Redact returns rawURL fit for logs and messages: without its user
// information and with the values of secret-looking query parameters
// replaced by "REDACTED". A URL that does not parse is replaced whole.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			lk := strings.ToLower(k)
			for _, w := range secretParams {
				if strings.Contains(lk, w) {
					for i := range vs {
						vs[i] = "REDACTED"
					}
					break
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
