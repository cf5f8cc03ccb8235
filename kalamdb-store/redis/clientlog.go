package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The go-redis client writes its own diagnostics (a connection that failed
// to close, a dial that failed) with the standard log package, straight to
// standard error, once per attempt. This package sends them to
// slog.Default instead, at debug level with backend=redis, so that they
// reach the program's structured log in its format without repeating, at
// every request of an outage, what the errors returned already say (the
// server logs an outage once, when it begins).
func init() { goredis.SetLogger(clientLog{}) }

// clientLog is the go-redis logger that forwards to slog.Default.
type clientLog struct{}

// Printf implements go-redis's internal.Logging.
func (clientLog) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(strings.TrimSpace(fmt.Sprintf(format, v...)), "redis: ")
	slog.Default().Log(ctx, slog.LevelDebug, msg, "backend", Name, "source", "redis client")
}
