package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The go-redis client writes its own diagnostics (a connection that failed
// to close, a pool problem) with the standard log package, straight to
// standard error. This package sends them to slog.Default instead, at
// warning level with backend=redis, so that they reach the program's
// structured log in its format.
func init() { goredis.SetLogger(clientLog{}) }

// clientLog is the go-redis logger that forwards to slog.Default.
type clientLog struct{}

// Printf implements go-redis's internal.Logging.
func (clientLog) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(strings.TrimSpace(fmt.Sprintf(format, v...)), "redis: ")
	slog.Default().Log(ctx, slog.LevelWarn, msg, "backend", Name, "source", "redis client")
}
