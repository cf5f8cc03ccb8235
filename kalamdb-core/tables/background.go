package tables

import (
	"context"
	"fmt"
	"sync"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// background runs the DB's background work (the eviction timers of its
// stream stores) on one context, which stop cancels before it waits for
// the work to end: no background work outlives the DB, and stopping never
// waits on work it cannot cancel.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards stopped, and wg.Add against stop's Wait
	stopped bool
	wg      sync.WaitGroup
}

func newBackground() *background {
	ctx, cancel := context.WithCancel(context.Background())
	return &background{ctx: ctx, cancel: cancel}
}

// errStopped is what starting work after stop returns.
func errStopped() error { return fmt.Errorf("tables: background work stopped: %w", store.ErrClosed) }

// err returns errStopped once stop was called, nil before.
func (bg *background) err() error {
	bg.mu.Lock()
	defer bg.mu.Unlock()
	if bg.stopped {
		return errStopped()
	}
	return nil
}

// run runs work on a new goroutine with a context that stop cancels, and
// that the cancel it returns cancels alone; done is closed when work has
// returned. It fails with store.ErrClosed once stop was called.
func (bg *background) run(work func(ctx context.Context)) (cancel context.CancelFunc, done <-chan struct{}, err error) {
	bg.mu.Lock()
	defer bg.mu.Unlock()
	if bg.stopped {
		return nil, nil, errStopped()
	}
	ctx, cancel := context.WithCancel(bg.ctx)
	d := make(chan struct{})
	bg.wg.Add(1)
	go func() {
		defer bg.wg.Done()
		defer close(d)
		defer cancel()
		work(ctx)
	}()
	return cancel, d, nil
}

// stop cancels the context of every work run started, waits for them to
// return, and makes later runs fail. It is idempotent.
func (bg *background) stop() {
	bg.mu.Lock()
	bg.stopped = true
	bg.mu.Unlock()
	bg.cancel()
	bg.wg.Wait()
}
