package objstore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/storetest"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// openS3 opens a new bucket of the moto server.
func openS3(t *testing.T) *objstore.Store {
	_, u := s3test.Bucket(t)
	s, b, err := objstore.Open(context.Background(), u, objstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return s
}

func TestS3KeepsTheStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) segment.Store { return openS3(t) })
}

func TestS3BehindADiskCacheKeepsTheStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) segment.Store {
		c, err := segment.OpenDiskCache(t.TempDir(), 1<<30)
		require.NoError(t, err)
		return c.Wrap(openS3(t), "s3")
	})
}

func TestFileBlobKeepsTheStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) segment.Store {
		b, err := fileblob.OpenBucket(t.TempDir(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { b.Close() })
		return objstore.New(b, "file", objstore.Options{})
	})
}

// An object store that cannot be reached is store.ErrUnavailable, for
// every operation, never a missing object.
func TestAnUnreachableStoreIsUnavailable(t *testing.T) {
	s3test.SetCredentials(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	s, b, err := objstore.Open(context.Background(), s3test.URL("nowhere", "http://"+addr)+"&awssdk=v2", objstore.Options{})
	require.NoError(t, err)
	defer b.Close()
	ctx := context.Background()
	assert.ErrorIs(t, s.Check(ctx), store.ErrUnavailable)
	_, err = s.Open(ctx, "a/b.parquet", -1)
	assert.ErrorIs(t, err, store.ErrUnavailable)
	o, err := s.Open(ctx, "a/b.parquet", 100)
	require.NoError(t, err)
	_, err = o.ReadAt(make([]byte, 10), 0)
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, s.Remove(ctx, "a/b.parquet"), store.ErrUnavailable)
	assert.ErrorIs(t, s.List(ctx, "", func(segment.ObjectInfo) error { return nil }), store.ErrUnavailable)
	up, err := s.Create(ctx, "a/b.parquet")
	if err == nil {
		_, err = up.Write([]byte("data"))
		if err == nil {
			err = up.Commit()
		}
	}
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.Positive(t, s.Stats().Errors)
}

func TestRedactHidesCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1": "s3://bucket/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1",
		"s3://AKIA:secret@bucket?region=x":                              "s3://REDACTED@bucket?region=x",
		"azblob://c?sas_token=abc&domain=d":                             "azblob://c?domain=d&sas_token=REDACTED",
		"gs://b?access_id=me&private_key_path=/k":                       "gs://b?access_id=me&private_key_path=REDACTED",
		"s3://b?X-Amz-Signature=zz&X-Amz-Credential=yy":                 "s3://b?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED",
	} {
		got := objstore.Redact(in)
		assert.Equal(t, want, got, in)
		for _, secret := range []string{"secret", "abc", "zz", "yy"} {
			if strings.Contains(in, "="+secret) || strings.Contains(in, ":"+secret+"@") {
				assert.NotContains(t, got, secret, in)
			}
		}
	}
	assert.Equal(t, "(an unparsable URL)", objstore.Redact("s3://b\x7f:%zz"))
}

func TestOpenOfAnUnknownSchemeNamesIt(t *testing.T) {
	_, _, err := objstore.Open(context.Background(), "nope://bucket", objstore.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope")
	var b *blob.Bucket
	assert.Nil(t, b)
	assert.False(t, errors.Is(err, store.ErrUnavailable))
}
