package server

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Failing background refreshes of the catalog are logged once when they
// start failing and once when they work again, not at every refresh.
func TestCatalogRefreshLog(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	report := s.catalogRefreshLog()
	down := errors.New("backend down")
	report(false, nil)
	report(false, down)
	report(false, down)
	report(false, down)
	report(true, nil)
	report(false, nil)
	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, "reading the catalog again failed"), out)
	assert.Equal(t, 1, strings.Count(out, "reading the catalog again works again"), out)
	assert.Equal(t, 1, strings.Count(out, "catalog changed by another server"), out)
}
