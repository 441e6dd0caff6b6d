// Package pipeline parses and validates sluice pipeline files — the YAML
// given to `sluice run PIPELINE.yaml` — into a File (source, transform steps,
// sink, trigger, options), reporting every problem with its file and line.
//
// The format:
//
//	name: orders
//	source:
//	  format: kafka
//	  options:
//	    kafka.bootstrap.servers: ${KAFKA_BOOTSTRAP:-localhost:9092}
//	    subscribe: orders
//	transform:
//	  - selectExpr: ["CAST(value AS STRING) AS json"]
//	  - withColumn: {name: processed_ts, expr: "current_timestamp()"}
//	  - filter: "json IS NOT NULL"
//	  - withWatermark: {eventTime: processed_ts, delay: 10 seconds}
//	  - groupBy: ["processed_ts"]
//	    agg: ["count(*) AS n"]
//	sink:
//	  format: console
//	  outputMode: append
//	  options:
//	    checkpointLocation: /tmp/chk/orders
//	trigger:
//	  processingTime: 20 seconds   # or availableNow: true | once: true
//
// Each transform step is a plan.Op, the same operation the Go API's
// DataFrame methods add, so a file and a program build the same logical
// plan (package plan). Steps: selectExpr, select, withColumn, filter (or
// where), withWatermark {eventTime, delay}, groupBy with agg in one step
// (agg alone aggregates the whole stream), and dropDuplicates — a list of
// columns (empty: all) or {columns, withinWatermark}.
//
// Parsing is strict: unknown keys, wrong value types and missing required
// keys are errors that name the key, its line and what is allowed. Option
// values may be strings, numbers or booleans and are kept exactly as written.
// Scalar values (never keys) may reference ${VAR} or ${VAR:-default}; "$${"
// is a literal "${". This package does not know which formats or options
// exist; the registry's specs validate those, and the Line and Column
// fields (and File.ErrorAt) let the caller point at the offending key, as
// `sluice lint` does.
package pipeline

