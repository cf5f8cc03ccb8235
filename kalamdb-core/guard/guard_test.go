package guard_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
)

func nilMap() {
	var m map[string]int
	m["x"] = 1 // panics: assignment to entry in nil map
}

func TestRunTurnsAPanicIntoAnErrorWithItsStack(t *testing.T) {
	err := guard.Run("test work", func() error {
		nilMap()
		return nil
	})
	require.Error(t, err)
	var pe *guard.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "test work", pe.Op)
	assert.Contains(t, err.Error(), "test work: panic: assignment to entry in nil map")
	assert.Contains(t, string(pe.Stack), "guard_test.nilMap", "the stack holds the frame that panicked")

	var re runtime.Error
	assert.ErrorAs(t, err, &re, "a runtime error stays reachable")

	wrapped := fmt.Errorf("flushing: %w", err)
	assert.Equal(t, pe.Stack, guard.Stack(wrapped))
}

func TestRunPassesErrorsAndSuccessThrough(t *testing.T) {
	boom := errors.New("boom")
	assert.Same(t, boom, guard.Run("x", func() error { return boom }))
	assert.NoError(t, guard.Run("x", func() error { return nil }))
	assert.Nil(t, guard.Stack(boom))
	assert.Nil(t, guard.Stack(nil))
}

func TestRunKeepsAPanicValueThatIsNotAnError(t *testing.T) {
	err := guard.Run("x", func() error { panic("plain string") })
	var pe *guard.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "plain string", pe.Value)
	assert.NoError(t, errors.Unwrap(err))
}

func TestRecoverSetsTheNamedResult(t *testing.T) {
	f := func() (err error) {
		defer guard.Recover("named", &err)
		panic(errors.New("inner"))
	}
	err := f()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "named: panic: inner"), err.Error())
	assert.EqualError(t, errors.Unwrap(err), "inner")
}

// A panic on another goroutine is contained where that goroutine runs its
// work through Run.
func TestRunOnAGoroutine(t *testing.T) {
	done := make(chan error, 1)
	go func() { done <- guard.Run("background", func() error { panic("bg") }) }()
	err := <-done
	assert.EqualError(t, err, "background: panic: bg")
}

// A panic of a callback is logged with its stack on slog's default logger,
// and Callback returns.
func TestCallbackLogsAPanic(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(prev)
	called := false
	guard.Callback("report", func() { called = true })
	assert.True(t, called)
	assert.Empty(t, buf.String())

	guard.Callback("report", func() { nilMap() })
	assert.Contains(t, buf.String(), "level=ERROR")
	assert.Contains(t, buf.String(), "op=report")
	assert.Contains(t, buf.String(), "guard_test.nilMap")
}
