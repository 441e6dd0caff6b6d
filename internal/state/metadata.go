package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/storage"
)

// OperatorInfo is what state/<operatorId>/_metadata/metadata records, in
// Spark's OperatorStateMetadataV1 shape:
//
//	v1
//	{"operatorInfo":{"operatorId":0,"operatorName":"stateStoreSave"},"stateStoreInfo":[{"storeName":"default","numColsPrefixKey":0,"numPartitions":200}]}
type OperatorInfo struct {
	OperatorID   int64  `json:"operatorId"`
	OperatorName string `json:"operatorName"`
}

// StoreInfo is one entry of stateStoreInfo.
type StoreInfo struct {
	StoreName        string `json:"storeName"`
	NumColsPrefixKey int    `json:"numColsPrefixKey"`
	NumPartitions    int    `json:"numPartitions"`
}

// OperatorMetadata is the whole metadata file.
type OperatorMetadata struct {
	OperatorInfo   OperatorInfo `json:"operatorInfo"`
	StateStoreInfo []StoreInfo  `json:"stateStoreInfo"`
}

// Spark's operator names for the stateful operators.
const (
	OperatorNameAggregate   = "stateStoreSave"
	OperatorNameDedup       = "dedupe"
	OperatorNameDedupWithin = "dedupeWithinWatermark"
	OperatorNameSession     = "sessionWindowStateStoreSaveExec"
	OperatorNameJoin        = "symmetricHashJoin"
)

// OperatorMetadataPath is state/<operatorId>/_metadata/metadata.
func OperatorMetadataPath(root string, operator int) string {
	return filepath.Join(ID{Root: root, Operator: operator}.OperatorDir(), "_metadata", "metadata")
}

func operatorMetadataName(operator int) string {
	return strconv.Itoa(operator) + "/_metadata/metadata"
}

func schemaName(operator int) string { return strconv.Itoa(operator) + "/0/_metadata/schema" }

// WriteOperatorMetadata writes the operator's metadata file into the state
// directory st (atomically, replacing an older one: Spark rewrites it each
// run).
func WriteOperatorMetadata(st storage.Store, m OperatorMetadata) error {
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = writeFileAtomic(st, operatorMetadataName(int(m.OperatorInfo.OperatorID)), func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "v1\n%s", js)
		return err
	})
	return err
}