import (
	"github.com/sluice-stream/sluice/internal/redact"

	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/plan"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// File is a parsed and validated pipeline file.
type File struct {
	// Path is the file name given to Parse or Load; it prefixes positions.
	Path string
	// Name is the query name: the top-level name, or else sink.queryName.
	Name string
	// Source is where records come from.
	Source Source
	// Transform is the list of steps applied to each batch, in order.
	Transform []Step
	// Sink is where results go.
	Sink Sink
	// Trigger says when batches run; Kind "default" when omitted.
	Trigger Trigger
	// Options are query and engine options (e.g. sluice.workers,
	// spark.sql.shuffle.partitions), values as written. Never nil.
	Options map[string]string
	// OptionLines and OptionColumns give the line and column of each key
	// in Options.
	OptionLines   map[string]int
	OptionColumns map[string]int
	// DeadLetter is where records that fail go, if configured. Its meaning
	// is left to the engine.
	DeadLetter *Endpoint
	// CheckpointLocation is the top-level checkpointLocation or else the
	// sink's checkpointLocation option; "" if neither is set.
	CheckpointLocation string
	// CheckpointLine and CheckpointColumn are the position of the
	// top-level checkpointLocation key (0 when absent).
	CheckpointLine, CheckpointColumn int
}

// Source is the pipeline's input.
type Source struct {
	// Format names the source implementation, e.g. "kafka", as written.
	Format string
	// Options are the source options, names and values as written. Never nil.
	Options map[string]string
	// OptionLines and OptionColumns give the line and column of each key
	// in Options.
	OptionLines   map[string]int
	OptionColumns map[string]int
	// Line and Column are the position of the "source:" key.
	Line, Column int
	// FormatLine and FormatColumn are the position of the format's value.
	FormatLine, FormatColumn int
}

// Sink is the pipeline's output.
type Sink struct {
	// Format names the sink implementation, e.g. "console", as written.
	Format string
	// OutputMode is "append" (the default), "update" or "complete",
	// lower-cased.
	OutputMode string
	// QueryName is sink.queryName as written ("" if absent); File.Name holds
	// the effective query name.
	QueryName string
	// Options are the sink options, names and values as written. Never nil.
	Options map[string]string
	// OptionLines and OptionColumns give the line and column of each key
	// in Options.
	OptionLines   map[string]int
	OptionColumns map[string]int
	// Line and Column are the position of the "sink:" key.
	Line, Column int
	// FormatLine and FormatColumn are the position of the format's value;
	// OutputModeLine and OutputModeColumn of the outputMode value (0 when
	// absent).
	FormatLine, FormatColumn         int
	OutputModeLine, OutputModeColumn int
}

// Endpoint is a format plus options, used for the dead-letter destination.
type Endpoint struct {
	// Format names the implementation, as written.
	Format string
	// Options are names and values as written. Never nil.
	Options map[string]string
	// OptionLines and OptionColumns give the line and column of each key
	// in Options.
	OptionLines   map[string]int
	OptionColumns map[string]int
	// Line and Column are the position of the key that introduced the
	// endpoint.
	Line, Column int
	// FormatLine and FormatColumn are the position of the format's value.
	FormatLine, FormatColumn int
}

// Step is one transform step: the operation it adds to the query's
// logical plan ("where" parses to plan.Filter) and where it is written.
type Step struct {
	plan.Op
	// Line and Column are the position of the step's kind key.
	Line, Column int
}

// Trigger kinds.
const (
	TriggerDefault        = "default"        // run the next batch as soon as the last one ends
	TriggerProcessingTime = "processingTime" // run batches on an interval
	TriggerAvailableNow   = "availableNow"   // drain what is available in limited batches, then stop
	TriggerOnce           = "once"           // one batch of everything available, then stop
)

// Trigger says when micro-batches run.
type Trigger struct {
	// Kind is one of the Trigger* constants.
	Kind string
	// Interval is the processingTime interval (0 for other kinds).
	Interval time.Duration
	// Line and Column are the position of the trigger's key; 0 for the
	// default trigger.
	Line, Column int
}

var (
	topKeys        = []string{"name", "source", "transform", "sink", "trigger", "options", "deadLetter", "checkpointLocation"}
	endpointKeys   = []string{"format", "options"}
	sinkKeys       = []string{"format", "outputMode", "queryName", "options"}
	triggerKeys    = []string{"processingTime", "availableNow", "once"}
	stepKinds      = []string{"selectExpr", "select", "withColumn", "filter", "where", "withWatermark", "groupBy", "agg", "dropDuplicates"}
	withColumnKeys = []string{"name", "expr"}
	watermarkKeys  = []string{"eventTime", "delay"}
	dedupKeys      = []string{"columns", "withinWatermark"}
	// subKeys are the keys nested under a step kind (for the indentation
	// hint when one is written beside it).
	subKeys = map[string][]string{"withColumn": withColumnKeys, "withWatermark": watermarkKeys, "dropDuplicates": dedupKeys}
)

const (
	// maxValues bounds the values visited, so aliases that repeat large
	// nodes cannot make parsing explode.
	maxValues = 1_000_000
	// maxErrors bounds the errors reported for one file.
	maxErrors = 20
)

// MaxFileSize is the largest pipeline file Load and Parse accept: 1 MiB,
// far above any real pipeline and small enough that parsing stays cheap.
const MaxFileSize = 1 << 20

// Load reads and parses the pipeline file at path, expanding ${VAR} from
// the process environment. Only a regular file (or a symbolic link to one)
// of at most MaxFileSize bytes is read: a device such as /dev/zero would
// never end and opening a FIFO blocks until someone writes to it.
func Load(path string) (*File, error) {
	data, err := readRegular(path)
	if err != nil {
		return nil, fmt.Errorf("load pipeline: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// ReadFile reads a pipeline file as Load does — a regular file of at most
// MaxFileSize bytes — for callers that parse it themselves (`sluice lint`).
func ReadFile(path string) ([]byte, error) { return readRegular(path) }

// readRegular reads a regular file of at most MaxFileSize bytes. The type is
// checked before opening (opening a FIFO blocks) and again on the open file,
// and the read stops past the limit even if the file grows meanwhile.
func readRegular(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkRegular(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if err := checkSize(path, max(int64(len(data)), fi.Size())); err != nil {
		return nil, err
	}
	return data, nil
}

// checkRegular refuses anything but a regular file, naming what it is.
func checkRegular(path string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() {
		if err := checkSize(path, fi.Size()); err != nil {
			return err
		}
		return nil
	}
	what := "not a file"
	switch m := fi.Mode(); {
	case m.IsDir():
		what = "a directory"
	case m&os.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&os.ModeSocket != 0:
		what = "a socket"
	case m&os.ModeDevice != 0:
		what = "a device"
	}
	return fmt.Errorf("%s is not a regular file (it is %s); a pipeline file must be a regular file", path, what)
}

func checkSize(name string, size int64) error {
	if size > MaxFileSize {
		return fmt.Errorf("%s is %d bytes; a pipeline file may be at most 1 MiB (%d bytes)", name, size, MaxFileSize)
	}
	return nil
}

// Parse parses and validates a pipeline file. name is used in error
// positions and File.Path ("" for none). env looks up variables for ${VAR}
// expansion; nil means no variable is set. data may be at most MaxFileSize
// bytes. The error, if any, is an ErrorList holding every problem found,
// each an *Error.
func Parse(name string, data []byte, env func(string) (string, bool)) (*File, error) {
	if err := checkSize("the file", int64(len(data))); err != nil {
		return nil, ErrorList{{File: name, Err: err}}
	}
	return parse(name, data, env, maxValues)
}

// parse is Parse with a bound on the values visited.
func parse(name string, data []byte, env func(string) (string, bool), budget int) (*File, error) {
	p := &parser{file: name, env: env, budget: budget, lines: strings.Split(string(data), "\n")}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	f := p.pipeline(root)
	if len(p.errs) > 0 {
		// A secret (a ${VAR} given to a secret option) may also be the
		// value another error quotes: no error shows it.
		sc := secrets(f)
		for _, e := range p.errs {
			e.Err = sc.Err(e.Err)
		}
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		if len(p.errs) > maxErrors {
			p.errs = append(p.errs[:maxErrors], &Error{File: name, Err: errors.New("too many errors")})
		}
		return nil, p.errs
	}
	return f, nil
}

// secrets returns the scrubber of the secret option values of f (by name,
// redact.IsSecretOption) and of the secrets inside them.
func secrets(f *File) redact.Scrubber {
	var vals []string
	add := func(m map[string]string) {
		for k, v := range m {
			if redact.IsSecretOption(k) {
				vals = append(vals, v)
				vals = append(vals, redact.Embedded(v)...)
			}
		}
	}
	if f != nil {
		add(f.Options)
		add(f.Source.Options)
		add(f.Sink.Options)
		if f.DeadLetter != nil {
			add(f.DeadLetter.Options)
		}
	}
	return redact.NewScrubber(vals...)
}

// Lookup returns the value of option name in opts, ignoring case as Spark
// does for option names. Parse rejects options that differ only in case, so
// at most one matches.
func Lookup(opts map[string]string, name string) (string, bool) {
	k, ok := lookupKey(opts, name)
	if !ok {
		return "", false
	}
	return opts[k], true
}

func lookupKey(opts map[string]string, name string) (string, bool) {
	if _, ok := opts[name]; ok {
		return name, true
	}
	for k := range opts {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

func optionLine(opts map[string]string, lines map[string]int, name string) int {
	if k, ok := lookupKey(opts, name); ok {
		return lines[k]
	}
	return 0
}

// Option returns the source option name, ignoring case.
func (s Source) Option(name string) (string, bool) { return Lookup(s.Options, name) }

// OptionLine returns the line of the source option name (ignoring case), or 0.
func (s Source) OptionLine(name string) int { return optionLine(s.Options, s.OptionLines, name) }

// Option returns the sink option name, ignoring case.
func (s Sink) Option(name string) (string, bool) { return Lookup(s.Options, name) }

// OptionLine returns the line of the sink option name (ignoring case), or 0.
func (s Sink) OptionLine(name string) int { return optionLine(s.Options, s.OptionLines, name) }

// Option returns the endpoint option name, ignoring case.
func (e Endpoint) Option(name string) (string, bool) { return Lookup(e.Options, name) }

// OptionLine returns the line of the endpoint option name (ignoring case), or 0.
func (e Endpoint) OptionLine(name string) int { return optionLine(e.Options, e.OptionLines, name) }

// Option returns the top-level (query) option name, ignoring case.
func (f *File) Option(name string) (string, bool) { return Lookup(f.Options, name) }

// OptionLine returns the line of the top-level option name (ignoring case), or 0.
func (f *File) OptionLine(name string) int { return optionLine(f.Options, f.OptionLines, name) }

// parser walks the YAML node tree and collects errors.
type parser struct {
	file   string
	lines  []string // the file's lines, for error columns
	env    func(string) (string, bool)
	errs   ErrorList
	values int // values visited so far
	budget int // maximum values to visit
	tooBig bool
}

// entry is one key/value pair of a mapping.
type entry struct {
	key  string
	line int // line of the key
	col  int // column of the key
	val  *yaml.Node
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Column: p.column(line), Err: fmt.Errorf(format, args...)})
}

// column is where line's content starts (after indentation and a list
// item's "- "): the column of the key an error on that line is about.
func (p *parser) column(line int) int {
	if line <= 0 || line > len(p.lines) {
		return 0
	}
	l := p.lines[line-1]
	i := 0
	for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
		i++
	}
	for i+1 < len(l) && l[i] == '-' && l[i+1] == ' ' {
		i += 2
		for i < len(l) && l[i] == ' ' {
			i++
		}
	}
	if i >= len(l) {
		return 1
	}
	return len([]rune(l[:i])) + 1
}

// spend charges n visited values; false once the budget is exhausted.
func (p *parser) spend(n, line int) bool {
	p.values += n
	if p.values <= p.budget {
		return true
	}
	if !p.tooBig {
		p.tooBig = true
		p.errorf(line, "file too large: more than %d values (after expanding aliases)", p.budget)
	}
	return false
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into the root node of its single YAML document.
func (p *parser) document(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The YAML library reports errors by panicking internally; make
		// sure nothing escapes as a panic.
		if r := recover(); r != nil {
			root, err = nil, ErrorList{{File: p.file, Err: fmt.Errorf("invalid YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrorList{{File: p.file, Err: errors.New("empty pipeline file")}}
		}
		return nil, ErrorList{p.yamlError(err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, ErrorList{{File: p.file, Line: extra.Line, Err: errors.New(`a pipeline file holds one YAML document; remove the second "---"`)}}
	case !errors.Is(err, io.EOF):
		return nil, ErrorList{p.yamlError(err)}
	}
	root = &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if isNull(deref(root)) {
		return nil, ErrorList{{File: p.file, Err: errors.New("empty pipeline file")}}
	}
	return root, nil
}

// yamlError turns a YAML syntax error into an *Error with its line.
func (p *parser) yamlError(err error) *Error {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: p.file, Line: line, Column: p.column(line), Err: fmt.Errorf("invalid YAML: %s", m[2])}
	}
	return &Error{File: p.file, Err: fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))}
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func isScalar(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && !isNull(n)
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind != yaml.ScalarNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	switch n.ShortTag() {
	case "!!bool":
		return "the boolean " + v
	case "!!int", "!!float":
		return "the number " + v
	}
	return fmt.Sprintf("the string %q", v)
}

// mapping returns the entries of n, which must be a mapping or null (no
// entries). Duplicate keys, merge keys and non-scalar keys are errors.
func (p *parser) mapping(n *yaml.Node, path string, line int) ([]entry, bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(line, "%s: expected a mapping, got %s", path, describe(n))
		return nil, false
	}
	if !p.spend(len(n.Content)/2, line) {
		return nil, false
	}
	seen := make(map[string]int, len(n.Content)/2)
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		orig := n.Content[i]
		k := deref(orig)
		switch {
		case k == nil || k.Kind != yaml.ScalarNode:
			p.errorf(orig.Line, "%s: keys must be plain names, got %s", path, describe(k))
			continue
		case k.ShortTag() == "!!merge":
			p.errorf(orig.Line, "%s: merge keys (<<) are not supported; write the keys out", path)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(orig.Line, "%s: duplicate key %q (first on line %d)", path, k.Value, first)
			continue
		}
		seen[k.Value] = orig.Line
		out = append(out, entry{key: k.Value, line: orig.Line, col: orig.Column, val: n.Content[i+1]})
	}
	return out, true
}

// known drops entries whose key is not in allowed, reporting each with a
// suggestion. noun is what a key is called in the message ("key").
func (p *parser) known(entries []entry, where, noun string, allowed []string) []entry {
	out := entries[:0:0]
	for _, e := range entries {
		if contains(allowed, e.key) {
			out = append(out, e)
			continue
		}
		p.errs = append(p.errs, &Error{File: p.file, Line: e.line, Column: e.col, Err: unknownError(noun, e.key, where, allowed)})
	}
	return out
}

// unknownError builds `unknown NOUN "x" in WHERE; did you mean "y"? (allowed: …)`.
func unknownError(noun, word, where string, allowed []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown %s %q", noun, word)
	if where != "" {
		b.WriteString(" in " + where)
	}
	if s := options.Suggest(word, allowed); s != "" {
		fmt.Fprintf(&b, "; did you mean %q?", s)
	}
	fmt.Fprintf(&b, " (allowed: %s)", strings.Join(allowed, ", "))
	return errors.New(b.String())
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// scalar returns the env-expanded text of a non-null scalar; want describes
// the expected value for the error message.
func (p *parser) scalar(n *yaml.Node, path string, line int, want string) (string, bool) {
	r := deref(n)
	if !isScalar(r) {
		p.errorf(line, "%s: expected %s, got %s", path, want, describe(r))
		return "", false
	}
	v, err := expandEnv(r.Value, p.env)
	if err != nil {
		p.errorf(line, "%s: %w", path, err)
		return "", false
	}
	return v, true
}

// text is scalar for values that must not be blank.
func (p *parser) text(n *yaml.Node, path string, line int) (string, bool) {
	v, ok := p.scalar(n, path, line, "a string")
	if ok && strings.TrimSpace(v) == "" {
		p.errorf(line, "%s: must not be empty", path)
		return "", false
	}
	return v, ok
}

// boolean accepts a YAML boolean, or a ${VAR} reference expanding to true
// or false.
func (p *parser) boolean(e entry, path string) (bool, bool) {
	r := deref(e.val)
	if isScalar(r) {
		switch tag := r.ShortTag(); {
		case tag == "!!bool":
			return strings.EqualFold(r.Value, "true"), true
		case tag == "!!str" && strings.Contains(r.Value, "${"):
			v, err := expandEnv(r.Value, p.env)
			if err != nil {
				p.errorf(e.line, "%s: %w", path, err)
				return false, false
			}
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true":
				return true, true
			case "false":
				return false, true
			}
			p.errorf(e.line, "%s: expected true or false, got %q (from %s)", path, v, r.Value)
			return false, false
		}
	}
	p.errorf(e.line, "%s: expected true or false, got %s", path, describe(r))
	return false, false
}

// options parses an option map: any names, scalar values kept as written.
func (p *parser) options(e entry, path string) (map[string]string, map[string]int, map[string]int) {
	opts, lines, cols := map[string]string{}, map[string]int{}, map[string]int{}
	entries, _ := p.mapping(e.val, path, e.line)
	folded := map[string]string{}
	for _, o := range entries {
		opath := fmt.Sprintf("%s[%q]", path, o.key)
		if strings.TrimSpace(o.key) == "" {
			p.errorf(o.line, "%s: empty option name", path)
			continue
		}
		lk := strings.ToLower(o.key)
		if prev, dup := folded[lk]; dup {
			p.errorf(o.line, "%s: option %q repeats %q (line %d); option names ignore case", path, o.key, prev, lines[prev])
			continue
		}
		folded[lk] = o.key
		lines[o.key] = o.line
		cols[o.key] = o.col
		if v, ok := p.scalar(o.val, opath, o.line, "a string, number or boolean"); ok {
			opts[o.key] = v
		}
	}
	for k := range lines {
		if _, ok := opts[k]; !ok {
			delete(lines, k)
			delete(cols, k)
		}
	}
	return opts, lines, cols
}

// exprs parses one expression or a non-empty list of them.
func (p *parser) exprs(e entry, path string) []string {
	r := deref(e.val)
	if isScalar(r) {
		v, ok := p.text(r, path, e.line)
		if !ok {
			return nil
		}
		return []string{v}
	}
	if r == nil || r.Kind != yaml.SequenceNode {
		p.errorf(e.line, "%s: expected an expression or a list of expressions, got %s", path, describe(r))
		return nil
	}
	if len(r.Content) == 0 {
		p.errorf(e.line, "%s: expected at least one expression", path)
		return nil
	}
	if !p.spend(len(r.Content), e.line) {
		return nil
	}
	out := make([]string, 0, len(r.Content))
	for i, item := range r.Content {
		if v, ok := p.text(item, fmt.Sprintf("%s[%d]", path, i), item.Line); ok {
			out = append(out, v)
		}
	}
	return out
}

func (p *parser) pipeline(root *yaml.Node) *File {
	f := &File{
		Path:          p.file,
		Options:       map[string]string{},
		OptionLines:   map[string]int{},
		OptionColumns: map[string]int{},
		Trigger:       Trigger{Kind: TriggerDefault},
		Source:        Source{Options: map[string]string{}, OptionLines: map[string]int{}, OptionColumns: map[string]int{}},
		Sink:          Sink{Options: map[string]string{}, OptionLines: map[string]int{}, OptionColumns: map[string]int{}},
	}
	entries, ok := p.mapping(root, "pipeline", deref(root).Line)
	if !ok {
		return f
	}
	var nameLine, chkLine int
	seen := map[string]bool{}
	for _, e := range p.known(entries, "pipeline", "key", topKeys) {
		seen[e.key] = true
		switch e.key {
		case "name":
			f.Name, _ = p.text(e.val, "name", e.line)
			nameLine = e.line
		case "source":
			ep := p.endpoint(e, "source")
			f.Source = Source(ep)
		case "transform":
			f.Transform = p.transform(e)
		case "sink":
			f.Sink = p.sink(e)
		case "trigger":
			f.Trigger = p.trigger(e)
		case "options":
			f.Options, f.OptionLines, f.OptionColumns = p.options(e, "options")
		case "deadLetter":
			ep := p.endpoint(e, "deadLetter")
			f.DeadLetter = &ep
		case "checkpointLocation":
			f.CheckpointLocation, _ = p.text(e.val, "checkpointLocation", e.line)
			chkLine = e.line
			f.CheckpointLine, f.CheckpointColumn = e.line, e.col
		}
	}
	for _, k := range []string{"source", "sink"} {
		if !seen[k] {
			p.errorf(deref(root).Line, "missing required key %q in pipeline", k)
		}
	}

	// One query name: name, or sink.queryName.
	if q := f.Sink.QueryName; q != "" {
		if f.Name != "" && f.Name != q {
			p.errorf(f.Sink.Line, "sink.queryName %q differs from name %q (line %d); set only one", q, f.Name, nameLine)
		}
		if f.Name == "" {
			f.Name = q
		}
	}
	// One checkpoint location: top level, or the sink option.
	if k, ok := lookupKey(f.Sink.Options, "checkpointLocation"); ok {
		v := f.Sink.Options[k]
		if f.CheckpointLocation != "" && f.CheckpointLocation != v {
			p.errorf(chkLine, "checkpointLocation %q differs from sink.options[%q] %q (line %d); set only one",
				f.CheckpointLocation, k, v, f.Sink.OptionLines[k])
		}
		if f.CheckpointLocation == "" {
			f.CheckpointLocation = v
		}
	}
	return f
}

// endpoint parses a {format, options} mapping (source, deadLetter).
func (p *parser) endpoint(e entry, path string) Endpoint {
	ep := Endpoint{Options: map[string]string{}, OptionLines: map[string]int{}, OptionColumns: map[string]int{}, Line: e.line, Column: e.col}
	entries, ok := p.mapping(e.val, path, e.line)
	if !ok {
		return ep
	}
	hasFormat := false
	for _, f := range p.known(entries, path, "key", endpointKeys) {
		switch f.key {
		case "format":
			hasFormat = true
			ep.Format, _ = p.text(f.val, path+".format", f.line)
			ep.FormatLine, ep.FormatColumn = f.val.Line, f.val.Column
		case "options":
			ep.Options, ep.OptionLines, ep.OptionColumns = p.options(f, path+".options")
		}
	}
	if !hasFormat {
		p.errorf(e.line, "missing required key %q in %s", "format", path)
	}
	return ep
}

func (p *parser) sink(e entry) Sink {
	s := Sink{OutputMode: "append", Options: map[string]string{}, OptionLines: map[string]int{}, OptionColumns: map[string]int{}, Line: e.line, Column: e.col}
	entries, ok := p.mapping(e.val, "sink", e.line)
	if !ok {
		return s
	}
	hasFormat := false
	for _, f := range p.known(entries, "sink", "key", sinkKeys) {
		switch f.key {
		case "format":
			hasFormat = true
			s.Format, _ = p.text(f.val, "sink.format", f.line)
			s.FormatLine, s.FormatColumn = f.val.Line, f.val.Column
		case "outputMode":
			s.OutputModeLine, s.OutputModeColumn = f.val.Line, f.val.Column
			v, ok := p.text(f.val, "sink.outputMode", f.line)
			if !ok {
				continue
			}
			if lv := strings.ToLower(v); contains(sink.OutputModes(), lv) {
				s.OutputMode = lv
				continue
			}
			p.errs = append(p.errs, &Error{File: p.file, Line: f.line, Column: f.val.Column,
				Err: fmt.Errorf("sink.outputMode: [STREAMING_OUTPUT_MODE.INVALID] Invalid streaming output mode: %s. Accepted output modes are 'Append', 'Complete', 'Update'. (%w)",
					v, unknownError("output mode", v, "", sink.OutputModes()))})
		case "queryName":
			s.QueryName, _ = p.text(f.val, "sink.queryName", f.line)
		case "options":
			s.Options, s.OptionLines, s.OptionColumns = p.options(f, "sink.options")
		}
	}
	if !hasFormat {
		p.errorf(e.line, "missing required key %q in sink", "format")
	}
	return s
}

func (p *parser) trigger(e entry) Trigger {
	t := Trigger{Kind: TriggerDefault}
	entries, ok := p.mapping(e.val, "trigger", e.line)
	if !ok {
		return t
	}
	var chosen *entry
	for _, f := range p.known(entries, "trigger", "key", triggerKeys) {
		path := "trigger." + f.key
		var cand Trigger
		switch f.key {
		case TriggerProcessingTime:
			cand = Trigger{Kind: TriggerProcessingTime, Line: f.line, Column: f.col}
			if v, ok := p.text(f.val, path, f.line); ok {
				d, err := options.ParseInterval(v)
				if err == nil {
					err = trigger.IntervalError(v, d)
				}
				if err != nil {
					p.errorf(f.line, "%s: %w", path, err)
				}
				cand.Interval = d
			}
		case TriggerAvailableNow, TriggerOnce:
			on, ok := p.boolean(f, path)
			if ok && !on {
				continue // "false" means this trigger is not chosen
			}
			cand = Trigger{Kind: f.key, Line: f.line, Column: f.col}
		}
		if chosen != nil {
			p.errorf(f.line, "trigger: %s (line %d) and %s cannot both be set; choose one of %s",
				chosen.key, chosen.line, f.key, strings.Join(triggerKeys, ", "))
			continue
		}
		chosen = &f
		t = cand
	}
	return t
}

func (p *parser) transform(e entry) []Step {
	r := deref(e.val)
	if isNull(r) {
		return nil
	}
	if r.Kind != yaml.SequenceNode {
		p.errorf(e.line, "transform: expected a list of steps, got %s", describe(r))
		return nil
	}
	if !p.spend(len(r.Content), e.line) {
		return nil
	}
	var steps []Step
	for i, item := range r.Content {
		path := fmt.Sprintf("transform[%d]", i)
		it := deref(item)
		if it == nil || it.Kind != yaml.MappingNode {
			p.errorf(item.Line, "%s: expected a step such as {filter: \"expr\"}, got %s", path, describe(it))
			continue
		}
		entries, ok := p.mapping(it, path, item.Line)
		if !ok {
			continue
		}
		switch {
		case len(entries) == 0:
			p.errorf(item.Line, "%s: empty step (want one of: %s)", path, strings.Join(stepKinds, ", "))
			continue
		case len(entries) == 2 && isAggPair(entries[0].key, entries[1].key):
			if s, ok := p.aggregate(entries, path); ok {
				steps = append(steps, s)
			}
			continue
		case len(entries) > 1:
			hint := `; start each step with its own "- "`
			if contains(subKeys[entries[0].key], entries[1].key) {
				hint = fmt.Sprintf("; indent %q under %q", entries[1].key, entries[0].key)
			}
			p.errorf(entries[1].line, "%s: a step has one kind, found %q and %q%s", path, entries[0].key, entries[1].key, hint)
			continue
		}
		s, ok := p.step(entries[0], path)
		if ok {
			steps = append(steps, s)
		}
	}
	return steps
}

// isAggPair reports whether two keys of one step are groupBy and agg.
func isAggPair(a, b string) bool {
	return (a == "groupBy" && b == "agg") || (a == "agg" && b == "groupBy")
}

// aggregate parses a step with groupBy and agg (in either order).
func (p *parser) aggregate(entries []entry, stepPath string) (Step, bool) {
	s := Step{Op: plan.Op{Kind: plan.Aggregate}, Line: entries[0].line, Column: entries[0].col}
	ok := true
	for _, e := range entries {
		path := stepPath + "." + e.key
		if e.key == "groupBy" {
			r := deref(e.val)
			if r != nil && r.Kind == yaml.SequenceNode && len(r.Content) == 0 {
				s.GroupBy = []string{} // groupBy: [] is a global aggregation
				continue
			}
			s.GroupBy = p.exprs(e, path)
			ok = ok && s.GroupBy != nil
		} else {
			s.Aggs = p.exprs(e, path)
			ok = ok && s.Aggs != nil
		}
	}
	return s, ok
}

// columns parses a list of column names; empty is allowed.
func (p *parser) columns(n *yaml.Node, path string, line int) ([]string, bool) {
	r := deref(n)
	if isNull(r) {
		return []string{}, true
	}
	if isScalar(r) {
		v, ok := p.text(r, path, line)
		return []string{v}, ok
	}
	if r.Kind != yaml.SequenceNode {
		p.errorf(line, "%s: expected a list of column names, got %s", path, describe(r))
		return nil, false
	}
	if !p.spend(len(r.Content), line) {
		return nil, false
	}
	out := []string{}
	ok := true
	for i, item := range r.Content {
		v, vok := p.text(item, fmt.Sprintf("%s[%d]", path, i), item.Line)
		ok = ok && vok
		out = append(out, v)
	}
	return out, ok
}

func (p *parser) step(e entry, stepPath string) (Step, bool) {
	s := Step{Line: e.line, Column: e.col}
	path := stepPath + "." + e.key
	switch e.key {
	case "selectExpr", "select":
		s.Kind = plan.SelectExpr
		if e.key == "select" {
			s.Kind = plan.Select
		}
		s.Exprs = p.exprs(e, path)
		return s, s.Exprs != nil
	case "filter", "where":
		s.Kind = plan.Filter
		v, ok := p.text(e.val, path, e.line)
		s.Expr = v
		return s, ok
	case "agg":
		s.Kind = plan.Aggregate
		s.GroupBy = []string{}
		s.Aggs = p.exprs(e, path)
		return s, s.Aggs != nil
	case "groupBy":
		p.errorf(e.line, "%s: groupBy needs agg in the same step, e.g. {groupBy: [device], agg: [\"count(*) AS n\"]}", path)
		return s, false
	case "withWatermark":
		s.Kind = plan.WithWatermark
		entries, ok := p.mapping(e.val, path, e.line)
		if !ok {
			return s, false
		}
		var hasTime, hasDelay bool
		for _, f := range p.known(entries, path, "key", watermarkKeys) {
			switch f.key {
			case "eventTime":
				hasTime = true
				s.EventTime, _ = p.text(f.val, path+".eventTime", f.line)
			case "delay":
				hasDelay = true
				s.Delay, _ = p.text(f.val, path+".delay", f.line)
			}
		}
		for _, k := range []struct {
			key  string
			have bool
		}{{"eventTime", hasTime}, {"delay", hasDelay}} {
			if !k.have {
				p.errorf(e.line, "missing required key %q in %s", k.key, path)
			}
		}
		return s, s.EventTime != "" && s.Delay != ""
	case "dropDuplicates":
		s.Kind = plan.Deduplicate
		r := deref(e.val)
		if r != nil && r.Kind == yaml.MappingNode {
			entries, ok := p.mapping(r, path, e.line)
			if !ok {
				return s, false
			}
			s.Columns = []string{}
			for _, f := range p.known(entries, path, "key", dedupKeys) {
				switch f.key {
				case "columns":
					cols, ok := p.columns(f.val, path+".columns", f.line)
					if !ok {
						return s, false
					}
					s.Columns = cols
				case "withinWatermark":
					v, ok := p.boolean(f, path+".withinWatermark")
					if !ok {
						return s, false
					}
					s.WithinWatermark = v
				}
			}
			return s, true
		}
		cols, ok := p.columns(e.val, path, e.line)
		s.Columns = cols
		return s, ok
	case "withColumn":
		s.Kind = plan.WithColumn
		entries, ok := p.mapping(e.val, path, e.line)
		if !ok {
			return s, false
		}
		var hasName, hasExpr bool
		for _, f := range p.known(entries, path, "key", withColumnKeys) {
			switch f.key {
			case "name":
				hasName = true
				s.Name, _ = p.text(f.val, path+".name", f.line)
			case "expr":
				hasExpr = true
				s.Expr, _ = p.text(f.val, path+".expr", f.line)
			}
		}
		for _, k := range []struct {
			key  string
			have bool
		}{{"name", hasName}, {"expr", hasExpr}} {
			if !k.have {
				p.errorf(e.line, "missing required key %q in %s", k.key, path)
			}
		}
		return s, s.Name != "" && s.Expr != ""
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: e.line, Column: e.col, Err: unknownError("transform step", e.key, stepPath, stepKinds)})
	return s, false
}
