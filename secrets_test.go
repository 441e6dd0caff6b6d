package sluice

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/testutil"
)

// The secret of issue 15 item 9: the JAAS password, also (by mistake) the
// value of another option.
const kpass = "Hunter2-s3cr3t-XyZ"

// A secret used as the value of an option that is not secret used to be
// printed verbatim in that option's error (`option "minOffsetsPerTrigger":
// invalid value "Hunter2-…"`). Every error of the query is scrubbed of
// every secret value it was given, whichever option it appears in.
func TestSecretRedactedInOtherOptionsErrors(t *testing.T) {
	t.Setenv("KPASS", kpass)
	pipelineYAML := `name: secret
source:
  format: kafka
  options:
    kafka.bootstrap.servers: 127.0.0.1:1
    subscribe: t
    kafka.security.protocol: SASL_PLAINTEXT
    kafka.sasl.mechanism: PLAIN
    kafka.sasl.jaas.config: 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="${KPASS}";'
    minOffsetsPerTrigger: ${KPASS}
sink:
  format: parquet
  options:
    path: ${KPASS}-dir
    compression: ${KPASS}
    checkpointLocation: /tmp/x
`
	s := NewSession(WithLogger(discardLogger()))
	_, err := s.Pipeline("p.yaml", []byte(pipelineYAML), func(k string) (string, bool) {
		if k == "KPASS" {
			return kpass, true
		}
		return "", false
	})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "Hunter2") || !strings.Contains(err.Error(), "minOffsetsPerTrigger") || !strings.Contains(err.Error(), "compression") {
		t.Errorf("pipeline error shows the secret or misses the options:\n%v", err)
	}
	// An error of the file's structure, found before the options are
	// checked, quoting the value lowercased.
	_, err = s.Pipeline("q.yaml", []byte(pipelineYAML+"trigger:\n  processingTime: ${KPASS}\n"), func(k string) (string, bool) { return kpass, k == "KPASS" })
	if err == nil || strings.Contains(strings.ToLower(err.Error()), "hunter2") || !strings.Contains(err.Error(), "processingTime") {
		t.Errorf("structure error: %v", err)
	}
	// The Go API: the password option and the same value elsewhere.
	_, err = NewSession(WithLogger(discardLogger())).ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", "127.0.0.1:1").Option("subscribe", "t").
		Option("kafka.security.protocol", "SASL_PLAINTEXT").Option("kafka.sasl.username", "u").Option("kafka.sasl.password", kpass).
		Option("maxOffsetsPerTrigger", kpass).Load().
		WriteStream().Format("console").Start(context.Background())
	if err == nil || strings.Contains(err.Error(), "Hunter2") || !strings.Contains(err.Error(), "maxOffsetsPerTrigger") {
		t.Errorf("Start error: %v", err)
	}
	// A secret of the session configuration (a storage key) too.
	_, err = NewSession(WithLogger(discardLogger()), WithConf("fs.azure.account.key.acct.dfs.core.windows.net", kpass)).
		ReadStream().Format("rate").Option("rowsPerSecond", kpass).Load().
		WriteStream().Format("console").Start(context.Background())
	if err == nil || strings.Contains(err.Error(), "Hunter2") || !strings.Contains(err.Error(), "rowsPerSecond") {
		t.Errorf("Start error with a storage key: %v", err)
	}
}

// Errors and log lines of a running query are scrubbed too: here the
// secret (a storage key of the session) is by mistake also the topic's
// name, which a failing availableNow query names in its error and log.
func TestSecretRedactedWhileRunning(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "present", Partitions: 1})
	var logs testutil.SyncBuffer
	s := NewSession(WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithConf("fs.azure.account.key.acct.dfs.core.windows.net", kpass))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, err := s.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", kpass).Load().
		WriteStream().Format("noop").Trigger(AvailableNow()).Start(ctx)
	if err != nil {
		if strings.Contains(err.Error(), "Hunter2") {
			t.Fatalf("Start error shows the secret: %v", err)
		}
		t.Fatal(err)
	}
	err = q.AwaitTermination(ctx)
	if err == nil {
		t.Fatal("an availableNow query on a missing topic succeeded")
	}
	for what, text := range map[string]string{"AwaitTermination": err.Error(), "Exception": q.Exception().Error(), "log": logs.String()} {
		if strings.Contains(text, "Hunter2") {
			t.Errorf("%s shows the secret:\n%s", what, text)
		}
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %q: want the topic shown as [redacted]", err)
	}
}
