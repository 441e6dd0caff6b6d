// Package kgolog passes a franz-go client's log to the query's slog logger:
// the client's errors and warnings as they are, its info lines (group steps,
// transactions, partition moves) at debug, and its per-request debug lines
// not at all. Each line is prefixed with the client's role.
package kgolog

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Logger implements kgo.Logger on a slog.Logger.
type Logger struct {
	l      *slog.Logger
	prefix string
}

// New returns a kgo.Logger that logs to l, each message after prefix
// (e.g. "kafka sink client: ").
func New(l *slog.Logger, prefix string) Logger { return Logger{l: l, prefix: prefix} }

// Level implements kgo.Logger: info when l logs debug lines, else warn, so
// that franz-go builds no line nobody reads.
func (g Logger) Level() kgo.LogLevel {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

// Log implements kgo.Logger.
func (g Logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		g.l.Error(g.prefix+msg, keyvals...)
	case kgo.LogLevelWarn:
		g.l.Warn(g.prefix+msg, keyvals...)
	case kgo.LogLevelInfo:
		g.l.Debug(g.prefix+msg, keyvals...)
	}
}
