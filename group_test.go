package sluice

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// What group mode does not support yet is refused before anything runs
// (by the check behind Session.Pipeline, Start and lint) with an error
// that names sluice.group; nothing is read.
func TestGroupModeRefusals(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "in", Partitions: 2})
	src := fmt.Sprintf(`source:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: in
    sluice.group: refused
`, b.Addr())
	dir := t.TempDir()
	cases := []struct {
		name, rest, want string
	}{
		{"dead letters", fmt.Sprintf("sink:\n  format: console\ndeadLetter:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: %s\n    topic: dlq\n", b.Addr()), "dead-letter sink"},
		{"stateful", "transform:\n  - withColumn: {name: ts, expr: \"timestamp\"}\n  - withWatermark: {eventTime: ts, delay: 1 minute}\n  - dropDuplicates: {columns: [key], withinWatermark: true}\nsink:\n  format: console\n", "stateful queries"},
		{"json dead letters beside the kafka sink", fmt.Sprintf("sink:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: %[1]s\n    topic: out\ndeadLetter:\n  format: json\n  options:\n    path: %[2]s\n", b.Addr(), filepath.Join(dir, "dlq")), "a json dead-letter sink with the kafka sink is not supported"},
		{"kafka dead letters on another cluster", fmt.Sprintf("sink:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: %s\n    topic: out\ndeadLetter:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: 127.0.0.1:1\n    topic: dlq\n", b.Addr()), "dead-letter sink: in group mode the dead letters are written in the Kafka sink's transaction"},
		{"kafka sink on another cluster", "sink:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: 127.0.0.1:1\n    topic: out\n", `"kafka.bootstrap.servers" differ`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			yaml := src + c.rest + fmt.Sprintf("checkpointLocation: %s\n", filepath.Join(dir, fmt.Sprint("chk", i)))
			// The check behind Start finds it when the pipeline is read
			// (and `sluice lint` does).
			w, err := NewSession(WithLogger(quietLog)).Pipeline("group.yaml", []byte(yaml), nil)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				q, serr := w.Start(ctx)
				if serr == nil {
					q.Stop()
					t.Fatal("started")
				}
				err = serr
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "sluice.group") {
				t.Errorf("err = %v; want it to say %q and name sluice.group", err, c.want)
			}
		})
	}
	// A Kafka dead-letter topic beside the Kafka sink is group mode's
	// (exactly once: TestGroupModeThreeMembersKillOneExactlyOnce).
	yaml := src + fmt.Sprintf("sink:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: %[1]s\n    topic: out\ndeadLetter:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: %[1]s\n    topic: dlq\ncheckpointLocation: %[2]s\n", b.Addr(), filepath.Join(dir, "chk-dl"))
	if _, err := NewSession(WithLogger(quietLog)).Pipeline("group.yaml", []byte(yaml), nil); err != nil {
		t.Errorf("a Kafka dead-letter topic beside the Kafka sink in group mode: %v", err)
	}
}

// A member's local checkpoint is checkpointLocation/members/<member>.
func TestGroupModeMemberCheckpoint(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "in", Partitions: 2})
	chk := filepath.Join(t.TempDir(), "chk")
	w, err := NewSession(WithLogger(quietLog)).Pipeline("group.yaml", []byte(fmt.Sprintf(`source:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: in
    sluice.group: local
    sluice.group.member: pod-7
sink:
  format: noop
checkpointLocation: %s
`, b.Addr(), chk)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := w.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	if _, err := os.Stat(filepath.Join(chk, "members", "pod-7", "metadata")); err != nil {
		t.Errorf("member checkpoint: %v", err)
	}
}
