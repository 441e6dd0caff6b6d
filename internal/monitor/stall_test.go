package monitor_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/lag"
	"github.com/sluice-stream/sluice/internal/metrics"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/testutil"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// startWatched runs a query on topic with the monitor and a logger writing
// to the returned buffer.
func startWatched(t *testing.T, addr, topic string, mon *monitor.Monitor, srcOpts map[string]string) (*engine.Query, *testutil.SyncBuffer) {
	t.Helper()
	opts := map[string]string{"kafka.bootstrap.servers": addr, "subscribe": topic, "startingOffsets": "earliest"}
	for k, v := range srcOpts {
		opts[k] = v
	}
	src, err := kafka.New(opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	q, err := engine.Start(context.Background(), engine.Config{
		Name: "lagtest", Source: src, Sink: memory.New(), Trigger: trigger.Trigger{}, CheckpointDir: filepath.Join(t.TempDir(), "chk"),
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Observers: []engine.Observer{mon}, Workers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		q.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		mon.Close(ctx)
	})
	return q, logs
}

// waitHealth polls the monitor's live health until it is want and its
// reason contains every one of reasons.
func waitHealth(t *testing.T, mon *monitor.Monitor, want string, timeout time.Duration, reasons ...string) monitor.Snapshot {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := mon.Snapshot()
		if s.Health != nil && s.Health.Status == want && containsAll(s.Health.Reason, reasons) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("health is %+v after %s, want %s (status %q)", s.Health, timeout, want, s.Status.Message)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// An idle query that has nothing to read is healthy: it used to show
// sluice_health_status{status="ERR"} 1 forever, since no batch ever ran.
func TestIdleQueryIsOK(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "idle", Partitions: 2})
	reg := prometheus.NewRegistry()
	mets, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	mon := monitor.New(monitor.WithMetrics(mets))
	q, _ := startWatched(t, b.Addr(), "idle", mon, nil)
	// Wait until the query has looked at the source and found nothing.
	for deadline := time.Now().Add(20 * time.Second); q.Status().Message != "Waiting for data to arrive"; {
		if time.Now().After(deadline) {
			t.Fatalf("status %q", q.Status().Message)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := mon.Snapshot()
	if s.Health == nil || s.Health.Status != "OK" || !strings.Contains(s.Health.Reason, "nothing to read") {
		t.Fatalf("idle health %+v, want OK with nothing to read", s.Health)
	}
	got := scrape(t, reg)
	if got["sluice_health_status{status=OK}"] != 1 || got["sluice_health_status{status=ERR}"] != 0 {
		t.Errorf("health gauges OK=%v ERR=%v, want 1 and 0", got["sluice_health_status{status=OK}"], got["sluice_health_status{status=ERR}"])
	}
}

// A broker that accepts requests but never answers them (a hang) used to
// leave the health OK, with nothing logged. The query is STALL once no
// progress was made for the stall threshold, says why, and logs both the
// start and the end of the stall.
func TestHealthStallsWhileBrokerHangs(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "h", Partitions: 2})
	produce(t, b.Addr(), "h", 2, 10)
	reg := prometheus.NewRegistry()
	mets, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	mon := monitor.New(monitor.WithMetrics(mets), monitor.WithHealth(lag.Config{StallAfter: 500 * time.Millisecond}))
	_, logs := startWatched(t, b.Addr(), "h", mon, nil)
	waitHealth(t, mon, "OK", 20*time.Second)
	for deadline := time.Now().Add(20 * time.Second); mon.Snapshot().Lag == nil || mon.Snapshot().Lag.Records != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the query did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Every ListOffsets request waits, unanswered, until release is
	// closed; then the broker answers it normally.
	release := make(chan struct{})
	var released atomic.Bool
	defer func() {
		if !released.Swap(true) {
			close(release)
		}
	}()
	b.Cluster().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		if !released.Load() {
			b.Cluster().SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	s := waitHealth(t, mon, "STALL", 20*time.Second)
	if !strings.Contains(s.Health.Reason, "no progress for") || !strings.Contains(s.Health.Reason, "KafkaV2[Subscribe[h]]") {
		t.Errorf("stall reason %q, want how long and what the query waits for", s.Health.Reason)
	}
	if got := scrape(t, reg); got["sluice_health_status{status=STALL}"] != 1 || got["sluice_health_status{status=OK}"] != 0 {
		t.Errorf("health gauges during the hang: STALL=%v OK=%v", got["sluice_health_status{status=STALL}"], got["sluice_health_status{status=OK}"])
	}
	if !strings.Contains(logs.String(), `level=WARN msg="query health STALL"`) {
		t.Errorf("the stall was not logged:\n%s", logs.String())
	}

	released.Store(true)
	close(release)
	waitHealth(t, mon, "OK", 30*time.Second)
	if !strings.Contains(logs.String(), `level=INFO msg="query health OK again"`) {
		t.Errorf("the end of the stall was not logged:\n%s", logs.String())
	}
}

// A broker that is gone (connection refused) makes the query STALL too,
// with the source's own explanation.
func TestHealthStallsWhileBrokerIsDown(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "d", Partitions: 1})
	produce(t, b.Addr(), "d", 1, 5)
	mon := monitor.New(monitor.WithHealth(lag.Config{StallAfter: 500 * time.Millisecond}))
	q, logs := startWatched(t, b.Addr(), "d", mon, map[string]string{"sluice.reconnect.timeout": "5m"})
	waitHealth(t, mon, "OK", 20*time.Second)
	b.Close()
	// The reason carries the source's explanation once the source has
	// failed to reach the broker.
	waitHealth(t, mon, "STALL", 30*time.Second, "no progress for", "Waiting for Kafka brokers")
	if !strings.Contains(logs.String(), `msg="query health STALL"`) {
		t.Errorf("the stall was not logged:\n%s", logs.String())
	}
	// Stopping the query ends the stall without the broker coming back:
	// that is not a recovery and is not logged as one.
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "query health OK again") {
		t.Errorf("stopping the query was logged as a recovery:\n%s", logs.String())
	}
}
