package backup_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	_ "gocloud.dev/blob/s3blob"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// A backup goes to an S3 bucket (a moto server) and comes back from it;
// a second backup to the same place is refused.
func TestBackupToAnObjectStore(t *testing.T) {
	ctx := context.Background()
	src, want := populated(t)
	_, bucket := s3test.Bucket(t)
	loc := bucket + "&prefix=backups/monday/"
	opts := backup.Options{ObjectStores: func(ctx context.Context, url string) (segment.Store, func() error, error) {
		st, b, err := objstore.Open(ctx, url, objstore.Options{})
		if err != nil {
			return nil, nil, err
		}
		return st, b.Close, nil
	}}
	idx, err := backup.Backup(ctx, src.source(), loc, opts)
	require.NoError(t, err)
	require.NotEmpty(t, idx.Segments)
	_, err = backup.Backup(ctx, src.source(), loc, opts)
	require.ErrorIs(t, err, backup.ErrDestination)

	// Without an opener, object-store URLs are refused, credentials
	// left out of the message.
	_, err = backup.Backup(ctx, src.source(), "s3://key:secret@bucket?region=x", backup.Options{})
	require.ErrorContains(t, err, "opens no object-store URLs")
	require.NotContains(t, err.Error(), "secret")

	dst := newDB(t)
	_, err = backup.Restore(ctx, loc, dst.target(), opts)
	require.NoError(t, err)
	requireSame(t, dst, want)
}
