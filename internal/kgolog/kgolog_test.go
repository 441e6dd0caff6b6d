package kgolog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLogger(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		wantLevel kgo.LogLevel
		want      []string // lines logged, in order
	}{
		{slog.LevelInfo, kgo.LogLevelWarn, []string{"level=ERROR msg=\"c: e\" k=1", "level=WARN msg=\"c: w\" k=2"}},
		{slog.LevelDebug, kgo.LogLevelInfo, []string{"level=ERROR msg=\"c: e\" k=1", "level=WARN msg=\"c: w\" k=2", "level=DEBUG msg=\"c: i\" k=3"}},
	} {
		var buf bytes.Buffer
		l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}})), "c: ")
		if got := l.Level(); got != tc.wantLevel {
			t.Errorf("slog %v: Level() = %v, want %v", tc.level, got, tc.wantLevel)
		}
		l.Log(kgo.LogLevelError, "e", "k", 1)
		l.Log(kgo.LogLevelWarn, "w", "k", 2)
		l.Log(kgo.LogLevelInfo, "i", "k", 3)
		l.Log(kgo.LogLevelDebug, "d", "k", 4) // never passed
		got := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("slog %v logged:\n%s\nwant:\n%s", tc.level, buf.String(), strings.Join(tc.want, "\n"))
		}
	}
}
