package sparkjson

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// # Reading
//
// A Parser converts JSON records to cells of a struct, array or map kind as
// Spark's from_json does (its JacksonParser with JSONOptions' defaults and
// spark.sql.json.enablePartialResults on, Spark 4's default):
//
//   - Object fields are matched to struct fields by exact name; fields not
//     in the schema are skipped, missing ones are null, a repeated field's
//     last value wins.
//   - A value that does not fit its type (a string for a number, 1.5 for an
//     int, a number out of range, an empty string for a non-string type)
//     makes that field null and the record "partial": the other fields keep
//     their values (Status Partial). An array with such an element, or a
//     map with such a value, becomes null as a whole; a struct or map with
//     a partial inner value keeps it.
//   - Input that is not JSON, or whose top level does not fit the schema
//     (an array or a number for a struct schema), is Malformed: a struct
//     schema gives a struct whose fields are all null (Spark 3+'s
//     Row(null, …)), an array or map schema gives NULL. A blank record
//     gives NULL. Content after the first top-level value is ignored, as
//     Jackson ignores it.
//   - For an array schema a lone object is read as an array of one struct.
//   - Numbers follow JSON's grammar; NaN, Infinity, +Infinity, -Infinity,
//     INF, +INF and -INF are accepted unquoted and, for doubles, quoted
//     (allowNonNumericNumbers); single-quoted strings are accepted
//     (allowSingleQuotes); comments, unquoted names, leading zeros and
//     unescaped control characters are not.
//   - A string field reads any JSON value: strings decoded, other values as
//     their exact text in the input (spark.sql.json.enableExactStringParsing).
//   - Timestamps: a string parsed with timestampFormat when given, else as
//     CAST(s AS TIMESTAMP) parses it; an integer is seconds since the epoch.
//     Dates: a string with dateFormat or as CAST(s AS DATE), or a string of
//     digits counting days. Binary: a base64 string. Booleans: true/false.
//   - Objects and arrays may nest 1000 levels deep (Jackson's default
//     limit); deeper input is malformed.
//
// Cells alias the record's bytes where they can (strings without escapes);
// decoded strings are copied into the Decoder's arena.

// Mode is how Decoder.Append treats a record that does not fit the schema.
type Mode uint8

// The parse modes Spark's from_json supports.
const (
	// Permissive (the default) keeps what parsed and nulls the rest.
	Permissive Mode = iota
	// FailFast reports the record as an error.
	FailFast
)

// Status is the outcome of parsing one record.
type Status uint8

// The parse outcomes.
const (
	// OK: the record fit the schema.
	OK Status = iota
	// Partial: some values did not fit their types and are null.
	Partial
	// Malformed: the record is not JSON or its top level does not fit.
	Malformed
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Partial:
		return "partial"
	}
	return "malformed"
}

// Options configure a Parser.
type Options struct {
	// TimestampLayout and DateLayout are Go layouts for timestampFormat and
	// dateFormat (sparktext.JavaLayout); "" means Spark's default parsing.
	TimestampLayout, DateLayout string
	// CorruptField is the index of a top-level string field of a struct
	// schema that receives the record's text when it is Partial or
	// Malformed (Spark's columnNameOfCorruptRecord), or -1 for none.
	CorruptField int
}

// maxDepth is Jackson's default maximum nesting depth.
const maxDepth = 1000

// conv is the converter of one schema node.
type conv struct {
	kind  batch.Kind
	class batch.Kind
	// struct
	fields  []*conv
	names   [][]byte
	byName  map[string]int
	table   *nameTable // a flat root struct's names for flatObject
	corrupt int        // field index skipped when matching (the corrupt-record field), or -1
	// array element, map value
	elem *conv
}

