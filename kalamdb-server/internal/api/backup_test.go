package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
)

// POST /v1/admin/backup and API.Backup (SQL's BACKUP DATABASE) take the
// same online backup and give the same answers to the same destinations.
func TestBackupRouteAndMethodAgree(t *testing.T) {
	var asked []string
	f := newFixture(t, func(o *Options) {
		o.Backup = func(_ context.Context, to string) (*backup.Index, error) {
			asked = append(asked, to)
			switch to {
			case "/full":
				return nil, fmt.Errorf("%w: /full is not empty (it holds x)", backup.ErrDestination)
			case "/broken":
				return nil, errors.New("disk /var/lib/secret failed")
			}
			return &backup.Index{Created: time.Unix(0, 0).UTC(), Consistency: "paused",
				Partitions: []backup.PartitionEntry{{Name: "a", Keys: 3, Bytes: 10}, {Name: "b", Keys: 4, Bytes: 20}},
				Segments:   []backup.SegmentEntry{{Path: "s", Bytes: 5}}}, nil
		}
	})
	ctx := context.Background()

	idx, err := f.api.Backup(ctx, "/ok")
	require.NoError(t, err)
	require.Len(t, idx.Partitions, 2)
	r := f.json(t, "POST", "/v1/admin/backup", adminToken, `{"to":"/ok"}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	body := r.decode(t)
	require.Equal(t, float64(7), body["keys"])
	require.Equal(t, float64(1), body["segments"])

	_, err = f.api.Backup(ctx, "/full")
	e := f.api.classify(err)
	require.Equal(t, http.StatusBadRequest, e.Status)
	require.Equal(t, CodeBadRequest, e.Code)
	require.Contains(t, e.Message, "/full is not empty")
	r = f.json(t, "POST", "/v1/admin/backup", adminToken, `{"to":"/full"}`)
	require.Equal(t, http.StatusBadRequest, r.status)
	code, msg := r.errorBody(t)
	require.Equal(t, e.Code, code)
	require.Equal(t, e.Message, msg)

	_, err = f.api.Backup(ctx, "/broken")
	require.Equal(t, http.StatusInternalServerError, f.api.classify(err).Status, "a fault of the server is no client error")

	_, err = f.api.Backup(ctx, "")
	require.Equal(t, http.StatusBadRequest, f.api.classify(err).Status)
	require.Equal(t, []string{"/ok", "/ok", "/full", "/full", "/broken"}, asked, "an empty destination is refused before the backup starts")
}

func TestBackupMethodWithoutOnlineBackups(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.api.Backup(context.Background(), "/somewhere")
	e := f.api.classify(err)
	require.Equal(t, http.StatusNotImplemented, e.Status)
	require.Equal(t, CodeNotImplemented, e.Code)
	r := f.json(t, "POST", "/v1/admin/backup", adminToken, `{"to":"/somewhere"}`)
	require.Equal(t, http.StatusNotFound, r.status, "the route is left out")
}
