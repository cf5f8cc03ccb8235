package backup

import (
	"context"
	"sync"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// SegmentHold wraps a segment store so that an online backup can keep
// every segment it is copying: while held, Remove records the name and
// answers success without removing anything, and the last release removes
// what was recorded. A removal that fails then, or one lost to a crash
// during the hold, leaves an object no manifest records, which the cold
// tier removes as garbage at a later start (after storage.segment_gc_grace).
type SegmentHold struct {
	segment.Store
	// OnError, when set, is told of a deferred removal that failed.
	OnError func(name string, err error)

	mu      sync.Mutex
	holds   int
	pending []string
}

// NewSegmentHold returns st behind a SegmentHold.
func NewSegmentHold(st segment.Store) *SegmentHold { return &SegmentHold{Store: st} }

// Remove implements segment.Store: while held, it defers the removal.
func (h *SegmentHold) Remove(ctx context.Context, name string) error {
	h.mu.Lock()
	if h.holds > 0 {
		h.pending = append(h.pending, name)
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	return h.Store.Remove(ctx, name)
}

// Hold defers removals until the returned function is called; it fits
// Source.HoldSegments. Holds nest: the removals run at the last release.
func (h *SegmentHold) Hold(context.Context) (func(), error) {
	h.mu.Lock()
	h.holds++
	h.mu.Unlock()
	var once sync.Once
	return func() { once.Do(h.release) }, nil
}

func (h *SegmentHold) release() {
	h.mu.Lock()
	h.holds--
	var names []string
	if h.holds == 0 {
		names, h.pending = h.pending, nil
	}
	h.mu.Unlock()
	for _, name := range names {
		if err := h.Store.Remove(context.Background(), name); err != nil && h.OnError != nil {
			h.OnError(name, err)
		}
	}
}
