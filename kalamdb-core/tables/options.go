package tables

import (
	"fmt"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Scan limits.
const (
	// DefaultLimit is the page size of a scan that sets no limit.
	DefaultLimit = 1000
	// MaxLimit is the largest page a scan returns.
	MaxLimit = 100_000
)

// ScanOptions select a page of a user or shared table's rows, in
// primary-key order.
type ScanOptions struct {
	// Start, when not null, starts the page at this primary key (inclusive).
	Start row.Value
	// After, when not null, starts the page after this primary key: pass the
	// Next of the previous page. At most one of Start and After is set.
	After row.Value
	// Limit is the most rows to return: 0 means DefaultLimit; it may not be
	// negative or above MaxLimit.
	Limit int
	// MaxBytes, when positive, ends the page early, with More set, once its
	// rows encode to MaxBytes bytes or more (row.EncodedLen, about what the
	// rows hold in memory); the page still holds at least one row when rows
	// follow. It bounds the memory of a page of large rows. Zero: no bound.
	MaxBytes int
}

// StreamReadOptions select a page of a stream table's events, in _seq
// order.
type StreamReadOptions struct {
	// After starts the page after this _seq: pass the Next of the previous
	// page; 0 reads from the first event.
	After int64
	// Limit is the most events to return, as ScanOptions.Limit.
	Limit int
	// MaxBytes bounds the page in bytes, as ScanOptions.MaxBytes.
	MaxBytes int
}

// Page is one page of a scan.
type Page struct {
	// Rows are the live (not deleted) rows, in primary-key order. The
	// values of up to 4,096 rows share one allocation, and string and bytes
	// values share the memory they were decoded from, so a row kept after
	// the page is dropped keeps its neighbours in memory too: copy the few
	// rows kept for long (row.Row.Clone, strings.Clone).
	Rows []row.Row
	// More reports whether rows follow this page.
	More bool
	// Next is, when More, the primary key of the last row of the page: the
	// After of the next page. It is null otherwise.
	Next row.Value
}

func checkMaxBytes(n int) error {
	if n < 0 {
		return fmt.Errorf("%w: byte bound %d is negative", core.ErrInvalidArgument, n)
	}
	return nil
}

func checkLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("%w: limit %d is negative", core.ErrInvalidArgument, limit)
	case limit > MaxLimit:
		return 0, fmt.Errorf("%w: limit %d is above the maximum of %d", core.ErrInvalidArgument, limit, MaxLimit)
	case limit == 0:
		return DefaultLimit, nil
	}
	return limit, nil
}
