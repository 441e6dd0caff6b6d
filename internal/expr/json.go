package expr

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/ddl"
	"github.com/sluice-stream/sluice/internal/sparkjson"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// This file holds the JSON functions: from_json, to_json and
// get_json_object (package sparkjson does the parsing and writing), and
// map(), which from_json's options are written with.

// jsonSchema reads from_json's schema argument: a DDL column list
// ("a INT, b STRING"), a DDL type ("array<struct<a:int>>",
// "map<string,int>") or a schema in Spark's JSON form.
func jsonSchema(a cexpr) (batch.Kind, error) {
	if a.lit == nil {
		return 0, errAt(a.pos, "[INVALID_SCHEMA.NON_STRING_LITERAL] The input schema %s must be a STRING literal", a.sql)
	}
	s, ok := a.lit.Value.(string)
	if !ok {
		return 0, errAt(a.pos, "[INVALID_SCHEMA.NON_STRING_LITERAL] The input schema %s must be a STRING literal", a.sql)
	}
	t := strings.TrimSpace(s)
	var k batch.Kind
	var err error
	switch {
	case strings.HasPrefix(t, "{"):
		k, err = batch.ParseTypeJSON([]byte(t))
	default:
		lower := strings.ToLower(t)
		if strings.HasPrefix(lower, "array") || strings.HasPrefix(lower, "map") {
			k, err = ddl.ParseType(t)
		} else {
			var sch batch.Schema
			if sch, err = ddl.Parse(t); err == nil {
				k = batch.StructOf(sch.Fields...)
			}
		}
	}
	if err != nil {
		return 0, errAt(a.pos, "[INVALID_SCHEMA.PARSE_ERROR] The input schema %s is not a valid schema string: %v", quoteString(s), err)
	}
	switch k.Class() {
	case batch.Struct, batch.Array, batch.Map:
	default:
		return 0, errAt(a.pos, "[INVALID_SCHEMA] The input schema %s must be a struct, an array or a map", quoteString(s))
	}
	if k.Contains(batch.Map) {
		bad := false
		k.Walk(func(x batch.Kind) bool {
			if x.Class() == batch.Map && x.KeyType() != batch.String {
				bad = true
			}
			return !bad
		})
		if bad {
			return 0, errAt(a.pos, "[INVALID_JSON_MAP_KEY_TYPE] Input schema %s can only contain STRING as a key type for a MAP.", k.SQL())
		}
	}
	return k, nil
}

// optionsArg reads a function's options argument: map('key', 'value', …)
// of string literals (Spark's map literal). Keys are matched
// case-insensitively.
func optionsArg(name string, n Node) (map[string]string, error) {
	call, ok := n.(*Call)
	if !ok || !strings.EqualFold(call.Name, "map") || len(call.Args)%2 != 0 {
		return nil, errAt(n.Pos(), "%s() options must be map('key', 'value', ...) of string literals", name)
	}
	out := map[string]string{}
	for i := 0; i < len(call.Args); i += 2 {
		k, ok1 := call.Args[i].(*Literal)
		v, ok2 := call.Args[i+1].(*Literal)
		if !ok1 || !ok2 || k.Type != batch.String || v.Value == nil {
			return nil, errAt(call.Args[i].Pos(), "%s() options must be map('key', 'value', ...) of string literals", name)
		}
		val := fmt.Sprint(v.Value)
		if b, ok := v.Value.(bool); ok {
			val = fmt.Sprint(b)
		}
		out[strings.ToLower(k.Value.(string))] = val
	}
	return out, nil
}

// fromJSONOptions are the options from_json reads; others are refused so
// a misspelt option is not silently ignored.
var fromJSONOptions = []string{"mode", "timestampformat", "dateformat", "columnnameofcorruptrecord"}

