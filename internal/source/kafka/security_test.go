package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/testutil"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/kafkaauth/authtest"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// syncBuffer is testutil.SyncBuffer.
type syncBuffer = testutil.SyncBuffer

// clientOpts turns security options into kgo options, as the source does.
func clientOpts(t *testing.T, m map[string]string) []kgo.Opt {
	t.Helper()
	opts, err := kafkaauth.ClientOpts(options.New(m))
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// produceWith produces n records per partition ("p<partition>-<i>") with a
// client using extra options (TLS, SASL).
func produceWith(t *testing.T, addr, topic string, partitions, n int, extra []kgo.Opt) {
	t.Helper()
	cl := brokertest.Client(t, addr, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, extra...)...)
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		for p := 0; p < partitions; p++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// checkpointText concatenates every file of a checkpoint directory.
func checkpointText(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		b.WriteString(p + "\n")
		b.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// assertNoSecret fails if any secret (or a recognisable part) is in any output.
func assertNoSecret(t *testing.T, outputs map[string]string, secrets ...string) {
	t.Helper()
	for name, text := range outputs {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				i := strings.Index(text, s)
				t.Errorf("%s shows a secret near: %q", name, kafkaauth.Redact(text[max(0, i-80):min(len(text), i+len(s)+20)]))
			}
		}
	}
}

