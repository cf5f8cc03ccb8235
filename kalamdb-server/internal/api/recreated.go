package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
)

// onRecreated wraps h, the handler of a route that names a table: when h
// fails with core.ErrTableNotFound before it wrote anything, and the table
// the request named exists again as another table (another server dropped
// and created it again since this server last read the catalog), h runs
// once more, with the request's body as it came, on the new table. A
// request that found its table gone applied nothing (every write checks
// its table's partition in its batch), so running it again applies it
// once.
func (a *API) onRecreated(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		cat := a.opts.Catalog
		before, lerr := cat.Table(r.PathValue("ns"), r.PathValue("t"))
		body := &replayable{ReadCloser: r.Body}
		r.Body = body
		err := h(w, r, p)
		if lerr != nil || !errors.Is(err, core.ErrTableNotFound) {
			return err
		}
		if sw, ok := w.(*statusWriter); !ok || sw.wrote {
			return err
		}
		again, rerr := cat.Recreated(r.Context(), before)
		if rerr != nil || !again {
			return err
		}
		r.Body = body.replay()
		return h(w, r, p)
	}
}

// replayable is a request body that keeps what was read of it, to be read
// again from the start (replay). The handlers read a body through
// http.MaxBytesReader, so it keeps at most the body limit and a byte.
type replayable struct {
	io.ReadCloser
	read bytes.Buffer
}

func (b *replayable) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read.Write(p[:n])
	return n, err
}

// replay returns the body from its start: what was read, then the rest.
func (b *replayable) replay() io.ReadCloser {
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b.read.Bytes()), b.ReadCloser), b.ReadCloser}
}