// buildFromJSON is from_json(json, schema[, options]).
func buildFromJSON(name string, args []cexpr, call *Call) (cexpr, error) {
	x := args[0]
	switch x.kind() {
	case batch.String, batch.Binary, batch.Null:
	default:
		return cexpr{}, argErr(name, 0, x, "a string")
	}
	k, err := jsonSchema(args[1])
	if err != nil {
		return cexpr{}, err
	}
	k = k.AsNullable() // Spark parses into the schema's asNullable
	opts := map[string]string{}
	if len(args) > 2 {
		if opts, err = optionsArg(name, call.Args[2]); err != nil {
			return cexpr{}, err
		}
	}
	for key := range opts {
		if !containsStr(fromJSONOptions, key) {
			return cexpr{}, errAt(call.Args[2].Pos(), "%s() does not support the option %q (supported: mode, timestampFormat, dateFormat, columnNameOfCorruptRecord)", name, key)
		}
	}
	po := sparkjson.Options{CorruptField: -1}
	failFast := false
	switch m := strings.ToUpper(opts["mode"]); m {
	case "", "PERMISSIVE":
	case "FAILFAST":
		failFast = true
	default:
		return cexpr{}, errAt(call.Args[2].Pos(), "[PARSE_MODE_UNSUPPORTED] The function `from_json` doesn't support the %s mode. Acceptable modes are PERMISSIVE and FAILFAST.", m)
	}
	if f := opts["timestampformat"]; f != "" {
		if po.TimestampLayout, err = sparktext.JavaLayout(f); err != nil {
			return cexpr{}, errAt(call.Args[2].Pos(), "invalid timestampFormat %s: %v", quoteString(f), err)
		}
	}
	if f := opts["dateformat"]; f != "" {
		if po.DateLayout, err = sparktext.JavaLayout(f); err != nil {
			return cexpr{}, errAt(call.Args[2].Pos(), "invalid dateFormat %s: %v", quoteString(f), err)
		}
	}
	corrupt := "_corrupt_record"
	if c, ok := opts["columnnameofcorruptrecord"]; ok {
		corrupt = c
	}
	if k.Class() == batch.Struct {
		for i, f := range k.Fields() {
			if f.Name == corrupt {
				if f.Type != batch.String {
					return cexpr{}, errAt(args[1].pos, "[INVALID_CORRUPT_RECORD_TYPE] The column %s for corrupt records must have the nullable STRING type, but got %s.",
						quoteIdent(corrupt, true), f.Type.SQL())
				}
				po.CorruptField = i
			}
		}
	}
	p, err := sparkjson.NewParser(k, po)
	if err != nil {
		return cexpr{}, errAt(args[1].pos, "%v", err)
	}
	sql := name + "(" + x.sql + ")"
	return cexpr{ev: &fromJSONEval{x: x.ev, p: p, failFast: failFast, sql: sql}, sql: sql}, nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fromJSONEval parses each row's JSON text.
type fromJSONEval struct {
	x        evaluator
	p        *sparkjson.Parser
	failFast bool
	sql      string
}

func (e *fromJSONEval) kind() batch.Kind { return e.p.Kind() }
func (e *fromJSONEval) nullable() bool   { return true }
func (e *fromJSONEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	out := batch.NewColumn(e.p.Kind(), b.N)
	if x.Type == batch.Null {
		for range b.N {
			out.AppendNull()
		}
		return out, nil
	}
	d := e.p.NewDecoder()
	for i := 0; i < b.N; i++ {
		if isNullAt(x, i) {
			out.AppendNull()
			continue
		}
		st, why := d.Append(out, x.Bytes[i])
		if st == sparkjson.OK || !e.failFast {
			continue
		}
		reason := fmt.Sprintf("[MALFORMED_RECORD_IN_PARSING.WITHOUT_SUGGESTION] Malformed records are detected in record parsing: %s. "+
			"Parse Mode: FAILFAST. To process malformed records as null result, try setting the option 'mode' as 'PERMISSIVE'. (%s, in %s)",
			clipRecord(x.Bytes[i]), why, e.sql)
		if ctx == nil || ctx.RowErrors == nil {
			return nil, fmt.Errorf("%s", reason)
		}
		ctx.RowErrors.Add(i, reason)
	}
	return out, nil
}

func clipRecord(b []byte) string {
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// buildToJSON is to_json(struct | array | map): the value as Spark's JSON
// generator writes it (null struct fields omitted).
func buildToJSON(name string, args []cexpr, call *Call) (cexpr, error) {
	x := args[0]
	if !x.kind().IsNested() && x.kind() != batch.Null {
		return cexpr{}, errAt(x.pos, "[DATATYPE_MISMATCH.INVALID_JSON_SCHEMA] to_json() needs a struct, an array or a map, but %s is %s", x.sql, x.kind().SQL())
	}
	if len(args) > 1 {
		return cexpr{}, errAt(call.Args[1].Pos(), "to_json() options are not supported: timestamps are written as yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX] in UTC and dates as yyyy-MM-dd")
	}
	sql := name + "(" + x.sql + ")"
	return cexpr{ev: &fnEval{k: batch.String, args: []evaluator{x.ev}, null: x.ev.nullable(),
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			c := cols[0]
			out := &batch.Column{Type: batch.String, Len: n, Bytes: make([][]byte, n)}
			if c.Type == batch.Null {
				return nullCol(batch.String, n), nil
			}
			out.Valid = c.Valid
			a := newArena(n * 32)
			for i := 0; i < n; i++ {
				if isNullAt(c, i) {
					continue
				}
				m := a.start(32)
				a.buf = sparkjson.AppendValue(a.buf, c, i)
				out.Bytes[i] = a.end(m)
			}
			return out, nil
		}}, sql: sql}, nil
}

// buildGetJSONObject is get_json_object(json, path).
func buildGetJSONObject(name string, args []cexpr, _ *Call) (cexpr, error) {
	x, path := args[0], args[1]
	for i, a := range args {
		switch a.kind() {
		case batch.String, batch.Binary, batch.Null:
		default:
			return cexpr{}, argErr(name, i, a, "a string")
		}
	}
	var fixed *sparkjson.Path
	if path.lit != nil {
		if s, ok := path.lit.Value.(string); ok {
			if p, ok := sparkjson.ParsePath(s); ok {
				fixed = &p
			}
		}
	}
	return cexpr{ev: &fnEval{k: batch.String, args: []evaluator{x.ev, path.ev}, null: true,
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			js, ps := cols[0], cols[1]
			out := newCol(batch.String, n)
			a := newArena(n * 16)
			for i := 0; i < n; i++ {
				if isNullAt(js, i) || isNullAt(ps, i) {
					setNull(out, i)
					continue
				}
				p := fixed
				if p == nil {
					pp, ok := sparkjson.ParsePath(string(ps.Bytes[i]))
					if !ok {
						setNull(out, i)
						continue
					}
					p = &pp
				}
				m := a.start(16)
				var ok bool
				a.buf, ok = p.Eval(a.buf, js.Bytes[i])
				if !ok {
					a.buf = a.buf[:m]
					setNull(out, i)
					continue
				}
				out.Bytes[i] = a.end(m)
			}
			return out, nil
		}}}, nil
}

