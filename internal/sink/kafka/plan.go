package kafka

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
)

// plan says where each Kafka record field comes from in the input schema;
// -1 means the column is absent (or, for topic, that the option is used).
type plan struct {
	value, key, headers, partition, topic int
}

// SchemaError is returned by NewWriter when the rows cannot be written to
// Kafka: a required column is missing or a column has the wrong type.
type SchemaError struct {
	Column string
	// Reason is the whole message, naming the column.
	Reason string
	Schema batch.Schema
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("kafka sink: %s (input schema %s)", e.Reason, e.Schema)
}

// newPlan validates schema against the columns the sink reads, as Spark's
// Kafka writer does: value (string or binary, required), key (string or
// binary), headers, partition (int) and topic (string, required unless the
// topic option is set; the option wins over the column). Other columns are
// ignored.
func newPlan(schema batch.Schema, topicOption string) (plan, error) {
	p := plan{value: -1, key: -1, headers: -1, partition: -1, topic: -1}
	bad := func(col, reason string) (plan, error) {
		return plan{}, &SchemaError{Column: col, Reason: reason, Schema: schema}
	}
	check := func(name string, allowNull bool, kinds ...batch.Kind) (int, error) {
		i := schema.Index(name)
		if i < 0 {
			return -1, nil
		}
		k := schema.Fields[i].Type
		if allowNull && k == batch.Null {
			return -1, nil
		}
		for _, want := range kinds {
			if batch.SameType(k, want) {
				return i, nil
			}
		}
		var names []string
		for _, want := range kinds {
			names = append(names, want.String())
		}
		// Spark's wording (KafkaWriter), plus the remedy for nested values.
		reason := fmt.Sprintf("%s attribute unsupported type %s. %s must be a(n) %s", name, k, name, strings.Join(names, " or "))
		if k.IsNested() && (name == "value" || name == "key") {
			reason += fmt.Sprintf("; serialize it first, e.g. to_json(%s) AS %s", name, name)
		}
		_, err := bad(name, reason)
		return -1, err
	}
	var err error
	if schema.Index("value") < 0 {
		return bad("value", "column \"value\" is required and missing; give the record payload a column named value (string or binary)")
	}
	if p.value, err = check("value", false, batch.String, batch.Binary); err != nil {
		return plan{}, err
	}
	if p.key, err = check("key", true, batch.String, batch.Binary); err != nil {
		return plan{}, err
	}
	if p.headers, err = check("headers", true, batch.Headers); err != nil {
		return plan{}, err
	}
	if p.partition, err = check("partition", true, batch.Int, batch.Long); err != nil {
		return plan{}, err
	}
	if topicOption == "" {
		if schema.Index("topic") < 0 {
			return bad("topic", "column \"topic\" is missing and the option \"topic\" is not set; set the option or add a string column named topic")
		}
		if p.topic, err = check("topic", false, batch.String); err != nil {
			return plan{}, err
		}
	}
	return p, nil
}

// record builds the Kafka record for row i of b. Byte slices alias the
// batch's cells; the batch outlives the produce call's promise.
func (p plan) record(b *batch.Batch, i int, topicOption string) (*kgo.Record, error) {
	r := &kgo.Record{Topic: topicOption, Partition: -1}
	if p.topic >= 0 {
		c := b.Columns[p.topic]
		if c.IsNull(i) || len(c.Bytes[i]) == 0 {
			return nil, fmt.Errorf("row %d: the topic column is null or empty and the option \"topic\" is not set", i)
		}
		r.Topic = string(c.Bytes[i])
	}
	if c := b.Columns[p.value]; !c.IsNull(i) {
		r.Value = c.Bytes[i]
		if r.Value == nil {
			r.Value = []byte{}
		}
	}
	if p.key >= 0 {
		if c := b.Columns[p.key]; !c.IsNull(i) {
			r.Key = c.Bytes[i]
			if r.Key == nil {
				r.Key = []byte{}
			}
		}
	}
	if p.headers >= 0 {
		if c := b.Columns[p.headers]; !c.IsNull(i) {
			hs := c.HeadersAt(i)
			r.Headers = make([]kgo.RecordHeader, len(hs))
			for j, h := range hs {
				r.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
	}
	if p.partition >= 0 {
		if c := b.Columns[p.partition]; !c.IsNull(i) {
			v := c.Ints[i]
			if v < 0 || v > 1<<31-1 {
				return nil, fmt.Errorf("row %d: partition %d is out of range", i, v)
			}
			r.Partition = int32(v)
		}
	}
	return r, nil
}

// partitioner honours a partition chosen by the row (Record.Partition ≥ 0)
// and otherwise delegates to the default partitioner (Kafka's murmur2 of
// the key, or sticky uniform batches for records without a key).
type partitioner struct{ inner kgo.Partitioner }

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	return &topicPartitioner{inner: p.inner.ForTopic(t)}
}

type topicPartitioner struct{ inner kgo.TopicPartitioner }

func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || p.inner.RequiresConsistency(r)
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	return p.inner.Partition(r, n)
}

// PartitionByBackup is used by the client instead of Partition; it keeps
// the default partitioner's load-aware choice for rows without a partition.
func (p *topicPartitioner) PartitionByBackup(r *kgo.Record, n int, it kgo.TopicBackupIter) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	if b, ok := p.inner.(kgo.TopicBackupPartitioner); ok {
		return b.PartitionByBackup(r, n, it)
	}
	return p.inner.Partition(r, n)
}
