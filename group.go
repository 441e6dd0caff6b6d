package sluice

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	kafkasink "github.com/sluice-stream/sluice/internal/sink/kafka"
	"github.com/sluice-stream/sluice/internal/source"
	kafkasrc "github.com/sluice-stream/sluice/internal/source/kafka"
)

// Group mode (the Kafka source option sluice.group; docs/group-mode.md):
// the same pipeline runs in many processes, one consumer-group member
// each. What the query's assembly does differently:
//
//   - the member's local checkpoint is checkpointLocation/members/NAME
//     (sluice.group.member), a log of its own batches that nothing
//     correct depends on: the group's committed offsets say where each
//     partition starts;
//   - the Kafka sink produces through the group's transactional client
//     and commits the consumed offsets in each batch's transaction
//     (exactly once per partition across rebalances);
//   - the Delta sink records each partition's end offset in a txn action
//     of the same commit as the files and is the truth for where a
//     partition starts; the group's offsets follow for visibility
//     (exactly once);
//   - the file sinks (parquet, json, csv) record each batch's files and
//     partition offsets as a version of the shared group log
//     _spark_metadata/group (put-if-absent, so of two members racing for
//     a partition one commits) and are the truth for where a partition
//     starts, like the Delta table (exactly once);
//   - console, foreachBatch, memory and noop write first and commit the
//     offsets to the group afterwards (at least once);
//   - a dead-letter sink is run beside the Kafka sink only, as a Kafka
//     topic on its cluster: the dead letters are produced in the batch's
//     transaction with the output and the offsets (exactly once); other
//     pairs are refused, as are stateful queries.

// groupSinks are the sinks group mode runs, with their guarantee.
var groupSinks = map[string]string{
	"kafka":        "exactly once",
	"delta":        "exactly once",
	"parquet":      "exactly once",
	"json":         "exactly once",
	"csv":          "exactly once",
	"console":      "at least once",
	"foreachBatch": "at least once",
	"memory":       "at least once",
	"noop":         "at least once",
}

// groupOf returns the consumer group and member name of a kafka source in
// group mode ("" otherwise).
func groupOf(format string, v options.Values) (group, member string) {
	if format != "kafka" {
		return "", ""
	}
	group = strings.TrimSpace(v.String("sluice.group"))
	if group == "" {
		return "", ""
	}
	member = strings.TrimSpace(v.String("sluice.group.member"))
	if member == "" {
		member = kafkasrc.DefaultMember()
	}
	return group, member
}

// memberCheckpoint is a group member's own checkpoint directory under the
// query's checkpointLocation.
func memberCheckpoint(chk, member string) string {
	return strings.TrimRight(chk, "/") + "/members/" + member
}

// groupProblems are the parts of a query group mode does not support yet
// (docs/group-mode.md), found by check for Start and `sluice lint`.
func groupProblems(p *checked, sinkFormat, deadLetterFormat string) []problem {
	if p.source.Name == "" {
		return nil
	}
	group, _ := groupOf(p.source.Name, p.sourceVals)
	if group == "" {
		return nil
	}
	var out []problem
	if _, ok := groupSinks[sinkFormat]; !ok && p.sink.Name != "" {
		out = append(out, problem{part: partSink, format: true, err: &options.Error{Option: "sluice.group",
			Allowed: fmt.Sprintf("group mode (group %q) does not support the %s sink yet (its commits are not tied to the group's offsets); use the kafka, delta, parquet, json or csv sink (exactly once) or console/foreachBatch (at least once), or run one process without sluice.group", group, sinkFormat)}})
	}
	if deadLetterFormat != "" && (deadLetterFormat != "kafka" || sinkFormat != "kafka") {
		out = append(out, problem{part: partDeadLetter, format: true, err: &options.Error{Option: "sluice.group",
			Allowed: fmt.Sprintf("group mode (group %q) runs a dead-letter sink only as a Kafka topic beside the kafka sink (the dead letters are written in the batch's transaction with the output and the group's offsets: exactly once); a %s dead-letter sink with the %s sink is not supported yet: use format kafka for both, or run without sluice.group", group, deadLetterFormat, sinkFormat)}})
	}
	if p.query != nil && !p.query.Stateless() {
		out = append(out, problem{part: partSource, option: "sluice.group", err: &options.Error{Option: "sluice.group",
			Allowed: fmt.Sprintf("stateful queries (aggregations, deduplication, joins with state) are not supported in group mode (group %q) yet: run the query in one process, without sluice.group", group)}})
	}
	return out
}

// wireGroup connects a group-mode source to the sink: the Kafka sink
// produces through the group's transactional client, and so does the
// dead-letter sink (dl, nil without one), into the same transactions. It
// returns the dead-letter sink the engine is to use.
func wireGroup(src source.Source, sk, dl sink.Sink) (sink.Sink, error) {
	ks, ok := src.(*kafkasrc.Source)
	if !ok || ks.Group() == "" {
		return dl, nil
	}
	kk, isKafka := sk.(*kafkasink.Sink)
	if dl != nil && !isKafka {
		return nil, fmt.Errorf("group mode (group %q): a dead-letter sink runs only beside the kafka sink", ks.Group())
	}
	if err := wireGroupSink(ks, sk, kk, &dl); err != nil {
		return nil, err
	}
	return dl, nil
}

// wireGroupSink is wireGroup for the main sink (kk is sk as the Kafka sink,
// nil for other sinks); it replaces *dl with the Kafka sink's group
// dead-letter sink.
func wireGroupSink(ks *kafkasrc.Source, sk sink.Sink, kk *kafkasink.Sink, dl *sink.Sink) error {
	if ds, ok := sk.(*delta.Sink); ok {
		ks.SetSinkOffsets(ds.GroupOffsets)
		ds.UseGroup(ks)
		return nil
	}
	if fs, ok := sk.(*filesink.Sink); ok {
		ks.SetSinkOffsets(fs.GroupOffsets)
		fs.UseGroup(ks)
		return nil
	}
	if kk == nil {
		return nil // at least once: the source commits after the sink
	}
	if *dl != nil {
		gdl, err := kk.GroupDeadLetters(*dl)
		if err != nil {
			return err
		}
		*dl = gdl
	}
	if err := kk.CheckGroupCluster(ks.Config().Bootstrap); err != nil {
		return err
	}
	if err := ks.UseGroupTransactions(kk.GroupProducerOpts(ks.Member())); err != nil {
		return err
	}
	kk.UseGroup(ks)
	return nil
}