func newConv(k batch.Kind) (*conv, error) {
	c := &conv{kind: k, class: k.Class(), corrupt: -1}
	switch c.class {
	case batch.Struct:
		fs := k.Fields()
		c.fields = make([]*conv, len(fs))
		c.names = make([][]byte, len(fs))
		for i, f := range fs {
			var err error
			if c.fields[i], err = newConv(f.Type); err != nil {
				return nil, err
			}
			c.names[i] = []byte(f.Name)
		}
		if len(fs) > 8 {
			c.byName = make(map[string]int, len(fs))
			for i := len(fs) - 1; i >= 0; i-- {
				c.byName[fs[i].Name] = i
			}
		}
	case batch.Array:
		var err error
		if c.elem, err = newConv(k.Elem()); err != nil {
			return nil, err
		}
	case batch.Map:
		if k.KeyType() != batch.String {
			return nil, fmt.Errorf("a JSON map needs STRING keys, not %s", k.KeyType().SQL())
		}
		var err error
		if c.elem, err = newConv(k.ValueType()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// field returns the index of the struct field called name (exact match),
// or -1.
func (c *conv) field(name []byte) int {
	if c.byName != nil {
		if i, ok := c.byName[string(name)]; ok && i != c.corrupt {
			return i
		}
		return -1
	}
	for i, n := range c.names {
		if string(n) == string(name) && i != c.corrupt {
			return i
		}
	}
	return -1
}

// Parser converts JSON records to cells of one kind. It is immutable and
// safe for concurrent use; each goroutine parses with its own Decoder.
type Parser struct {
	kind batch.Kind
	opts Options
	root *conv
	// flat says the root is a struct flatObject reads (tests turn it off
	// to compare the fast path with the general one).
	flat bool
}

// NewParser returns a parser for cells of kind k: a struct, an array or a
// map with STRING keys (Spark's from_json schemas).
func NewParser(k batch.Kind, opts Options) (*Parser, error) {
	switch k.Class() {
	case batch.Struct, batch.Array, batch.Map:
	default:
		return nil, fmt.Errorf("a JSON schema must be a struct, an array or a map, not %s", k.SQL())
	}
	root, err := newConv(k)
	if err != nil {
		return nil, err
	}
	if opts.CorruptField >= 0 {
		fs := k.Fields()
		if k.Class() != batch.Struct || opts.CorruptField >= len(fs) || fs[opts.CorruptField].Type != batch.String {
			return nil, errors.New("the corrupt record field must be a top-level STRING field of a struct schema")
		}
		root.corrupt = opts.CorruptField
	}
	p := &Parser{kind: k, opts: opts, root: root, flat: root.isFlat()}
	if p.flat {
		root.table = newNameTable(root) // after root.corrupt, which field reads
	}
	return p, nil
}

// Kind is the kind of the cells the parser appends.
func (p *Parser) Kind() batch.Kind { return p.kind }

// NewDecoder returns a decoder, which keeps scratch space between records.
// A Decoder is not safe for concurrent use.
func (p *Parser) NewDecoder() *Decoder { return &Decoder{p: p} }

// Decoder parses records for a Parser.
type Decoder struct {
	p     *Parser
	lx    lexer
	arena []byte
	seen  []bool // stack of per-object "field set" flags
	// quotes marks the record's double quotes for flatObject, and clean
	// says the record has no backslash or control byte (markQuotes).
	quotes []uint64
	clean  bool
	// why describes the first problem of the current record.
	why string
}

// Append parses rec and appends one cell to col, a column of the parser's
// kind, and reports how well the record fit; why describes the first
// problem of a Partial or Malformed record. A blank record appends NULL.
// In FailFast mode callers treat any status but OK as an error (Append
// still appends the permissive result, so col stays consistent).
func (d *Decoder) Append(col *batch.Column, rec []byte) (st Status, why string) {
	d.lx = lexer{b: rec}
	d.why = ""
	d.lx.skipWS()
	if d.lx.i >= len(rec) {
		col.AppendNull()
		return OK, ""
	}
	mark := col.Len
	root := d.p.root
	var s uint8
	switch root.class {
	case batch.Struct:
		if d.lx.peek() == '{' {
			if !d.p.flat || !d.flatObject(root, col) {
				s = d.object(root, col)
			}
		} else {
			s = d.mismatch(root)
		}
	case batch.Array:
		switch {
		case d.lx.peek() == '[':
			s = d.array(root, col)
		case d.lx.peek() == '{' && root.elem.class == batch.Struct:
			// A lone object for an array of structs: an array of one.
			if s = d.object(root.elem, col.Children[0]); s != vFail {
				col.AppendArray()
			}
		default:
			s = d.mismatch(root)
		}
	case batch.Map:
		if d.lx.peek() == '{' {
			s = d.mapValue(root, col)
		} else {
			s = d.mismatch(root)
		}
	}
	if d.lx.err != "" {
		s = vFail
		if d.why == "" {
			d.why = d.lx.err
		}
	}
	if s == vFail {
		truncate(col, mark)
		if root.class == batch.Struct {
			for _, ch := range col.Children {
				ch.AppendNull()
			}
			d.setCorrupt(col, rec)
			col.AppendStruct()
		} else {
			col.AppendNull()
		}
		return Malformed, d.why
	}
	if s == vPartial {
		if root.corrupt >= 0 {
			c := col.Children[root.corrupt]
			truncate(c, c.Len-1)
			c.AppendBytes(rec)
		}
		return Partial, d.why
	}
	return OK, ""
}

// setCorrupt puts the record text in the corrupt-record field, the last
// cell of which is null.
func (d *Decoder) setCorrupt(col *batch.Column, rec []byte) {
	if i := d.p.root.corrupt; i >= 0 {
		c := col.Children[i]
		truncate(c, c.Len-1)
		c.AppendBytes(rec)
	}
}

// mismatch consumes a value that does not fit c at all and reports the
// failure.
func (d *Decoder) mismatch(c *conv) uint8 {
	start := d.lx.i
	d.lx.skipValue(0)
	d.fail(fmt.Sprintf("expected %s, got %s", want(c), clip(d.lx.b[start:d.lx.i])))
	return vFail
}

func want(c *conv) string {
	switch c.class {
	case batch.Struct, batch.Map:
		return "an object"
	case batch.Array:
		return "an array"
	}
	return "a " + c.kind.String()
}

func (d *Decoder) fail(why string) {
	if d.why == "" {
		d.why = why
	}
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:37]) + "..."
	}
	return string(b)
}

