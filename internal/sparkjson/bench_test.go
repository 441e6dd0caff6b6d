package sparkjson

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/orders"
)

// benchOrders returns n order records as the load generator writes them,
// padded to 200 bytes with a last "pad" string field as the stateful
// bench's preload pads them.
func benchOrders(n int) [][]byte {
	g := orders.NewGenerator(1)
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	recs := make([][]byte, n)
	for i := range recs {
		_, v := g.Next(now.Add(time.Duration(i) * time.Millisecond))
		if pad := 200 - len(v) - len(`,"pad":""`); pad > 0 {
			v = append(append(append(v[:len(v)-1:len(v)-1], `,"pad":"`...), strings.Repeat("x", pad)...), `"}`...)
		}
		recs[i] = v
	}
	return recs
}

// benchPeerOrders returns n records shaped as bench/peers' order(): eight
// fields, a long "note" string last.
func benchPeerOrders(n, size int) [][]byte {
	statuses := []string{"new", "paid", "shipped", "cancelled"}
	recs := make([][]byte, n)
	for i := range recs {
		v := fmt.Appendf(nil, `{"order_id":"o-%09d","customer_id":"customer-%04d","amount":%d.%02d,"currency":"EUR","status":%q,"ts":"2026-01-01T00:00:%02d.%03dZ","note":"`,
			i, i%1000, 10+i%990, i%100, statuses[i%len(statuses)], i%60, i%1000)
		for len(v) < size-2 {
			v = append(v, 'x')
		}
		recs[i] = append(v, '"', '}')
	}
	return recs
}

// escaped puts an escaped quote into each record's last string.
func escaped(recs [][]byte) [][]byte {
	for _, r := range recs {
		copy(r[len(r)-6:], `\"xx"}`)
	}
	return recs
}

// BenchmarkDecodeBenchShape is the decoder alone on the stateful bench's
// records and schema (order_id STRING, ts TIMESTAMP: two of eight fields
// wanted, the rest skipped), and on bench/peers' records with a schema of
// three of their fields, and on the stateful bench's records with an
// escape in each; ns/op is per record.
func BenchmarkDecodeBenchShape(b *testing.B) {
	for _, tc := range []struct {
		name, schema string
		recs         [][]byte
	}{
		{"orders-200B", "STRUCT<order_id: STRING, ts: TIMESTAMP>", benchOrders(4096)},
		{"peers-300B", "STRUCT<customer_id: STRING, amount: DOUBLE, ts: TIMESTAMP>", benchPeerOrders(4096, 300)},
		// An escape in the padding: the record is not clean, the scanners
		// go 8 bytes at a time.
		{"orders-escaped-200B", "STRUCT<order_id: STRING, ts: TIMESTAMP>", escaped(benchOrders(4096))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			k := mustType(b, tc.schema)
			p, err := NewParser(k, Options{CorruptField: -1})
			if err != nil {
				b.Fatal(err)
			}
			d := p.NewDecoder()
			col := batch.NewColumn(k, len(tc.recs))
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.recs[0])))
			n := 0
			for b.Loop() {
				if n == len(tc.recs) {
					truncate(col, 0) // no garbage: the collector's work would blur ns/op
					n = 0
				}
				if st, why := d.Append(col, tc.recs[n]); st != OK {
					b.Fatal(st, why)
				}
				n++
			}
		})
	}
}