func TestEventHubsOverTLSAndSASL(t *testing.T) {
	const key = "U2x1aWNlVGVzdEtleQ+/Zq9=" // looks like a real SAS key
	connStr := "Endpoint=sb://sluicetest.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=" + key + ";EntityPath=telemetry"
	dir := t.TempDir()
	ca := authtest.NewCA(t)
	caFile := authtest.WriteFile(t, dir, "ca.pem", ca.CertPEM())

	// The broker accepts exactly what Event Hubs does: TLS, SASL PLAIN,
	// user "$ConnectionString", password the connection string.
	secure := map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.ssl.ca.location": caFile,
		"kafka.sasl.username": "$ConnectionString", "kafka.sasl.password": connStr}
	b := brokertest.StartConfig(t, broker.Config{
		Topics: []broker.TopicSpec{{Name: "telemetry", Partitions: 3}},
		ExtraOpts: []kfake.Opt{kfake.TLS(ca.ServerTLS(t, false, "127.0.0.1")), kfake.EnableSASL(),
			kfake.Superuser("PLAIN", kafkaauth.EventHubsUser, connStr)},
		AdminOpts: clientOpts(t, secure),
	})
	// A client without credentials is refused: the broker really checks.
	func() {
		cl := brokertest.Client(t, b.Addr(), clientOpts(t, map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.ca.location": caFile})...)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(cl).ListEndOffsets(ctx, "telemetry"); err == nil {
			t.Fatal("the broker accepted a client without SASL credentials")
		}
	}()
	produceWith(t, b.Addr(), "telemetry", 3, 50, clientOpts(t, secure))

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := map[string]string{
		"eventhubs.connectionString": connStr,
		"eventhubs.endpoint":         b.Addr(),
		"eventhubs.tls.caFile":       caFile,
		"eventhubs.consumerGroup":    "sluice-lag",
		"maxEventsPerTrigger":        "60",
		"eventhubs.startingPosition": `{"offset":"-1","seqNo":-1,"enqueuedTime":null,"isInclusive":true}`,
	}
	src, err := kafka.NewEventHubs(opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Description(); got != "EventHubs[telemetry]" {
		t.Errorf("description %q, want EventHubs[telemetry]", got)
	}
	sink := memory.New()
	mon := monitor.New()
	rec := &recorder{}
	chk := filepath.Join(dir, "chk")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, Trigger: trigger.Trigger{Kind: trigger.AvailableNow},
		CheckpointDir: chk, Logger: logger, Observers: []engine.Observer{mon, rec}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	runErr := q.AwaitTermination(ctx)
	if runErr != nil {
		t.Fatal(runErr)
	}
	checkExactlyOnce(t, sink, 3, 50)
	if len(rec.infos) != 3 { // 150 events, 60 per batch
		t.Errorf("ran %d batches, want 3 (maxEventsPerTrigger 60)", len(rec.infos))
	}
	// eventhubs.consumerGroup received the final offsets.
	committed, err := kadm.NewClient(brokertest.Client(t, b.Addr(), clientOpts(t, secure)...)).FetchOffsets(ctx, "sluice-lag")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if o, ok := committed.Lookup("telemetry", p); !ok || o.At != 50 {
			t.Errorf("group offset of partition %d = %+v, want 50", p, o)
		}
	}

	// Everything the run put out: logs, progress JSON, status, the
	// checkpoint, the description and metrics.
	outputs := map[string]string{
		"logs":        logs.String(),
		"checkpoint":  checkpointText(t, chk),
		"status":      fmt.Sprint(q.Status()),
		"description": src.Description(),
		"config":      fmt.Sprintf("%+v %v", *src.Config(), src.Config().Security),
	}
	var progressJSON strings.Builder
	for _, p := range mon.Recent() {
		progressJSON.WriteString(p.JSON())
	}
	for i, info := range rec.infos {
		var prev time.Time
		if i > 0 {
			prev = rec.infos[i-1].TriggerStart
		}
		progressJSON.WriteString(monitor.Build(q, info, prev).JSON())
	}
	outputs["progress"] = progressJSON.String()
	if !strings.Contains(outputs["progress"], "EventHubs[telemetry]") {
		t.Errorf("progress does not describe the source as EventHubs[telemetry]: %.300s", outputs["progress"])
	}

	// Without maxEventsPerTrigger the limit is 1000 per partition.
	delete(opts, "maxEventsPerTrigger")
	dflt, err := kafka.NewEventHubs(opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	if got := dflt.DefaultReadLimit(); got.MaxRows != 0 || got.MaxRowsPerPartition != 1000 {
		t.Errorf("default read limit %+v, want 1000 per partition", got)
	}
	// The planner turns it into 3 partitions × 1000 from what the source
	// reports.
	init, err := dflt.InitialOffset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from, latest, err := dflt.Available(ctx, init)
	if err != nil {
		t.Fatal(err)
	}
	d := admission.Plan(admission.Input{Limits: admission.Limits{}.WithSourceDefaults(dflt.DefaultReadLimit()), Start: from, Latest: latest})
	if d.Limit != 3000 || d.Reason != "default limit: 1000 per partition × 3 partitions" {
		t.Errorf("default limit %d (%s), want 3 partitions × 1000", d.Limit, d.Reason)
	}
	dflt.Close()

	// The same query with a wrong key fails fast and clearly.
	badConn := strings.Replace(connStr, key, "V3JvbmdLZXk+/Zq9=", 1)
	opts["eventhubs.connectionString"] = badConn
	bad, err := kafka.NewEventHubs(opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = engine.Start(ctx, engine.Config{Source: bad, Sink: memory.New(), Trigger: trigger.Trigger{Kind: trigger.AvailableNow},
		CheckpointDir: filepath.Join(dir, "chk-bad"), Logger: logger, Workers: 2})
	bad.Close()
	if err == nil {
		t.Fatal("wrong key: query started")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("wrong key took %v to fail", took)
	}
	if !kafkaauth.IsAuthError(err) || !strings.Contains(err.Error(), `user "$ConnectionString"`) || !strings.Contains(err.Error(), "PLAIN") {
		t.Errorf("wrong key: error %q should be a SASL authentication failure naming PLAIN and $ConnectionString", err)
	}
	if !strings.Contains(err.Error(), "eventhubs.connectionString") {
		t.Errorf("wrong key: error %q should point at eventhubs.connectionString", err)
	}
	outputs["wrong key error"] = err.Error()

	// A malformed connection string names the missing part.
	_, err = kafka.NewEventHubs(map[string]string{"eventhubs.connectionString": strings.Replace(connStr, "SharedAccessKeyName=RootManageSharedAccessKey;", "", 1)}, logger)
	if err == nil || !strings.Contains(err.Error(), "SharedAccessKeyName") {
		t.Errorf("malformed connection string: error %v should name SharedAccessKeyName", err)
	}
	outputs["malformed error"] = fmt.Sprint(err)
	outputs["logs"] = logs.String()

	assertNoSecret(t, outputs, key, "V3JvbmdLZXk", connStr, badConn)
}

func TestEventHubsDefaultsAndOptions(t *testing.T) {
	const conn = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=R;SharedAccessKey=S3cretKey+/=;EntityPath=hub"
	cfg, err := kafka.ParseEventHubsConfig(map[string]string{"eventhubs.connectionString": conn})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bootstrap[0] != "ns.servicebus.windows.net:9093" || cfg.Topics[0] != "hub" || cfg.Security.Protocol != "SASL_SSL" ||
		cfg.Security.Mechanism != "PLAIN" || cfg.Security.User != "$ConnectionString" || cfg.Starting != "earliest" ||
		cfg.DefaultMaxPerPartition != 1000 || cfg.MaxOffsetsPerTrigger != 0 || cfg.CommitGroup != "" {
		t.Fatalf("unexpected config: bootstrap %v topics %v security %v starting %q default %d max %d group %q",
			cfg.Bootstrap, cfg.Topics, cfg.Security, cfg.Starting, cfg.DefaultMaxPerPartition, cfg.MaxOffsetsPerTrigger, cfg.CommitGroup)
	}
	cases := []struct {
		name string
		opts map[string]string
		want []string // error substrings; nil = valid
		chk  func(*kafka.Config) error
	}{
		{"eventhubs.name without EntityPath", map[string]string{"eventhubs.connectionString": strings.TrimSuffix(conn, ";EntityPath=hub"), "eventhubs.name": "other"}, nil,
			func(c *kafka.Config) error {
				if c.Topics[0] != "other" {
					return fmt.Errorf("topic %v", c.Topics)
				}
				return nil
			}},
		{"no hub at all", map[string]string{"eventhubs.connectionString": strings.TrimSuffix(conn, ";EntityPath=hub")}, []string{"EntityPath", "eventhubs.name"}, nil},
		{"conflicting name", map[string]string{"eventhubs.connectionString": conn, "eventhubs.name": "x"}, []string{"differs"}, nil},
		{"maxEventsPerTrigger", map[string]string{"eventhubs.connectionString": conn, "maxEventsPerTrigger": "500"}, nil,
			func(c *kafka.Config) error {
				if c.MaxOffsetsPerTrigger != 500 || c.DefaultMaxPerPartition != 0 {
					return fmt.Errorf("max %d default %d", c.MaxOffsetsPerTrigger, c.DefaultMaxPerPartition)
				}
				return nil
			}},
		{"bad maxEventsPerTrigger", map[string]string{"eventhubs.connectionString": conn, "maxEventsPerTrigger": "-1"}, []string{`"maxEventsPerTrigger"`}, nil},
		{"latest", map[string]string{"eventhubs.connectionString": conn, "eventhubs.startingPosition": `{"offset":"@latest","seqNo":-1,"enqueuedTime":null,"isInclusive":true}`}, nil,
			func(c *kafka.Config) error {
				if c.Starting != "latest" {
					return fmt.Errorf("starting %q", c.Starting)
				}
				return nil
			}},
		{"seqNo exclusive", map[string]string{"eventhubs.connectionString": conn, "eventhubs.startingPosition": `{"offset":null,"seqNo":41,"enqueuedTime":null,"isInclusive":false}`}, nil,
			func(c *kafka.Config) error {
				if c.StartingEvery != 42 {
					return fmt.Errorf("every %d", c.StartingEvery)
				}
				return nil
			}},
		{"enqueuedTime", map[string]string{"eventhubs.connectionString": conn, "eventhubs.startingPosition": `{"offset":null,"seqNo":-1,"enqueuedTime":"2024-05-01T00:00:00Z","isInclusive":true}`}, nil,
			func(c *kafka.Config) error {
				if want := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).UnixMilli(); c.StartingTimestamp != want || c.TimestampStrategy != kafka.StrategyLatest {
					return fmt.Errorf("timestamp %d strategy %q, want %d latest", c.StartingTimestamp, c.TimestampStrategy, want)
				}
				return nil
			}},
		{"two positions", map[string]string{"eventhubs.connectionString": conn, "eventhubs.startingPosition": `{"offset":"-1","seqNo":5}`}, []string{"2 of offset, seqNo and enqueuedTime"}, nil},
		{"byte offset", map[string]string{"eventhubs.connectionString": conn, "eventhubs.startingPosition": `{"offset":"12345"}`}, []string{"byte offset", "seqNo"}, nil},
		{"consumer group commits", map[string]string{"eventhubs.connectionString": conn, "eventhubs.consumerGroup": "$Default"}, nil,
			func(c *kafka.Config) error {
				if c.CommitGroup != "$Default" {
					return fmt.Errorf("group %q", c.CommitGroup)
				}
				return nil
			}},
		{"kafka security options are not allowed", map[string]string{"eventhubs.connectionString": conn, "kafka.security.protocol": "PLAINTEXT"}, []string{`"kafka.security.protocol"`}, nil},
		{"missing connection string", map[string]string{"eventhubs.name": "hub"}, []string{`"eventhubs.connectionString"`, "required"}, nil},
		{"malformed key part", map[string]string{"eventhubs.connectionString": strings.Replace(conn, ";SharedAccessKey=S3cretKey+/=", "", 1)}, []string{"no SharedAccessKey"}, nil},
		{"malformed endpoint", map[string]string{"eventhubs.connectionString": strings.Replace(conn, "sb://", "amqps://", 1)}, []string{"Endpoint"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := kafka.ParseEventHubsConfig(c.opts)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := c.chk(cfg); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "S3cretKey") {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestSASLMechanismsReadThroughTheSource(t *testing.T) {
	const pw = "Tr0ub4dor&3-pass"
	b := brokertest.StartConfig(t, broker.Config{
		Topics: []broker.TopicSpec{{Name: "s", Partitions: 2}},
		ExtraOpts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "alice", pw),
			kfake.Superuser("SCRAM-SHA-256", "bob", pw), kfake.Superuser("SCRAM-SHA-512", "carol", pw)},
		AdminOpts: clientOpts(t, map[string]string{"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.username": "alice", "kafka.sasl.password": pw}),
	})
	produceWith(t, b.Addr(), "s", 2, 20, clientOpts(t, map[string]string{"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.username": "alice", "kafka.sasl.password": pw}))
	cases := []struct {
		mech, user, jaas string
	}{
		{"PLAIN", "alice", `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="%s";`},
		{"SCRAM-SHA-256", "bob", `org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="%s";`},
		{"SCRAM-SHA-512", "carol", `kafkashaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="carol" password="%s";`},
	}
	for _, c := range cases {
		t.Run(c.mech, func(t *testing.T) {
			opts := func(pass string) map[string]string {
				return map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "s", "startingOffsets": "earliest",
					"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": c.mech, "kafka.sasl.jaas.config": fmt.Sprintf(c.jaas, pass)}
			}
			sink := memory.New()
			if _, err := runQuery(t, opts(pw), trigger.Trigger{Kind: trigger.AvailableNow}, t.TempDir(), sink, nil); err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, sink, 2, 20)

			// Wrong password: the query does not start, quickly, and
			// says why without the password.
			const wrong = "not-the-Password-9"
			logs := &syncBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			src, err := kafka.New(opts(wrong), logger)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			start := time.Now()
			_, err = engine.Start(context.Background(), engine.Config{Source: src, Sink: memory.New(), CheckpointDir: t.TempDir(), Logger: logger})
			took := time.Since(start)
			if err == nil {
				t.Fatal("query started with a wrong password")
			}
			var ae *kafkaauth.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an authentication failure", err)
			}
			for _, w := range []string{"SASL authentication failed", c.mech, fmt.Sprintf("user %q", c.user)} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if took > 5*time.Second {
				t.Errorf("wrong password failed after %v; want a few seconds", took)
			}
			// No retry storm: later calls fail at once with the same error.
			start = time.Now()
			if _, err := src.InitialOffset(context.Background()); !kafkaauth.IsAuthError(err) || time.Since(start) > 100*time.Millisecond {
				t.Errorf("second call: %v after %v, want the cached authentication error at once", err, time.Since(start))
			}
			assertNoSecret(t, map[string]string{"error": err.Error(), "logs": logs.String(), "description": src.Description()}, wrong, pw)
		})
	}
}