// Outcomes of converting one value.
const (
	vOK uint8 = iota
	vPartial
	vFail // nothing was appended (a syntax error is also reported in lx.err)
)

// value converts the next value for c and appends it to col, or appends
// nothing and returns vFail.
func (d *Decoder) value(c *conv, col *batch.Column, depth int) uint8 {
	lx := &d.lx
	lx.skipWS()
	if lx.i >= len(lx.b) {
		lx.syntax("unexpected end of input")
		return vFail
	}
	ch := lx.b[lx.i]
	if ch == 'n' {
		if lx.literal("null") {
			col.AppendNull()
			return vOK
		}
		return vFail
	}
	switch c.class {
	case batch.Struct, batch.Map, batch.Array:
		open := byte('{')
		if c.class == batch.Array {
			open = '['
		}
		if ch != open {
			return d.mismatch(c)
		}
		if depth >= maxDepth {
			lx.syntax("nested too deeply")
			return vFail
		}
		switch c.class {
		case batch.Struct:
			return d.object(c, col)
		case batch.Map:
			return d.mapValue(c, col)
		}
		return d.array(c, col)
	case batch.String:
		if ch == '"' || ch == '\'' {
			s, ok := d.str()
			if !ok {
				return vFail
			}
			col.AppendBytes(s)
			return vOK
		}
		// Any other value: its exact text.
		start := lx.i
		if !lx.skipValue(depth) {
			return vFail
		}
		col.AppendBytes(lx.b[start:lx.i:lx.i])
		return vOK
	case batch.Null:
		if !lx.skipValue(depth) {
			return vFail
		}
		col.AppendNull()
		return vOK
	}
	return d.scalar(c, col, ch, depth)
}

