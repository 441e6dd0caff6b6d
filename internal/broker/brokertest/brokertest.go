// Package brokertest holds test helpers around the embedded broker: start one
// per test, produce and consume with kgo, and drive the kcat command-line
// client for interoperability tests.
//
// kcat tests call KcatPath first: it skips the test when kcat is not
// installed, unless the environment sets SLUICE_REQUIRE_INTEROP=1, in which
// case a missing kcat fails the test.
package brokertest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
)

// RequireInteropEnv is the environment variable that turns a missing kcat
// from a skipped test into a failed one when set to "1".
const RequireInteropEnv = "SLUICE_REQUIRE_INTEROP"

// Timeout bounds every helper's wait for the broker or kcat.
const Timeout = 30 * time.Second

// Start starts an embedded broker on a random loopback port with the given
// topics and closes it when the test ends. The broker has
// broker.Config.LibrdkafkaCompat on, so kcat really compresses what it
// produces with -z.
func Start(t testing.TB, topics ...broker.TopicSpec) *broker.Broker {
	t.Helper()
	return StartConfig(t, broker.Config{Topics: topics, LibrdkafkaCompat: true})
}

// StartConfig starts an embedded broker with cfg and closes it when the test
// ends.
func StartConfig(t testing.TB, cfg broker.Config) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Client returns a kgo client seeded with addr, closed when the test ends.
func Client(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("new kgo client for %s: %v", addr, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// ProduceSync produces records with kgo and fails the test on any error. A
// record's Partition is honoured (the client uses the manual partitioner), so
// every record must set it.
func ProduceSync(t testing.TB, addr string, records ...*kgo.Record) {
	t.Helper()
	cl := Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", len(records), addr, err)
	}
}

// ConsumeAll reads topic from the start of every partition until it has
// want records, and fails the test if they do not arrive within Timeout or if
// more than want arrive. Records are returned in fetch order, which is offset
// order within each partition.
func ConsumeAll(t testing.TB, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("new kgo consumer for %s: %v", addr, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s from %s: got %d of %d records before %v", topic, addr, len(out), want, err)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s from %s: %v", topic, addr, err)
		}
		out = append(out, fs.Records()...)
	}
	// Catch extra records: every partition must now be at its end.
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	var total int64
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		total += o.Offset - s.Offset
	})
	if int64(len(out)) != int64(want) || total != int64(want) {
		t.Fatalf("consume %s: read %d records, topic holds %d, want %d", topic, len(out), total, want)
	}
	return out
}

// KcatPath returns the path of the kcat binary. If kcat is not installed the
// test is skipped, or failed when SLUICE_REQUIRE_INTEROP=1.
func KcatPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(RequireInteropEnv) == "1" {
		t.Fatalf("kcat is not on PATH and %s=1 requires interop tests to run", RequireInteropEnv)
	}
	t.Skipf("kcat is not on PATH; set %s=1 to make this a failure", RequireInteropEnv)
	return ""
}

// RunKcat runs kcat with args and stdin, and returns its standard output. It
// fails the test, showing standard error, if kcat exits with an error or runs
// longer than Timeout.
func RunKcat(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	kcat := KcatPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = ctx.Err()
		}
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// ProduceWithKcat produces one record per element of lines to topic with
// `kcat -P`, adding args (e.g. "-K:", "-p", "2", "-z", "lz4", "-H", "k=v").
// Lines must not contain newlines. kcat's exit waits for every record to be
// acknowledged.
func ProduceWithKcat(t testing.TB, addr, topic string, lines []string, args ...string) {
	t.Helper()
	for i, l := range lines {
		if strings.Contains(l, "\n") {
			t.Fatalf("ProduceWithKcat: line %d contains a newline", i)
		}
	}
	var stdin string
	if len(lines) > 0 {
		stdin = strings.Join(lines, "\n") + "\n"
	}
	base := []string{"-P", "-q", "-b", addr, "-t", topic, "-m", "10"}
	RunKcat(t, stdin, append(base, args...)...)
}

// ConsumeWithKcat reads topic from the beginning to the current end with
// `kcat -C -e -o beginning -f format`, adding args, and returns the output.
// Each record is printed with format (kcat's -f syntax, e.g.
// "%p|%o|%k|%s\n"; %K and %S print -1 for a NULL key and value). A short
// fetch wait makes kcat notice the end of each partition quickly.
func ConsumeWithKcat(t testing.TB, addr, topic, format string, args ...string) string {
	t.Helper()
	base := []string{"-C", "-q", "-e", "-o", "beginning", "-b", addr, "-t", topic, "-m", "10",
		"-X", "fetch.wait.max.ms=20", "-f", format}
	return RunKcat(t, "", append(base, args...)...)
}
