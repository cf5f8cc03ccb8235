package api

import (
	"context"
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
	idx, err := a.Backup(r.Context(), req.To)
	if err != nil {
		return err
	}
	keys, bytes := idx.Totals()
	writeJSON(w, http.StatusOK, map[string]any{"to": req.To, "created": idx.Created, "consistency": idx.Consistency,
		"partitions": len(idx.Partitions), "keys": keys, "segments": len(idx.Segments), "bytes": bytes, "tables": idx.Tables})
	return nil
}

// Backup takes an online backup of the database to (a directory, created
// or empty; a new .tar.gz file; or an object-store URL, as the server
// process sees it) and returns its index once it is whole. It serves
// POST /v1/admin/backup and SQL's BACKUP DATABASE; the caller checks that
// the user is an admin. A destination that is empty, not empty or cannot
// be written is a 400 BAD_REQUEST; a server without online backups
// (Options.Backup nil) answers 501 NOT_IMPLEMENTED.
func (a *API) Backup(ctx context.Context, to string) (*backup.Index, error) {
	if a.opts.Backup == nil {
		return nil, &Error{Status: http.StatusNotImplemented, Code: CodeNotImplemented,
			Message: "this server does not take online backups; stop it and run 'kalamdb-server backup --config C --to DEST'"}
	}
	if to == "" {
		return nil, badRequest("the backup names no destination: give a directory, a .tar.gz file or an object-store URL")
	}
	idx, err := a.opts.Backup(ctx, to)
	if errors.Is(err, backup.ErrDestination) {
		return nil, badRequest("%s", err.Error())
	}
	if err != nil {
		return nil, err
	}
	return idx, nil
}
