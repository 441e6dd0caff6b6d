package main

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestHugePagesFlag: `sluice broker` in memory and `sluice loadgen`
// prepare their heap for transparent huge pages with --huge-pages (their
// debug log says how many bytes), and not by default, nor a broker with
// --data-dir. Each runs as a process of its own (the preparation is once per
// process).
func TestHugePagesFlag(t *testing.T) {
	if mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || !strings.Contains(string(mode), "[madvise]") {
		t.Skip("transparent huge pages are not in madvise mode here: nothing to prepare")
	}
	const line = "heap prepared for transparent huge pages"
	broker := []string{"broker", "--listen", "127.0.0.1:0", "--log-level", "debug"}
	loadgen := []string{"loadgen", "--duration", "200ms", "--rate", "100", "--quiet", "--log-level", "debug"}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{append(broker, "--huge-pages"), true},
		{broker, false},
		{append(broker, "--huge-pages", "--data-dir", t.TempDir()), false},
		{append(loadgen, "--huge-pages"), true},
		{loadgen, false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := selfCommand(ctx, tc.args...)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if tc.args[0] == "broker" { // runs until interrupted: once it listens
			sc := bufio.NewScanner(out)
			for sc.Scan() && !strings.HasPrefix(sc.Text(), "bootstrap servers:") {
			}
			_ = cmd.Process.Signal(os.Interrupt)
		}
		_, _ = bufio.NewReader(out).WriteTo(new(strings.Builder))
		err = cmd.Wait()
		cancel()
		if err != nil {
			t.Fatalf("sluice %s: %v\n%s", strings.Join(tc.args, " "), err, stderr.String())
		}
		if got := strings.Contains(stderr.String(), line); got != tc.want {
			t.Errorf("sluice %s: logged %q: %v, want %v\n%s", strings.Join(tc.args, " "), line, got, tc.want, stderr.String())
		}
	}
}
