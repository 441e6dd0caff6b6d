package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	kafkasrc "github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/testutil"
)

// Group mode's acceptance test: three `sluice run` processes on one
// pipeline with sluice.group form one query over a 12-partition topic
// while a producer writes; each owns at least one partition; one is
// killed with SIGKILL (no leave, an open transaction left behind) and its
// partitions move to the other two once the coordinator's session timeout
// notices; at the end every input record (partition, offset) is in the
// Kafka sink's output exactly once, read back with read_committed; the
// two survivors stop on SIGTERM with exit 0.

const (
	groupInTopic    = "group-in"
	groupOutTopic   = "group-out"
	groupDLTopic    = "group-dlq"
	groupName       = "sluice-accept"
	groupPartitions = 12
	groupSession    = 6 * time.Second // kfake's minimum session timeout
)

// groupPipeline is the members' shared pipeline: each output record's
// value is the source partition and offset it came from. sinkBlock is the
// sink's YAML ("" for the Kafka sink); %[1]s in it is the test directory.
// With deadLetters, the query runs under ANSI mode and casts each value to
// an INT, so records whose value is not a number go to the dead-letter
// topic groupDLTopic.
func groupPipeline(t *testing.T, addr, dir, sinkBlock string, deadLetters bool) string {
	t.Helper()
	p := filepath.Join(dir, "group.yaml")
	var head, filter, dl string
	if deadLetters {
		head = "options:\n  spark.sql.ansi.enabled: true\n"
		filter = "  - filter: \"CAST(CAST(value AS STRING) AS INT) >= 0\"\n"
		dl = fmt.Sprintf("deadLetter:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: %s\n    topic: %s\n", addr, groupDLTopic)
	}
	if sinkBlock == "" {
		sinkBlock = fmt.Sprintf(`sink:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    topic: %s
    kafka.transaction.timeout.ms: 8000
`, addr, groupOutTopic)
	}
	yaml := fmt.Sprintf(`name: grouped
%[7]ssource:
  format: kafka
  options:
    kafka.bootstrap.servers: %[1]s
    subscribe: %[2]s
    startingOffsets: earliest
    maxOffsetsPerTrigger: 300
    sluice.group: %[3]s
    kafka.session.timeout.ms: %[4]d
    kafka.heartbeat.interval.ms: 300
    kafka.rebalance.timeout.ms: 10000
transform:
%[8]s  - selectExpr: ["CAST(partition AS STRING) AS key", "concat(CAST(partition AS STRING), ':', CAST(offset AS STRING)) AS value"]
%[5]s%[9]scheckpointLocation: %[6]s
`, addr, groupInTopic, groupName, groupSession.Milliseconds(), sinkBlock, filepath.Join(dir, "chk"), head, filter, dl)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// groupMember starts this test binary as `sluice run PIPELINE`.
func groupMember(t *testing.T, pipeline, progressFile string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN_ARGS="+strings.Join([]string{"run", pipeline, "--ui-addr", "off", "--log-level", "info",
		"--shutdown-timeout", "20s", "--progress-file", progressFile}, "\x1f"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &out
}

// groupOwnership describes the group: member client id → partitions of
// the input topic it owns; ok is false unless the group is Stable.
func groupOwnership(ctx context.Context, adm *kadm.Client) (map[string][]int32, bool) {
	described, err := adm.DescribeGroups(ctx, groupName)
	if err != nil {
		return nil, false
	}
	g, found := described[groupName]
	if !found || g.Err != nil || g.State != "Stable" {
		return nil, false
	}
	out := map[string][]int32{}
	for _, m := range g.Members {
		assigned, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, false
		}
		var ps []int32
		for _, t := range assigned.Topics {
			if t.Topic == groupInTopic {
				ps = append(ps, t.Partitions...)
			}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[m.MemberID] = ps
	}
	return out, true
}