// scalar converts a flat non-string value.
func (d *Decoder) scalar(c *conv, col *batch.Column, ch byte, depth int) uint8 {
	lx := &d.lx
	switch {
	case ch == '"' || ch == '\'':
		s, ok := d.str()
		if !ok {
			return vFail
		}
		return d.fromString(c, col, s)
	case ch == 't' || ch == 'f':
		start := lx.i
		word := "true"
		if ch == 'f' {
			word = "false"
		}
		if !lx.literal(word) {
			return vFail
		}
		if c.class != batch.Boolean {
			d.fail(fmt.Sprintf("expected %s, got %s", want(c), lx.b[start:lx.i]))
			return vFail
		}
		col.AppendBool(lx.b[start] == 't')
		return vOK
	case ch == '{' || ch == '[':
		return d.mismatch(c)
	}
	num, isInt, special, ok := lx.number()
	if !ok {
		return vFail
	}
	switch c.class {
	case batch.Int, batch.Long:
		if !isInt {
			d.fail(fmt.Sprintf("expected %s, got %s", want(c), num))
			return vFail
		}
		bits := 64
		if c.class == batch.Int {
			bits = 32
		}
		v, err := strconv.ParseInt(string(num), 10, bits)
		if err != nil {
			d.fail(fmt.Sprintf("number %s is out of range for %s", num, c.kind))
			return vFail
		}
		col.AppendInt(v)
		return vOK
	case batch.Double:
		if special != 0 {
			col.AppendFloat(specialValue(special))
			return vOK
		}
		v, err := strconv.ParseFloat(string(num), 64)
		if err != nil && !isRangeErr(err) {
			d.fail(fmt.Sprintf("bad number %s", num))
			return vFail
		}
		col.AppendFloat(v) // out of range: ±Inf or 0, as Java's parseDouble
		return vOK
	case batch.Timestamp:
		if !isInt {
			d.fail(fmt.Sprintf("expected a timestamp, got %s", num))
			return vFail
		}
		secs, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || secs > math.MaxInt64/1_000_000 || secs < math.MinInt64/1_000_000 {
			d.fail(fmt.Sprintf("number %s is out of range for a timestamp", num))
			return vFail
		}
		col.AppendInt(secs * 1_000_000)
		return vOK
	}
	d.fail(fmt.Sprintf("expected %s, got %s", want(c), num))
	return vFail
}

func isRangeErr(err error) bool {
	var ne *strconv.NumError
	return errors.As(err, &ne) && ne.Err == strconv.ErrRange
}

func specialValue(s int8) float64 {
	switch s {
	case 1:
		return math.Inf(1)
	case -1:
		return math.Inf(-1)
	}
	return math.NaN()
}

