package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/kafkaauth/authtest"
	"github.com/sluice-stream/sluice/internal/options"
)

// TestStatusGroupOverEventHubsSecurity describes a consumer group with
// `sluice status --group` on a broker that, like Event Hubs, accepts only
// TLS with SASL PLAIN (user "$ConnectionString", the connection string as
// password): once with the connection string from an environment variable,
// once with the kafka source's own security options. A real kgo group
// consumer has committed offset 7 of 25 on partition 1 and 25 of 25 on
// partition 0.
func TestStatusGroupOverEventHubsSecurity(t *testing.T) {
	connStr := "Endpoint=sb://sluicetest.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=U2x1aWNlVGVzdEtleQ+/Zq9=;EntityPath=telemetry"
	dir := t.TempDir()
	ca := authtest.NewCA(t)
	caFile := authtest.WriteFile(t, dir, "ca.pem", ca.CertPEM())
	secure := map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.ssl.ca.location": caFile,
		"kafka.sasl.mechanism": "PLAIN", "kafka.sasl.username": "$ConnectionString", "kafka.sasl.password": connStr}
	sec, err := kafkaauth.ClientOpts(options.New(secure))
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.StartConfig(t, broker.Config{
		Topics: []broker.TopicSpec{{Name: "telemetry", Partitions: 2}},
		ExtraOpts: []kfake.Opt{kfake.TLS(ca.ServerTLS(t, false, "127.0.0.1")), kfake.EnableSASL(),
			kfake.Superuser("PLAIN", kafkaauth.EventHubsUser, connStr)},
		AdminOpts: sec,
	})
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, &kgo.Record{Topic: "telemetry", Partition: int32(i % 2), Value: []byte("e")})
	}
	pcl := brokertest.Client(t, b.Addr(), append(sec, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	ctx, cancel := context.WithTimeout(context.Background(), brokertest.Timeout)
	defer cancel()
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cl := brokertest.Client(t, b.Addr(), append(sec, kgo.ClientID("reader-1"), kgo.ConsumerGroup("lag-readers"),
		kgo.ConsumeTopics("telemetry"), kgo.DisableAutoCommit())...)
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for pollCtx.Err() == nil {
			cl.PollFetches(pollCtx)
		}
	}()
	defer func() { stopPoll(); <-polled }()
	adm := kadm.NewClient(pcl)
	for {
		dg, err := adm.DescribeGroups(ctx, "lag-readers")
		if err == nil && dg["lag-readers"].State == "Stable" && len(dg["lag-readers"].Members) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("group never stable: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var commitErr error
	cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"telemetry": {0: {Epoch: -1, Offset: 25}, 1: {Epoch: -1, Offset: 7}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			for _, tp := range resp.Topics {
				for _, p := range tp.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						commitErr = err
					}
				}
			}
		})
	if commitErr != nil {
		t.Fatal(commitErr)
	}

	// Without credentials the broker refuses, and status says so.
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"status", "--group", "lag-readers", "--bootstrap", b.Addr(), "--timeout", "3s",
		"--kafka-option", "kafka.security.protocol=SSL", "--kafka-option", "kafka.ssl.ca.location=" + caFile}, &stdout, &stderr)
	if code == 0 {
		t.Fatalf("status without SASL credentials succeeded:\n%s", stdout.String())
	}

	t.Setenv("SLUICE_TEST_EH", connStr)
	runs := map[string][]string{
		"eventhubs-env": {"--eventhubs-connection-string-env", "SLUICE_TEST_EH", "--kafka-option", "kafka.ssl.ca.location=" + caFile},
		"kafka-options": {"--kafka-option", "kafka.security.protocol=SASL_SSL", "--kafka-option", "kafka.ssl.ca.location=" + caFile,
			"--kafka-option", "kafka.sasl.mechanism=PLAIN", "--kafka-option", `kafka.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$ConnectionString" password="` + connStr + `";`},
	}
	for name, sec := range runs {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"status", "--group", "lag-readers", "--bootstrap", b.Addr(), "--format", "json"}, sec...)
			if code := realMain(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), "SharedAccessKey=") {
				t.Error("the output shows the connection string")
			}
			var rep struct {
				Group   string
				State   string
				Members []struct {
					ClientID   string
					Partitions []struct {
						Topic     string
						Partition int32
					}
				}
				Partitions []struct {
					Partition       int32
					CommittedOffset *int64
					LatestOffset    *int64
					LagRecords      *int64
					LagSeconds      *float64
					Status          string
				}
				Health     struct{ Status string }
				LagRecords int64
			}
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("%v\n%s", err, stdout.String())
			}
			if rep.Group != "lag-readers" || rep.State != "Stable" || len(rep.Members) != 1 || rep.Members[0].ClientID != "reader-1" ||
				len(rep.Members[0].Partitions) != 2 || len(rep.Partitions) != 2 || rep.LagRecords != 18 || rep.Health.Status != "OK" {
				t.Fatalf("report:\n%s", stdout.String())
			}
			want := [][3]int64{{25, 25, 0}, {7, 25, 18}}
			for i, p := range rep.Partitions {
				if p.CommittedOffset == nil || p.LatestOffset == nil || p.LagRecords == nil ||
					[3]int64{*p.CommittedOffset, *p.LatestOffset, *p.LagRecords} != want[i] || p.Status != "OK" {
					t.Errorf("partition %d:\n%s", i, stdout.String())
				}
				// The records were produced just now: the oldest unread is
				// seconds old, read over TLS+SASL.
				if p.LagSeconds == nil || *p.LagSeconds < 0 || *p.LagSeconds > 120 {
					t.Errorf("partition %d: lag seconds %v", i, p.LagSeconds)
				}
			}
		})
	}
}

func TestStatusGroupFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--group", "g", "--checkpoint", "/tmp/x", "--bootstrap", "127.0.0.1:1"}, "exclusive"},
		{[]string{"--group", "g"}, "--group needs --bootstrap"},
		{[]string{"--group", "g", "--bootstrap", "127.0.0.1:1", "--format", "yaml"}, `--format "yaml": allowed: table, json`},
		{[]string{"--group", "g", "--bootstrap", "127.0.0.1:1", "--samples", "0"}, "--samples 0"},
		{[]string{"--group", "g", "--bootstrap", "127.0.0.1:1", "--kafka-option", "kafka.security.protocol=TLS"}, "kafka.security.protocol"},
		{[]string{"--group", "g", "--bootstrap", "127.0.0.1:1", "--eventhubs-connection-string-env", "SLUICE_TEST_UNSET_VAR"}, "SLUICE_TEST_UNSET_VAR is empty or unset"},
		{[]string{"--checkpoint", "/tmp/x", "--bootstrap", "127.0.0.1:1", "--format", "json"}, "--format is only used with --group"},
	} {
		var stdout, stderr bytes.Buffer
		code := realMain(append([]string{"status"}, tc.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
