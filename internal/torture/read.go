package torture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// jsonValues reads the "value" field of a JSON-lines file.
func jsonValues(path string, data []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("torture: %s: %w", path, err)
		}
		out = append(out, fmt.Sprint(row["value"]))
	}
	return out, sc.Err()
}

// readCommitted reads a topic to its end with isolation read_committed,
// returning the record values.
func readCommitted(ctx context.Context, addr, topic string) ([]string, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	ends, err := stableEnds(ctx, kadm.NewClient(adm), topic)
	adm.Close()
	if err != nil {
		return nil, err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []string
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, string(r.Value))
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}

// openTxnWait bounds how long readCommitted waits for transactions still
// open on the topic to end: a writer killed mid-transaction (a group
// member that nobody restarts under its transactional id) leaves one open
// until the broker aborts it after its transaction timeout (30 s in the
// torture's pipelines), and read_committed readers stop at its first
// offset until then — the records committed after it are only delayed.
const openTxnWait = 90 * time.Second

// stableEnds returns the topic's last stable offsets once no transaction
// is open on it any more (they equal the log end offsets), or the last
// stable offsets when openTxnWait passes first. The writers must have
// stopped.
func stableEnds(ctx context.Context, adm *kadm.Client, topic string) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(openTxnWait)
	for {
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return nil, err
		}
		end, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return nil, err
		}
		open := false
		end.Each(func(o kadm.ListedOffset) {
			if s, ok := stable.Lookup(topic, o.Partition); !ok || s.Offset < o.Offset {
				open = true
			}
		})
		if !open || time.Now().After(deadline) {
			return stable, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