// ReadOperatorMetadata reads it back.
func ReadOperatorMetadata(st storage.Store, operator int) (OperatorMetadata, error) {
	var m OperatorMetadata
	path := storage.URI(st, operatorMetadataName(operator))
	b, err := readFile(st, operatorMetadataName(operator))
	if err != nil {
		return m, err
	}
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(line) != "v1" {
		return m, fmt.Errorf("%s: expected a v1 header line", path)
	}
	if err := json.Unmarshal(rest, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// SchemaPath is state/<operatorId>/0/_metadata/schema.
func SchemaPath(root string, operator int) string {
	return filepath.Join(ID{Root: root, Operator: operator}.OperatorDir(), "0", "_metadata", "schema")
}

// Spark's schema file (SchemaV2Writer), in Java DataOutput encoding:
// writeUTF("v2"), then for the key and then the value schema an int32
// big-endian chunk count followed by that many writeUTF chunks (u16
// big-endian byte length + UTF-8) of the schema's StructType JSON.

func schemaJSON(s batch.Schema) string { return s.JSON() }

// kindsByJSONName maps Spark's JSON type names back to kinds.
var kindsByJSONName = func() map[string]batch.Kind {
	m := map[string]batch.Kind{}
	for k := batch.Null; k <= batch.Date; k++ {
		m[k.JSONName()] = k
	}
	m["null"] = batch.Null
	return m
}()

// schemaField is a recorded field; Type is Spark's JSON name, kept as text
// so a schema with types sluice lacks still compares (and mismatches) cleanly.
type schemaField struct {
	Name     string
	Type     string
	Nullable bool
}

func parseSchemaJSON(s string) ([]schemaField, error) {
	var sj struct {
		Type   string `json:"type"`
		Fields []struct {
			Name     string          `json:"name"`
			Type     json.RawMessage `json:"type"`
			Nullable bool            `json:"nullable"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(s), &sj); err != nil {
		return nil, err
	}
	if sj.Type != "struct" {
		return nil, fmt.Errorf("schema is not a struct")
	}
	out := make([]schemaField, 0, len(sj.Fields))
	for _, f := range sj.Fields {
		var name string
		if err := json.Unmarshal(f.Type, &name); err != nil {
			name = string(f.Type) // nested type: compare as JSON text
		}
		out = append(out, schemaField{Name: f.Name, Type: name, Nullable: f.Nullable})
	}
	return out, nil
}

// typeText is a kind as a recorded field's Type: Spark's JSON name of a
// flat kind, the JSON object of a nested one.
func typeText(k batch.Kind) string {
	if k.IsNested() {
		return string(k.AppendJSON(nil))
	}
	return k.JSONName()
}

func fieldsOf(s batch.Schema) []schemaField {
	out := make([]schemaField, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = schemaField{Name: f.Name, Type: typeText(f.Type), Nullable: f.Nullable}
	}
	return out
}

func renderFields(fs []schemaField) string {
	var b bytes.Buffer
	b.WriteString("struct<")
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		t := f.Type
		if k, ok := kindsByJSONName[t]; ok {
			t = k.String()
		} else if k, err := batch.ParseTypeJSON([]byte(t)); err == nil {
			t = k.String()
		}
		fmt.Fprintf(&b, "%s:%s", f.Name, t)
		if !f.Nullable {
			b.WriteString(" not null")
		}
	}
	b.WriteByte('>')
	return b.String()
}

func encodeSchemaFile(s Schemas) []byte {
	var b bytes.Buffer
	writeUTF(&b, "v2")
	for _, js := range []string{schemaJSON(s.Key), schemaJSON(s.Value)} {
		chunks := utfChunks(js)
		binary.Write(&b, binary.BigEndian, int32(len(chunks)))
		for _, c := range chunks {
			writeUTF(&b, c)
		}
	}
	return b.Bytes()
}

func writeUTF(b *bytes.Buffer, s string) {
	binary.Write(b, binary.BigEndian, uint16(len(s)))
	b.WriteString(s)
}

// utfChunks splits s into pieces of at most 65535 bytes on rune boundaries.
func utfChunks(s string) []string {
	var out []string
	for len(s) > 65535 {
		i := 65535
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return append(out, s)
}

// decodeSchemaFile reads a v1 (writeUTF key JSON, writeUTF value JSON) or
// v2 schema file.
func decodeSchemaFile(b []byte) (key, value []schemaField, err error) {
	r := bufio.NewReader(bytes.NewReader(b))
	readUTF := func() (string, error) {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return "", err
		}
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return string(buf), err
	}
	ver, err := readUTF()
	if err != nil {
		return nil, nil, fmt.Errorf("schema file: %w", err)
	}
	var jsons [2]string
	switch ver {
	case "v1":
		for i := range jsons {
			if jsons[i], err = readUTF(); err != nil {
				return nil, nil, fmt.Errorf("schema file: %w", err)
			}
		}
	case "v2":
		for i := range jsons {
			var n int32
			if err := binary.Read(r, binary.BigEndian, &n); err != nil || n < 0 || n > 1<<16 {
				return nil, nil, fmt.Errorf("schema file: bad chunk count")
			}
			for range n {
				c, err := readUTF()
				if err != nil {
					return nil, nil, fmt.Errorf("schema file: %w", err)
				}
				jsons[i] += c
			}
		}
	default:
		return nil, nil, fmt.Errorf("schema file: unsupported version %q", ver)
	}
	if key, err = parseSchemaJSON(jsons[0]); err != nil {
		return nil, nil, fmt.Errorf("schema file key schema: %w", err)
	}
	if value, err = parseSchemaJSON(jsons[1]); err != nil {
		return nil, nil, fmt.Errorf("schema file value schema: %w", err)
	}
	return key, value, nil
}

// SchemaError is a state schema that does not match the checkpoint's, with
// Spark's error class as Class.
type SchemaError struct {
	Class              string // STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE or STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE
	Operator           int
	Existing, Provided string
}

// Spark's error classes.
const (
	ErrClassKeySchema   = "STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE"
	ErrClassValueSchema = "STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE"
)

func (e *SchemaError) Error() string {
	what := "key"
	if e.Class == ErrClassValueSchema {
		what = "value"
	}
	return fmt.Sprintf("[%s] Provided %s schema does not match the %s schema of the existing state of operator %d "+
		"(number and types of fields must be the same). Existing %s_schema=%s and new %s_schema=%s. "+
		"The query changed in a way its checkpoint cannot follow: restore the previous query or start from a new "+
		"checkpoint location (setting %s=false skips this check, at the risk of reading state wrongly).",
		e.Class, what, what, e.Operator, what, e.Existing, what, e.Provided, OptStateSchemaCheck)
}

// compatible follows Spark: field names are ignored, types must be equal in
// order, and a field that is now nullable must have been nullable.
func compatible(stored, now []schemaField) bool {
	if len(stored) != len(now) {
		return false
	}
	for i := range stored {
		if stored[i].Type != now[i].Type {
			return false
		}
		if now[i].Nullable && !stored[i].Nullable {
			return false
		}
	}
	return true
}

// CheckSchema compares s with the operator's recorded schema, if any, and
// returns a *SchemaError on a mismatch. It reports whether a schema file
// exists. The engine calls it once per operator at start (providers also
// call it when they open).
func CheckSchema(st storage.Store, operator int, s Schemas) (recorded bool, err error) {
	b, err := readFile(st, schemaName(operator))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	key, value, err := decodeSchemaFile(b)
	if err != nil {
		return true, fmt.Errorf("%s: %w", storage.URI(st, schemaName(operator)), err)
	}
	if nowKey := fieldsOf(s.Key); !compatible(key, nowKey) {
		return true, &SchemaError{Class: ErrClassKeySchema, Operator: operator, Existing: renderFields(key), Provided: renderFields(nowKey)}
	}
	if nowValue := fieldsOf(s.Value); !s.AllowValueChange && !compatible(value, nowValue) {
		return true, &SchemaError{Class: ErrClassValueSchema, Operator: operator, Existing: renderFields(value), Provided: renderFields(nowValue)}
	}
	return true, nil
}

// recordSchema writes the schema file if it does not exist yet.
func recordSchema(st storage.Store, operator int, s Schemas) error {
	_, err := putIfAbsent(st, schemaName(operator), encodeSchemaFile(s))
	return err
}
