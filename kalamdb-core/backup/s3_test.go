package backup_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	_ "gocloud.dev/blob/s3blob"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
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
	idx, err := backup.Backup(ctx, src.source(), loc, backup.Options{})
	require.NoError(t, err)
	require.NotEmpty(t, idx.Segments)
	_, err = backup.Backup(ctx, src.source(), loc, backup.Options{})
	require.ErrorIs(t, err, backup.ErrDestination)

	dst := newDB(t)
	_, err = backup.Restore(ctx, loc, dst.target(), backup.Options{})
	require.NoError(t, err)
	requireSame(t, dst, want)
}
