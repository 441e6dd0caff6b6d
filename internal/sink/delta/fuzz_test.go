package delta

import (
	"encoding/json"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/parquetio"
)

func FuzzDecodeActions(f *testing.F) {
	f.Add([]byte(`{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}` + "\n" + `{"add":{"path":"a","partitionValues":{"p":null},"size":1,"modificationTime":1,"dataChange":true}}`))
	f.Add([]byte(`{"commitInfo":{"weird":[1,2]}}` + "\n" + `{"txn":{"appId":"q","version":3}}`))
	f.Add([]byte("{\"remove\":{\"path\":\"a\"}}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		acts, err := decodeActions(data)
		if err != nil {
			return
		}
		s := newState()
		for _, a := range acts {
			s.apply(a) // must not panic
		}
		// Actions we write back must decode to the same state.
		var out []action
		for _, a := range acts {
			out = append(out, action{Protocol: a.Protocol, MetaData: a.MetaData, Txn: a.Txn, Add: a.Add, Remove: a.Remove})
		}
		enc, err := encodeActions(out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeActions(enc); err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
	})
}

func FuzzParseSchema(f *testing.F) {
	s, _ := dataSchemaString(testSchema)
	f.Add(s)
	f.Add(`{"type":"struct","fields":[{"name":"a","type":{"type":"map","keyType":"string","valueType":"long"},"nullable":true,"metadata":{}}]}`)
	f.Fuzz(func(t *testing.T, schema string) {
		fields, err := parseSchema(schema)
		if err != nil {
			return
		}
		_ = compareSchema("t", fields, testSchema) // must not panic
	})
}

func FuzzStatsJSON(f *testing.F) {
	f.Add("col", []byte("min"), []byte("max"), int64(-3), int64(9))
	f.Add("q\"uote", []byte("\xff"), []byte("é\x00"), int64(-1), int64(1))
	f.Fuzz(func(t *testing.T, name string, lo, hi []byte, a, b int64) {
		fields := []batch.Field{{Name: name, Type: batch.String}, {Name: name + "t", Type: batch.Timestamp}}
		stats := []parquetio.ColumnStats{
			{HasMinMax: true, MinBytes: lo, MaxBytes: hi},
			{HasMinMax: true, MinInt: min(a, b), MaxInt: max(a, b)},
		}
		out := statsJSON(fields, 1, stats)
		if !json.Valid([]byte(out)) {
			t.Fatalf("invalid stats JSON %s", out)
		}
	})
}
