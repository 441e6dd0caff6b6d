package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/torture"
)

// TestTortureExactlyOnce kills a Kafka → sink pipeline (this test binary
// re-executed as `sluice run`) with SIGKILL at random moments while a
// producer writes, and checks the committed output holds every record once.
// CI runs 10 kills per sink; `sluice torture --kills 50` is the long form.
func TestTortureExactlyOnce(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy test: set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	for _, sk := range []string{"parquet", "json", "delta", "kafka"} {
		t.Run(sk, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			res, err := torture.Run(ctx, torture.Config{
				Command: func(ctx context.Context, args ...string) *exec.Cmd {
					cmd := exec.CommandContext(ctx, os.Args[0])
					cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN_ARGS="+strings.Join(args, "\x1f"))
					return cmd
				},
				Sink: sk, Kills: 10, Records: 3000, Dir: t.TempDir(), Seed: uint64(time.Now().UnixNano()),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res)
			if !res.OK() {
				t.Fatalf("not exactly once: %s", res)
			}
		})
	}
}
