// Package guard contains panics. Work run through it that panics returns a
// *PanicError, carrying the panic's value and the stack where it happened,
// instead of ending the process. Every goroutine of KalamDB's background
// work (the flush scheduler, stream eviction, segment encoding, parallel
// row-group decoding) and of kalamdb-server runs its work through Run, so
// that a bug or a library panic is logged with its stack and the work is
// retried later or stopped cleanly, never a crash.
package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// PanicError is a panic turned into an error.
type PanicError struct {
	// Op says what was running, e.g. "flush scheduler".
	Op string
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the goroutine that panicked, taken where the
	// panic was recovered: it still holds the frames that panicked.
	Stack []byte
}

// Error implements error: the operation and the panic's value.
func (e *PanicError) Error() string { return fmt.Sprintf("%s: panic: %v", e.Op, e.Value) }

// Unwrap returns the panic's value when it is an error (a runtime error,
// for example), so that errors.Is and errors.As see it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Run calls fn and returns its error, or a *PanicError if fn panics.
func Run(op string, fn func() error) (err error) {
	defer Recover(op, &err)
	return fn()
}

// Recover, deferred directly (defer guard.Recover(op, &err)), stops a panic
// of the deferring function and stores it in *err as a *PanicError. It does
// nothing when there is no panic. Run is the usual way to use it; Recover
// is for functions whose named result must carry the panic.
func Recover(op string, err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Op: op, Value: v, Stack: debug.Stack()}
	}
}

// Callback calls fn, a callback made by background work (a report, a
// hook). A panic of fn has no caller to go to: it is logged on slog's
// default logger with its stack, and the background work goes on.
func Callback(op string, fn func()) {
	if err := Run(op, func() error { fn(); return nil }); err != nil {
		slog.Error("panic in a callback of background work", "op", op, "err", err, "stack", string(Stack(err)))
	}
}

// Stack returns the stack of the first *PanicError in err's chain, or nil
// when err does not come from a panic: what a log line needs besides the
// message.
func Stack(err error) []byte {
	var pe *PanicError
	if errors.As(err, &pe) {
		return pe.Stack
	}
	return nil
}
