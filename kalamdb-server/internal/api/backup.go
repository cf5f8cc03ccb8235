package api

import (
	"errors"
	"net/http"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
)

// backupRequest is the body of POST /v1/admin/backup.
type backupRequest struct {
	// To is where the server writes the backup: a directory (created, or
	// empty), a new .tar.gz file, or an object-store URL.
	To string `json:"to"`
}

// backup answers POST /v1/admin/backup: an online backup, written by the
// server to the location the body names, while the server keeps serving.
// The answer comes when the backup is whole, with its counts.
func (a *API) backup(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var req backupRequest
	if err := a.readJSON(w, r, &req); err != nil {
		return err
	}
	if req.To == "" {
		return badRequest(`the body names no destination; send {"to": "/path/to/dir"}, a .tar.gz file or an object-store URL`)
	}
	idx, err := a.opts.Backup(r.Context(), req.To)
	if errors.Is(err, backup.ErrDestination) {
		return badRequest("%s", err.Error())
	}
	if err != nil {
		return err
	}
	keys, bytes := idx.Totals()
	writeJSON(w, http.StatusOK, map[string]any{"to": req.To, "created": idx.Created, "consistency": idx.Consistency,
		"partitions": len(idx.Partitions), "keys": keys, "segments": len(idx.Segments), "bytes": bytes, "tables": idx.Tables})
	return nil
}