// waitOwnership waits until the group is stable with want members that
// together own all partitions, each at least one, and returns the
// ownership and when it was seen.
func waitOwnership(t *testing.T, adm *kadm.Client, want int, timeout time.Duration, members ...*syncBuffer) map[string][]int32 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string][]int32
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		own, ok := groupOwnership(ctx, adm)
		cancel()
		if ok {
			last = own
			total, each := 0, true
			for _, ps := range own {
				total += len(ps)
				each = each && len(ps) >= 1
			}
			if len(own) == want && total == groupPartitions && each {
				return own
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	var logs []string
	for i, m := range members {
		logs = append(logs, fmt.Sprintf("--- member %d:\n%s", i, m.String()))
	}
	t.Fatalf("the group never had %d members owning all %d partitions (last seen: %v)\n%s", want, groupPartitions, last, strings.Join(logs, "\n"))
	return nil
}

// readCommittedOutput reads the output topic with read_committed up to
// its end (after every transaction has ended), and returns the input
// (partition, offset) pairs found with how often each occurs.
func readCommittedOutput(t *testing.T, addr string) map[string]int {
	t.Helper()
	return readCommittedTopic(t, addr, groupOutTopic, func(r *kgo.Record) string { return string(r.Value) })
}

// readCommittedDeadLetters reads the dead-letter topic as
// readCommittedOutput reads the output: the input (partition, offset) of
// each dead letter (from its headers) with how often each occurs. Every
// dead letter must hold a malformed input value and its reason.
func readCommittedDeadLetters(t *testing.T, addr string) map[string]int {
	t.Helper()
	return readCommittedTopic(t, addr, groupDLTopic, func(r *kgo.Record) string {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		if !strings.HasPrefix(string(r.Value), "bad-") || !strings.Contains(h["sluice.dlq.reason"], "CAST_INVALID_INPUT") || h["sluice.dlq.topic"] != groupInTopic {
			t.Errorf("dead letter %q with headers %v: not a malformed input record with its reason", r.Value, h)
		}
		return h["sluice.dlq.partition"] + ":" + h["sluice.dlq.offset"]
	})
}

// readCommittedTopic reads topic with read_committed up to its end (after
// every transaction on it has ended) and counts the records by key(r).
func readCommittedTopic(t *testing.T, addr, topic string, key func(r *kgo.Record) string) map[string]int {
	t.Helper()
	groupOutTopic := topic
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(brokertest.Client(t, addr))
	// Every transaction on the output has ended once the last stable
	// offset reaches the high watermark on every partition (the killed
	// member's open transaction ends when the broker aborts it after
	// kafka.transaction.timeout.ms).
	var ends kadm.ListedOffsets
	for {
		var err error
		ends, err = adm.ListEndOffsets(ctx, groupOutTopic)
		if err == nil {
			err = ends.Error()
		}
		stable, err2 := adm.ListCommittedOffsets(ctx, groupOutTopic)
		if err == nil && err2 == nil && stable.Error() == nil {
			same := true
			ends.Each(func(o kadm.ListedOffset) {
				s, _ := stable.Lookup(o.Topic, o.Partition)
				same = same && s.Offset == o.Offset
			})
			if same {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("transactions on %s never all ended: %v %v", groupOutTopic, err, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cl := brokertest.Client(t, addr,
		kgo.ConsumeTopics(groupOutTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	next := map[int32]int64{}
	done := func() bool {
		all := true
		ends.Each(func(o kadm.ListedOffset) { all = all && next[o.Partition] >= o.Offset })
		return all
	}
	seen := map[string]int{}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %v (positions %v)", groupOutTopic, ctx.Err(), next)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %s: %v", groupOutTopic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				seen[key(r)]++
			}
		})
		// Aborted transactions' records and markers are skipped by
		// read_committed: the position still moves past them.
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.LastStableOffset > 0 && p.LastStableOffset >= p.HighWatermark && len(p.Records) == 0 {
				next[p.Partition] = max(next[p.Partition], p.HighWatermark)
			}
		})
	}
	return seen
}

func TestGroupModeThreeMembersKillOneExactlyOnce(t *testing.T) {
	t.Run("kafka sink", func(t *testing.T) {
		testGroupKillOne(t, "", func(t *testing.T, addr, _ string) map[string]int { return readCommittedOutput(t, addr) })
	})
	t.Run("delta sink", func(t *testing.T) {
		testGroupKillOne(t, "sink:\n  format: delta\n  options:\n    path: %[1]s/table\n", readDeltaOutput)
	})
	t.Run("parquet sink", func(t *testing.T) {
		testGroupKillOne(t, "sink:\n  format: parquet\n  options:\n    path: %[1]s/out\n", readParquetOutput)
	})
	// Malformed records (one in eleven) go to a dead-letter topic in the
	// batch's transaction: every input record is in the output or the
	// dead-letter topic, exactly once, across the kill and the rebalances.
	t.Run("kafka sink with dead letters", func(t *testing.T) {
		testGroupKillOne(t, "", func(t *testing.T, addr, _ string) map[string]int { return readCommittedOutput(t, addr) }, withDeadLetters)
	})
}

// withDeadLetters makes testGroupKillOne's producer write malformed
// records and its pipeline route them to a dead-letter topic.
const withDeadLetters = true

// readParquetOutput reads the files the parquet sink's logs commit (the
// query log and the group log, merged) and returns the input (partition,
// offset) pairs with how often each occurs; it checks that the group log
// ends each partition at its end offset. With DuckDB at hand
// (SLUICE_DUCKDB_DIR), an independent reader of the logs must see the same
// files, rows and ends.
func readParquetOutput(t *testing.T, addr, dir string) map[string]int {
	t.Helper()
	out := filepath.Join(dir, "out")
	files, err := filesink.ReadLog(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	rows := 0
	for _, f := range files {
		tab, err := parquetio.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range tab.Rows {
			seen[row[1].(string)]++
			rows++
		}
	}
	gends, err := filesink.ReadGroupEnds(out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(brokertest.Client(t, addr)).ListEndOffsets(ctx, groupInTopic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if v := gends[partition.ID{Topic: groupInTopic, Partition: o.Partition}]; v != o.Offset {
			t.Errorf("group log end of partition %d: %d, want its end offset %d (ends %v)", o.Partition, v, o.Offset, gends)
		}
	})
	if os.Getenv("SLUICE_DUCKDB_DIR") != "" {
		var res struct {
			Files     []string         `json:"files"`
			Count     int              `json:"count"`
			GroupEnds map[string]int64 `json:"groupEnds"`
		}
		if err := json.Unmarshal(testutil.RunVerify(t, testutil.DuckDBDir(t), out), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Files) != len(files) || res.Count != rows {
			t.Errorf("DuckDB read %d files and %d rows; sluice's reader %d and %d", len(res.Files), res.Count, len(files), rows)
		}
		for tp, e := range gends {
			if res.GroupEnds[fmt.Sprintf("%s-%d", tp.Topic, tp.Partition)] != e {
				t.Errorf("DuckDB group ends %v; sluice's %v", res.GroupEnds, gends)
				break
			}
		}
	}
	return seen
}

// readDeltaOutput reads the Delta table's live files and returns the
// input (partition, offset) pairs with how often each occurs; it checks
// that the table's txn per partition is the partition's end offset.
func readDeltaOutput(t *testing.T, addr, dir string) map[string]int {
	t.Helper()
	table := filepath.Join(dir, "table")
	files, txns, _, err := delta.Snapshot(table)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range files {
		tab, err := parquetio.ReadFile(filepath.Join(table, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range tab.Rows {
			seen[row[1].(string)]++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(brokertest.Client(t, addr)).ListEndOffsets(ctx, groupInTopic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if v := txns[fmt.Sprintf("sluice-group/%s/%s/%d", groupName, groupInTopic, o.Partition)]; v != o.Offset {
			t.Errorf("Delta txn of partition %d: %d, want its end offset %d (txns %v)", o.Partition, v, o.Offset, txns)
		}
	})
	return seen
}

func testGroupKillOne(t *testing.T, sinkBlock string, output func(t *testing.T, addr, dir string) map[string]int, deadLetters ...bool) {
	dl := len(deadLetters) > 0 && deadLetters[0]
	b := brokertest.Start(t, broker.TopicSpec{Name: groupInTopic, Partitions: groupPartitions}, broker.TopicSpec{Name: groupOutTopic, Partitions: 3}, broker.TopicSpec{Name: groupDLTopic, Partitions: 2})
	addr := b.Addr()
	adm := kadm.NewClient(brokertest.Client(t, addr))

	// The producer writes round-robin over the 12 partitions until told
	// to stop; produced counts what was acknowledged.
	prod := brokertest.Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var produced, malformed int64
	stopProducing := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopProducing:
				return
			default:
			}
			var recs []*kgo.Record
			var bad int64
			for j := 0; j < 24; j++ {
				v := fmt.Sprintf(`{"i":%d,"j":%d}`, i, j)
				if dl {
					v = strconv.Itoa(i*24 + j)
					if (i*24+j)%11 == 3 {
						v, bad = "bad-"+v, bad+1
					}
				}
				recs = append(recs, &kgo.Record{Topic: groupInTopic, Partition: int32(j % groupPartitions), Value: []byte(v)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := prod.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			produced += int64(len(recs))
			malformed += bad
			time.Sleep(20 * time.Millisecond)
		}
	}()

	dir := t.TempDir()
	if sinkBlock != "" {
		sinkBlock = fmt.Sprintf(sinkBlock, dir)
	}
	pipeline := groupPipeline(t, addr, dir, sinkBlock, dl)
	var cmds []*exec.Cmd
	var outs []*syncBuffer
	var progressFiles []string
	for i := range 3 {
		pf := filepath.Join(t.TempDir(), fmt.Sprintf("progress-%d.jsonl", i))
		cmd, out := groupMember(t, pipeline, pf)
		cmds, outs, progressFiles = append(cmds, cmd), append(outs, out), append(progressFiles, pf)
	}
	own := waitOwnership(t, adm, 3, 60*time.Second, outs...)
	t.Logf("three members: %v", own)
	for i, out := range outs {
		waitOutput(t, out, "batch ")
		if !strings.Contains(out.String(), "partitions assigned by the group") {
			t.Errorf("member %d does not log its assignment:\n%s", i, out.String())
		}
	}

	// Kill one member: no LeaveGroup, a transaction possibly left open.
	victim := 0
	if err := cmds[victim].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmds[victim].Wait()
	own = waitOwnership(t, adm, 2, groupSession+30*time.Second, outs[1:]...)
	moved := time.Since(killed)
	t.Logf("partitions of the killed member moved in %v (session timeout %v): %v", moved.Round(time.Millisecond), groupSession, own)
	if moved > groupSession+10*time.Second {
		t.Errorf("the killed member's partitions took %v to move; the session timeout is %v", moved, groupSession)
	}

	// Keep producing for a while under two members, then stop.
	time.Sleep(2 * time.Second)
	close(stopProducing)
	wg.Wait()
	total := produced
	t.Logf("produced %d records", total)

	// Wait until the survivors have committed everything: the group's
	// offsets reach the input's end on every partition.
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		lag, err := adm.Lag(ctx, groupName)
		cancel()
		if err == nil {
			if gl, ok := lag[groupName]; ok && gl.FetchErr == nil && gl.DescribeErr == nil {
				var sum int64
				for _, ps := range gl.Lag {
					for _, l := range ps {
						sum += l.Lag
					}
				}
				if sum == 0 && len(gl.Lag[groupInTopic]) == groupPartitions {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group never caught up: %v\n--- member 1:\n%s\n--- member 2:\n%s", lag, outs[1].String(), outs[2].String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SIGTERM: each survivor commits its in-flight batch, leaves the
	// group and exits 0.
	for i, cmd := range cmds[1:] {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("member %d after SIGTERM: %v\n%s", i+1, err, outs[i+1].String())
		}
	}

	// The survivors' progress names the group, the member and the
	// partitions it owned; Spark's fields are there as ever. (The killed
	// member's file may have lost its buffered tail.)
	for i, pf := range progressFiles[1:] {
		reports, err := queryrun.ReadProgress(pf)
		if err != nil {
			t.Fatal(err)
		}
		var batches int
		for _, p := range reports {
			if p.Sluice == nil || p.Sluice.Group == nil || p.NumInputRows == 0 {
				continue
			}
			g := p.Sluice.Group
			if g.Group != groupName || g.Member == "" || !strings.HasPrefix(g.MemberID, "sluice-") || len(g.Partitions) == 0 || p.ID == "" || len(p.Sources) != 1 {
				t.Errorf("member %d: progress of batch %d: group %+v, id %q, %d sources", i, p.BatchID, g, p.ID, len(p.Sources))
			}
			batches++
		}
		if batches == 0 {
			t.Errorf("member %d: no progress report names its group (%d reports)", i, len(reports))
		}
	}

	seen := output(t, addr, dir)
	if dl {
		dead := readCommittedDeadLetters(t, addr)
		if len(dead) != int(malformed) {
			t.Errorf("dead-letter topic: %d distinct input records, %d malformed produced", len(dead), malformed)
		}
		for k, n := range dead {
			if seen[k] != 0 {
				t.Errorf("input record %s is both in the output and a dead letter", k)
			}
			seen[k] += n
		}
		t.Logf("%d malformed records, each once in the dead-letter topic", malformed)
	}
	var missing, dup int
	for p := int32(0); p < groupPartitions; p++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := adm.ListEndOffsets(ctx, groupInTopic)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		end, _ := ends.Lookup(groupInTopic, p)
		for off := int64(0); off < end.Offset; off++ {
			switch n := seen[strconv.Itoa(int(p))+":"+strconv.FormatInt(off, 10)]; {
			case n == 0:
				missing++
			case n > 1:
				dup++
			}
		}
	}
	if len(seen) != int(total) || missing != 0 || dup != 0 {
		t.Fatalf("output: %d distinct (partition, offset) of %d produced; %d missing, %d duplicated", len(seen), total, missing, dup)
	}
	abandoned := 0
	for _, out := range outs {
		abandoned += strings.Count(out.String(), "batch abandoned")
	}
	t.Logf("exactly once: %d records, 0 missing, 0 duplicated; %d batches abandoned to rebalances", total, abandoned)
}

// SIGTERM in group mode while a batch runs: the member admits nothing
// more, commits the running batch (its offsets reach the group), leaves
// the group — at once, not after the 30 s session timeout — and exits 0.
func TestGroupModeSIGTERMCommitsTheRunningBatchAndLeaves(t *testing.T) {
	b := startOrders(t, 1000)
	dir := t.TempDir()
	chk := filepath.Join(dir, "chk")
	p := filepath.Join(dir, "slow.yaml")
	yaml := fmt.Sprintf(`name: slow-group
source:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: orders
    startingOffsets: earliest
    maxOffsetsPerTrigger: 100
    sluice.group: term
    sluice.group.member: m1
    kafka.session.timeout.ms: 30000
    kafka.heartbeat.interval.ms: 500
sink:
  format: noop
  options:
    checkpointLocation: %s
    sluice.sink.delayPerRow: 5ms
    sluice.workers: 1
`, b.Addr(), chk)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	member := filepath.Join(chk, "members", "m1")
	cmd, out := sluiceChild(t, "run", p, "--ui-addr", "off", "--log-level", "info")
	waitOutput(t, out, "batch 1:")
	waitInFlight(t, member, 2) // logged, not committed: it runs for 0.5 s
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, out.String())
	}
	exited := time.Now()
	offsets, commits := lastLogged(t, member, "offsets"), lastLogged(t, member, "commits")
	if offsets != commits || offsets < 2 {
		t.Fatalf("after the graceful stop offsets/%d and commits/%d: the running batch was not committed\n%s", offsets, commits, out.String())
	}
	// The group's offsets are the committed batch's end.
	data, err := os.ReadFile(filepath.Join(member, "offsets", fmt.Sprint(offsets)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	ends, err := kafkasrc.ParseOffsetsJSON(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(brokertest.Client(t, b.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(ctx, "term")
	if err != nil {
		t.Fatal(err)
	}
	for tp, end := range ends {
		if got, ok := committed.Lookup(tp.Topic, tp.Partition); !ok || got.At != end {
			t.Errorf("group offset of %s = %v, want the last batch's end %d", tp, got.At, end)
		}
	}
	// It left the group: the group is empty now, 30 s before the
	// coordinator would have timed the member out.
	described, err := adm.DescribeGroups(ctx, "term")
	if err != nil {
		t.Fatal(err)
	}
	if g := described["term"]; len(g.Members) != 0 || time.Since(exited) > 20*time.Second {
		t.Errorf("group after the member exited: state %s, %d members", g.State, len(g.Members))
	}
}
