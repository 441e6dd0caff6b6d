// Package partition names Kafka partitions and per-partition offsets: the
// one identity used by sources, admission, lag, monitoring, sinks and the
// command line, so that a partition read by the source is the same value
// the planner splits over and the monitor reports lag for.
package partition

import (
	"cmp"
	"fmt"
	"slices"
)

// ID names one partition of a topic.
type ID struct {
	Topic     string
	Partition int32
}

// String formats id as "topic-3", Kafka's usual notation.
func (id ID) String() string { return fmt.Sprintf("%s-%d", id.Topic, id.Partition) }

// Compare orders partitions by topic, then partition number.
func (id ID) Compare(o ID) int {
	return cmp.Or(cmp.Compare(id.Topic, o.Topic), cmp.Compare(id.Partition, o.Partition))
}

// Offsets maps partitions to offsets (for a position: the next offset to
// read).
type Offsets map[ID]int64

// Sorted returns the partitions of o in Compare order.
func (o Offsets) Sorted() []ID {
	keys := make([]ID, 0, len(o))
	for id := range o {
		keys = append(keys, id)
	}
	slices.SortFunc(keys, ID.Compare)
	return keys
}

// Total returns Σ max(0, to[p]−from[p]) over the partitions of to: the
// records between two positions. A partition missing from from counts from
// 0.
func Total(from, to Offsets) int64 {
	var n int64
	for id, end := range to {
		if d := end - from[id]; d > 0 {
			n += d
		}
	}
	return n
}