// fromString converts a decoded string to a flat non-string kind.
func (d *Decoder) fromString(c *conv, col *batch.Column, s []byte) uint8 {
	if len(s) == 0 && c.class != batch.Binary {
		d.fail(fmt.Sprintf("empty string for %s", c.kind))
		return vFail
	}
	switch c.class {
	case batch.Double:
		switch string(s) {
		case "NaN":
			col.AppendFloat(math.NaN())
			return vOK
		case "+INF", "+Infinity", "Infinity":
			col.AppendFloat(math.Inf(1))
			return vOK
		case "-INF", "-Infinity":
			col.AppendFloat(math.Inf(-1))
			return vOK
		}
	case batch.Timestamp:
		// With a timestampFormat Spark does not fall back to its default
		// parsing (enableDateTimeParsingFallback defaults to "no format").
		if l := d.p.opts.TimestampLayout; l != "" {
			if t, err := time.ParseInLocation(l, string(s), time.UTC); err == nil {
				col.AppendInt(t.UnixMicro())
				return vOK
			}
		} else if v, ok := sparktext.ParseTimestamp(s); ok {
			col.AppendInt(v)
			return vOK
		}
	case batch.Date:
		if l := d.p.opts.DateLayout; l != "" {
			if t, err := time.ParseInLocation(l, string(s), time.UTC); err == nil {
				col.AppendInt(floorDiv(t.Unix(), 86400))
				return vOK
			}
		} else if v, ok := sparktext.ParseDate(s); ok {
			col.AppendInt(v)
			return vOK
		} else if v, err := strconv.ParseInt(string(s), 10, 32); err == nil {
			col.AppendInt(v) // Spark 1.5 wrote dates as a day count
			return vOK
		}
	case batch.Binary:
		if v, err := base64.StdEncoding.AppendDecode(nil, s); err == nil {
			if v == nil {
				v = []byte{}
			}
			col.AppendBytes(v)
			return vOK
		}
	}
	d.fail(fmt.Sprintf("cannot read %q as %s", clip(s), c.kind))
	return vFail
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// object converts an object to a struct cell of c (the value at lx.i is
// '{').
func (d *Decoder) object(c *conv, col *batch.Column) uint8 {
	lx := &d.lx
	lx.i++ // {
	lx.depth++
	defer func() { lx.depth-- }()
	base := col.Len
	n := len(c.fields)
	top := len(d.seen)
	for range n {
		d.seen = append(d.seen, false)
	}
	defer func() { d.seen = d.seen[:top] }()
	seen := d.seen[top : top+n]
	status := vOK
	lx.skipWS()
	if lx.peek() == '}' {
		lx.i++
	} else {
		for {
			lx.skipWS()
			name, ok := d.key()
			if !ok || !lx.expect(':') {
				return d.rollbackStruct(col, base)
			}
			if idx := c.field(name); idx < 0 {
				if !lx.skipValue(lx.depth) {
					return d.rollbackStruct(col, base)
				}
			} else {
				child := col.Children[idx]
				if seen[idx] {
					truncate(child, base) // a repeated field: the last value wins
				}
				seen[idx] = true
				switch d.value(c.fields[idx], child, lx.depth) {
				case vFail:
					if lx.err != "" {
						return d.rollbackStruct(col, base)
					}
					child.AppendNull()
					status = vPartial
				case vPartial:
					status = vPartial
				}
			}
			if more, ok := lx.next('}'); !ok {
				return d.rollbackStruct(col, base)
			} else if !more {
				break
			}
		}
	}
	for i, ok := range seen {
		if !ok {
			col.Children[i].AppendNull()
		}
	}
	col.AppendStruct()
	return status
}

func (d *Decoder) rollbackStruct(col *batch.Column, base int) uint8 {
	for _, ch := range col.Children {
		truncate(ch, base)
	}
	return vFail
}

// array converts an array (the value at lx.i is '['): an element that does
// not fit makes the whole array fail, once it is consumed.
func (d *Decoder) array(c *conv, col *batch.Column) uint8 {
	lx := &d.lx
	lx.i++ // [
	lx.depth++
	defer func() { lx.depth-- }()
	elems := col.Children[0]
	mark := elems.Len
	status := vOK
	failed := false
	lx.skipWS()
	if lx.peek() == ']' {
		lx.i++
	} else {
		for {
			if failed {
				if !lx.skipValue(lx.depth) {
					truncate(elems, mark)
					return vFail
				}
			} else {
				switch d.value(c.elem, elems, lx.depth) {
				case vFail:
					if lx.err != "" {
						truncate(elems, mark)
						return vFail
					}
					failed = true
				case vPartial:
					status = vPartial
				}
			}
			if more, ok := lx.next(']'); !ok {
				truncate(elems, mark)
				return vFail
			} else if !more {
				break
			}
		}
	}
	if failed {
		truncate(elems, mark)
		return vFail
	}
	col.AppendArray()
	return status
}

// mapValue converts an object to a map cell: keys are the field names in
// order (repeats kept, as Spark's parser keeps them); a value that does not
// fit makes the whole map fail.
func (d *Decoder) mapValue(c *conv, col *batch.Column) uint8 {
	lx := &d.lx
	lx.i++ // {
	lx.depth++
	defer func() { lx.depth-- }()
	keys, vals := col.Children[0], col.Children[1]
	mark := keys.Len
	rollback := func() uint8 {
		truncate(keys, mark)
		truncate(vals, mark)
		return vFail
	}
	status := vOK
	failed := false
	lx.skipWS()
	if lx.peek() == '}' {
		lx.i++
	} else {
		for {
			lx.skipWS()
			name, ok := d.key()
			if !ok || !lx.expect(':') {
				return rollback()
			}
			if failed {
				if !lx.skipValue(lx.depth) {
					return rollback()
				}
			} else {
				switch d.value(c.elem, vals, lx.depth) {
				case vFail:
					if lx.err != "" {
						return rollback()
					}
					failed = true
				case vPartial:
					status = vPartial
					keys.AppendBytes(d.own(name))
				default:
					keys.AppendBytes(d.own(name))
				}
			}
			if more, ok := lx.next('}'); !ok {
				return rollback()
			} else if !more {
				break
			}
		}
	}
	if failed {
		return rollback()
	}
	col.AppendMap()
	return status
}

// key reads an object key (a string) at lx.i.
func (d *Decoder) key() ([]byte, bool) {
	lx := &d.lx
	if lx.i >= len(lx.b) || (lx.b[lx.i] != '"' && lx.b[lx.i] != '\'') {
		if lx.i >= len(lx.b) {
			lx.syntax("unexpected end of input in an object")
		} else {
			lx.syntax(fmt.Sprintf("expected a field name, got %q", lx.b[lx.i]))
		}
		return nil, false
	}
	return d.str()
}

// own returns b as a slice the column may keep: b aliases the record or
// the arena already, so it is returned as is, with its capacity clipped.
func (d *Decoder) own(b []byte) []byte { return b[:len(b):len(b)] }

// str reads a string at lx.i and returns its decoded value: a sub-slice of
// the record when it has no escapes, else a copy in the arena.
func (d *Decoder) str() ([]byte, bool) {
	raw, esc, ok := d.lx.stringToken()
	if !ok {
		return nil, false
	}
	if !esc {
		return raw[:len(raw):len(raw)], true
	}
	start := len(d.arena)
	if cap(d.arena)-start < len(raw) {
		d.arena = make([]byte, 0, max(4096, 2*len(raw)))
		start = 0
	}
	out, ok := unescape(d.arena, raw)
	if !ok {
		d.lx.syntax("bad escape in a string")
		return nil, false
	}
	d.arena = out
	return out[start:len(out):len(out)], true
}

// unescape appends the decoded form of a string body with escapes.
func unescape(dst, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return dst, false
		}
		switch raw[i] {
		case '"', '\\', '/', '\'':
			dst = append(dst, raw[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw, i+1)
			if !ok {
				return dst, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2, ok := hex4(raw, i+3); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError // a lone surrogate, as Java would replace it in UTF-8
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// truncate shortens a column built by appending back to n cells.
func truncate(c *batch.Column, n int) {
	if c.Len <= n {
		return
	}
	if c.Valid != nil {
		c.Valid = c.Valid[:n]
	}
	switch c.Type.Class() {
	case batch.Boolean:
		c.Bools = c.Bools[:n]
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		c.Ints = c.Ints[:n]
	case batch.Double:
		c.Floats = c.Floats[:n]
	case batch.String, batch.Binary:
		c.Bytes = c.Bytes[:n]
	case batch.Struct:
		for _, ch := range c.Children {
			truncate(ch, n)
		}
	case batch.Array, batch.Map:
		m := int(c.Offsets[n])
		c.Offsets = c.Offsets[:n+1]
		for _, ch := range c.Children {
			truncate(ch, m)
		}
	}
	c.Len = n
}

// ---- lexer ----

// lexer scans JSON text. err is set on the first syntax error; every
// method returns false once it is set.
type lexer struct {
	b     []byte
	i     int
	depth int
	err   string
}

// next consumes the ',' between members or the closer after the last one:
// more reports a ','. A trailing comma before the closer is an error, as
// Jackson reports it.
func (lx *lexer) next(closer byte) (more, ok bool) {
	lx.skipWS()
	switch {
	case lx.i >= len(lx.b):
		lx.syntax(fmt.Sprintf("expected ',' or '%c' but the input ended", closer))
		return false, false
	case lx.b[lx.i] == ',':
		lx.i++
		lx.skipWS()
		if lx.peek() == closer {
			lx.syntax(fmt.Sprintf("unexpected '%c' after ','", closer))
			return false, false
		}
		return true, true
	case lx.b[lx.i] == closer:
		lx.i++
		return false, true
	}
	lx.syntax(fmt.Sprintf("expected ',' or '%c', got %q", closer, lx.b[lx.i]))
	return false, false
}

func (lx *lexer) syntax(why string) {
	if lx.err == "" {
		lx.err = fmt.Sprintf("invalid JSON at offset %d: %s", lx.i, why)
	}
}

func (lx *lexer) skipWS() {
	for lx.i < len(lx.b) {
		switch lx.b[lx.i] {
		case ' ', '\t', '\n', '\r':
			lx.i++
		default:
			return
		}
	}
}

func (lx *lexer) peek() byte {
	if lx.i < len(lx.b) {
		return lx.b[lx.i]
	}
	return 0
}

func (lx *lexer) expect(c byte) bool {
	lx.skipWS()
	if lx.i < len(lx.b) && lx.b[lx.i] == c {
		lx.i++
		return true
	}
	if lx.i >= len(lx.b) {
		lx.syntax(fmt.Sprintf("expected '%c' but the input ended", c))
	} else {
		lx.syntax(fmt.Sprintf("expected '%c', got %q", c, lx.b[lx.i]))
	}
	return false
}

// literal consumes word (true, false, null) at lx.i.
func (lx *lexer) literal(word string) bool {
	if len(lx.b)-lx.i >= len(word) && string(lx.b[lx.i:lx.i+len(word)]) == word {
		end := lx.i + len(word)
		if end < len(lx.b) && isWordByte(lx.b[end]) {
			lx.syntax(fmt.Sprintf("unexpected %q", clip(lx.b[lx.i:min(len(lx.b), end+8)])))
			return false
		}
		lx.i = end
		return true
	}
	lx.syntax(fmt.Sprintf("unexpected %q", clip(lx.b[lx.i:min(len(lx.b), lx.i+8)])))
	return false
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// stringToken reads a string delimited by " or ' at lx.i and returns its
// raw body and whether it has escapes. Control characters must be escaped.
func (lx *lexer) stringToken() ([]byte, bool, bool) {
	q := lx.b[lx.i]
	start := lx.i + 1
	esc := false
	qs := uint64(q) * swarOnes
	for j := start; j < len(lx.b); j++ {
		// Go 8 bytes at a time to the first byte that ends the string,
		// starts an escape or is a control character.
		for j+8 <= len(lx.b) {
			if m := swarSpecial(binary.LittleEndian.Uint64(lx.b[j:]), qs); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		if j >= len(lx.b) {
			break
		}
		c := lx.b[j]
		switch {
		case c == q:
			lx.i = j + 1
			return lx.b[start:j], esc, true
		case c == '\\':
			esc = true
			j++
		case c < 0x20:
			lx.i = j
			lx.syntax("unescaped control character in a string")
			return nil, false, false
		}
	}
	lx.i = len(lx.b)
	lx.syntax("unterminated string")
	return nil, false, false
}

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// swarSpecial flags the bytes of x (little endian) that are below 0x20, a
// backslash or the quote whose byte qs repeats: 0 when there are none, else
// the lowest set bit is the high bit of the first such byte (the classic
// bit tricks: a borrow can flag a byte above a flagged one, never below).
func swarSpecial(x, qs uint64) uint64 {
	ctl := (x - 0x20*swarOnes) & ^x
	xq := x ^ qs
	quote := (xq - swarOnes) & ^xq
	xb := x ^ ('\\' * swarOnes)
	bs := (xb - swarOnes) & ^xb
	return (ctl | quote | bs) & swarHigh
}

// number reads a number at lx.i: JSON's grammar (no leading zeros, no
// leading '+'), or NaN / Infinity / INF with an optional sign. special is
// 0 for a plain number, 1 for +∞, -1 for -∞, 2 for NaN.
func (lx *lexer) number() (text []byte, isInt bool, special int8, ok bool) {
	b := lx.b
	start := lx.i
	j := start
	neg := false
	if j < len(b) && (b[j] == '-' || b[j] == '+') {
		neg = b[j] == '-'
		j++
	}
	if j < len(b) && (b[j] == 'N' || b[j] == 'I') {
		for _, w := range []string{"NaN", "Infinity", "INF"} {
			if len(b)-j >= len(w) && string(b[j:j+len(w)]) == w && (j+len(w) == len(b) || !isWordByte(b[j+len(w)])) {
				if w == "NaN" && j != start {
					break // no signed NaN
				}
				lx.i = j + len(w)
				switch {
				case w == "NaN":
					return b[start:lx.i], false, 2, true
				case neg:
					return b[start:lx.i], false, -1, true
				}
				return b[start:lx.i], false, 1, true
			}
		}
		lx.i = j
		lx.syntax(fmt.Sprintf("unexpected %q", clip(b[start:min(len(b), j+8)])))
		return nil, false, 0, false
	}
	if j > start && b[start] == '+' {
		lx.i = start
		lx.syntax("a number cannot start with '+'")
		return nil, false, 0, false
	}
	digits := j
	if j = digitsEnd(b, j); j == digits {
		lx.i = j
		if j < len(b) {
			lx.syntax(fmt.Sprintf("unexpected %q", b[j]))
		} else {
			lx.syntax("unexpected end of input")
		}
		return nil, false, 0, false
	}
	if b[digits] == '0' && j-digits > 1 {
		lx.i = digits
		lx.syntax("leading zeros are not allowed")
		return nil, false, 0, false
	}
	isInt = true
	if j < len(b) && b[j] == '.' {
		isInt = false
		f := j + 1
		if j = digitsEnd(b, f); j == f {
			lx.i = j
			lx.syntax("a fraction needs digits")
			return nil, false, 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		isInt = false
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		e := j
		if j = digitsEnd(b, e); j == e {
			lx.i = j
			lx.syntax("an exponent needs digits")
			return nil, false, 0, false
		}
	}
	if j < len(b) && isWordByte(b[j]) {
		lx.i = j
		lx.syntax(fmt.Sprintf("unexpected %q after a number", b[j]))
		return nil, false, 0, false
	}
	lx.i = j
	return b[start:j], isInt, 0, true
}

// skipValue consumes one value, checking its syntax.
func (lx *lexer) skipValue(depth int) bool {
	lx.skipWS()
	if lx.i >= len(lx.b) {
		lx.syntax("unexpected end of input")
		return false
	}
	switch c := lx.b[lx.i]; c {
	case '{', '[':
		if depth >= maxDepth {
			lx.syntax("nested too deeply")
			return false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		lx.i++
		lx.skipWS()
		if lx.peek() == closer {
			lx.i++
			return true
		}
		for {
			if c == '{' {
				lx.skipWS()
				if lx.i >= len(lx.b) || (lx.b[lx.i] != '"' && lx.b[lx.i] != '\'') {
					lx.syntax("expected a field name")
					return false
				}
				if _, _, ok := lx.stringToken(); !ok || !lx.expect(':') {
					return false
				}
			}
			if !lx.skipValue(depth + 1) {
				return false
			}
			more, ok := lx.next(closer)
			if !ok {
				return false
			}
			if !more {
				return true
			}
		}
	case '"', '\'':
		_, _, ok := lx.stringToken()
		return ok
	case 't':
		return lx.literal("true")
	case 'f':
		return lx.literal("false")
	case 'n':
		return lx.literal("null")
	}
	_, _, _, ok := lx.number()
	return ok
}
