package sparktext

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/sluice-stream/sluice/internal/partition"
)

// Special offsets in Spark's startingOffsets / endingOffsets JSON.
const (
	// KafkaLatest (-1) stands for a partition's latest offset.
	KafkaLatest int64 = -1
	// KafkaEarliest (-2) stands for a partition's earliest offset.
	KafkaEarliest int64 = -2
)

// PartitionOffset is one entry of a Kafka offsets JSON.
type PartitionOffset struct {
	partition.ID
	Offset int64
}

func comparePartitionOffsets(a, b PartitionOffset) int { return a.ID.Compare(b.ID) }

// ParseKafkaOffsets parses Spark's Kafka offsets JSON,
// {"topicA":{"0":23,"1":-1},"topicB":{"0":-2}}: what the Kafka source
// writes in offsets/N and progress, and what startingOffsets and
// startingOffsetsByTimestamp take. Partitions must be non-negative 32-bit
// decimal numbers; offsets are returned as written (KafkaLatest and
// KafkaEarliest included). The result is sorted by topic, then partition.
func ParseKafkaOffsets(s string) ([]PartitionOffset, error) {
	var raw map[string]map[string]int64
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("parse Kafka offsets %q: %w", s, err)
	}
	var out []PartitionOffset
	for t, ps := range raw {
		for p, off := range ps {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("parse Kafka offsets %q: partition %q of topic %q is not a partition number", s, p, t)
			}
			out = append(out, PartitionOffset{ID: partition.ID{Topic: t, Partition: int32(n)}, Offset: off})
		}
	}
	slices.SortFunc(out, comparePartitionOffsets)
	return out, nil
}

// PartitionOffsets reads a Kafka offsets JSON into partition → offset,
// merging topics (for measurements that read one topic). Input that is
// not Kafka offsets JSON gives an empty map.
func PartitionOffsets(js []byte) map[int32]int64 {
	out := map[int32]int64{}
	offs, err := ParseKafkaOffsets(string(js))
	if err != nil {
		return out
	}
	for _, o := range offs {
		out[o.Partition] = o.Offset
	}
	return out
}

// AppendKafkaOffsets appends offs as Spark's Kafka offsets JSON, compact,
// topics by name and partitions in numeric order: {"t":{"0":5,"1":7}}.
// offs is sorted in place; a repeated partition keeps its last offset.
func AppendKafkaOffsets(dst []byte, offs []PartitionOffset) []byte {
	slices.SortStableFunc(offs, comparePartitionOffsets)
	dst = append(dst, '{')
	wrote, topic := false, ""
	for i, o := range offs {
		if i+1 < len(offs) && comparePartitionOffsets(o, offs[i+1]) == 0 {
			continue // the later entry wins
		}
		if !wrote || o.Topic != topic {
			if wrote {
				dst = append(dst, "},"...)
			}
			wrote, topic = true, o.Topic
			t, _ := json.Marshal(o.Topic) // a string: cannot fail
			dst = append(dst, t...)
			dst = append(dst, ":{"...)
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, int64(o.Partition), 10)
		dst = append(dst, "\":"...)
		dst = strconv.AppendInt(dst, o.Offset, 10)
	}
	if wrote {
		dst = append(dst, '}')
	}
	return append(dst, '}')
}