// buildMap is map(key1, value1, ...): Spark's CreateMap. Keys and values
// are widened to common types; a NULL key is an error (NULL_MAP_KEY) and
// so is a repeated key (DUPLICATED_MAP_KEY, Spark's default
// spark.sql.mapKeyDedupPolicy=EXCEPTION).
func buildMap(name string, args []cexpr, call *Call) (cexpr, error) {
	if len(args)%2 != 0 {
		return cexpr{}, errAt(call.At, "[WRONG_NUM_ARGS.WITHOUT_SUGGESTION] The `map` requires an even number of arguments, but %d were given.", len(args))
	}
	var keys, vals []cexpr
	for i := 0; i < len(args); i += 2 {
		keys, vals = append(keys, args[i]), append(vals, args[i+1])
	}
	kt, err := unify(keys, "map() keys")
	if err != nil {
		return cexpr{}, err
	}
	vt, err := unify(vals, "map() values")
	if err != nil {
		return cexpr{}, err
	}
	if kt.Contains(batch.Map) || !orderable(kt) {
		return cexpr{}, errAt(call.At, "map() keys cannot be maps")
	}
	null := false
	for i := range keys {
		keys[i], vals[i] = coerce(keys[i], kt), coerce(vals[i], vt)
		null = null || vals[i].ev.nullable()
	}
	k := batch.MapOf(kt, vt, null)
	sql := callSQL(name, args)
	return cexpr{ev: &fnEval{k: k, args: append(evs(keys), evs(vals)...), null: false,
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			kc, vc := cols[:len(keys)], cols[len(keys):]
			out := batch.NewColumn(k, n)
			for r := 0; r < n; r++ {
				start := out.Children[0].Len
				for j := range kc {
					if isNullAt(kc[j], r) {
						return nil, fmt.Errorf("[NULL_MAP_KEY] Cannot use null as map key. (in %s)", sql)
					}
					for e := start; e < out.Children[0].Len; e++ {
						if compareCells(out.Children[0], e, kc[j], r) == 0 {
							return nil, fmt.Errorf("[DUPLICATED_MAP_KEY] Duplicate map key %s was found, please check the input data. (in %s)", cellSQL(kc[j], r), sql)
						}
					}
					out.Children[0].AppendFrom(kc[j], r)
					out.Children[1].AppendFrom(vc[j], r)
				}
				out.AppendMap()
			}
			return out, nil
		}}}, nil
}
