package options

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Type is the kind of value an option takes. Values of the checked types
// (Int, Bool, Enum, Duration, Size, Double) are validated by Spec.Read
// before the owning package sees them; the other types describe the value
// for documentation and are checked by the package that interprets it
// (a JSON offsets map, a DDL schema, a path).
type Type int

// Option types.
const (
	String   Type = iota // free text
	Int                  // a whole number ≥ Field.Min
	Bool                 // true or false
	Enum                 // one of Field.Allowed, compared case-insensitively
	Duration             // an interval: "30 seconds", "15m" or milliseconds
	Size                 // a size: "256MiB", "512m", "1GB" or bytes
	Double               // a decimal number ≥ Field.Min
	JSON                 // a JSON document
	List                 // a comma-separated list
	Path                 // a local path, directory or glob
	DDL                  // a schema in SQL DDL, "id INT, name STRING"
	Regex                // a regular expression
)

var typeNames = [...]string{"string", "int", "bool", "enum", "duration", "size", "double", "json", "list", "path", "ddl", "regex"}

// String names the type as the reference documentation shows it.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Field describes one option: its name, the value it takes, its default
// and what it does. Names are matched case-insensitively, as Spark matches
// option names.
type Field struct {
	Name string
	Type Type
	// Default is the value in effect when the option is not set, written
	// as a user would write it ("" = none). The typed accessors of Values
	// return it.
	Default string
	// DefaultDoc describes a default that is not a plain value, e.g. "the
	// number of CPUs"; it is shown instead of Default.
	DefaultDoc string
	// Allowed are the values of an Enum (checked); for a Size, words
	// accepted besides sizes (Values.Size reads them as 0); for other
	// types they document the accepted values.
	Allowed []string
	// Min is the smallest value of an Int or Double.
	Min int64
	// Required options must be set; the owning package checks this with
	// its own message.
	Required bool
	// Secret values (passwords, keys) are never shown.
	Secret bool
	// Unsupported, when set, rejects the option with this reason (Spark
	// options that cannot work here, e.g. kafka.enable.auto.commit).
	Unsupported string
	// Hint replaces the "allowed: …" text of the error for a bad value.
	Hint string
	// Spark is Spark's own message (with its error condition when it has
	// one) for a bad value of this option or, with Unsupported, for using
	// it at all; "<value>" stands for the value. The error leads with it
	// and keeps sluice's explanation after it.
	Spark string
	// Doc says what the option does, in one or two sentences.
	Doc string
}

// Prefix is a family of options passed through to another system (the
// Kafka client's "kafka.*" settings) rather than described one by one.
type Prefix struct {
	Prefix string
	Doc    string
	// Secret: the values of options with this prefix may be secrets
	// (storage account keys, SAS tokens) and are never shown.
	Secret bool
	// Known, when set, are the names the other system defines (without
	// the prefix). A name under the prefix that is neither a Field nor
	// Known is then an unknown option, with the closest name suggested; a
	// Known one is accepted (PassedThrough lists those an owner does not
	// describe, to warn about). Without Known every name is accepted.
	Known []string
	// KnownDoc says what the Known names are, for messages ("Kafka client
	// settings").
	KnownDoc string
}

// knows reports whether the family defines name (with the prefix).
func (p Prefix) knows(name string) bool {
	if p.Known == nil {
		return true
	}
	rest := name[len(p.Prefix):]
	return slices.ContainsFunc(p.Known, func(k string) bool { return strings.EqualFold(k, rest) })
}

// names returns the Known names with the prefix.
func (p Prefix) names() []string {
	out := make([]string, len(p.Known))
	for i, k := range p.Known {
		out[i] = p.Prefix + k
	}
	return out
}

// Spec is the typed description of a set of options — a source's, a
// sink's, or the query's own: which names exist, what each takes, its
// default and meaning. A package describes its options once, as a Spec;
// Read checks a map against it (unknown names, unsupported options, typed
// values) and the reference documentation is generated from it.
type Spec struct {
	// What names the owner in messages: `unknown kafka source option "x"`.
	What     string
	Fields   []Field
	Prefixes []Prefix
}

// Field returns the field called name (ignoring case).
func (s *Spec) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return Field{}, false
}

// Names returns the option names in declaration order, without the
// unsupported ones.
func (s *Spec) Names() []string {
	out := make([]string, 0, len(s.Fields))
	for _, f := range s.Fields {
		if f.Unsupported == "" {
			out = append(out, f.Name)
		}
	}
	return out
}

// hasPrefix reports whether name belongs to one of the pass-through
// families.
func (s *Spec) hasPrefix(name string) bool {
	_, ok := s.prefixOf(name)
	return ok
}

// prefixOf returns the pass-through family of name.
func (s *Spec) prefixOf(name string) (Prefix, bool) {
	for _, p := range s.Prefixes {
		if len(name) >= len(p.Prefix) && strings.EqualFold(name[:len(p.Prefix)], p.Prefix) {
			return p, true
		}
	}
	return Prefix{}, false
}

// PassedThrough returns the names given (sorted) that belong to a
// pass-through family with Known names and that the spec does not
// describe: settings of the other system that the owner accepts but does
// not use, for a warning.
func (s *Spec) PassedThrough(names []string) []string {
	var out []string
	for _, name := range names {
		if _, ok := s.Field(name); ok {
			continue
		}
		if p, ok := s.prefixOf(name); ok && p.Known != nil && p.knows(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// UnknownError is an option name no spec knows.
type UnknownError struct {
	// What is the owner, as in Spec.What.
	What string
	// Option is the name as written.
	Option string
	// Suggestion is the closest known name, or "".
	Suggestion string
	// Known are the names that would have been accepted.
	Known []string
	// Family, for a name under a pass-through prefix with known names,
	// says what the names there must be (`"kafka." options other than
	// these must be Kafka client settings`).
	Family string
}

func (e *UnknownError) Error() string {
	msg := fmt.Sprintf("unknown %s option %q", e.What, e.Option)
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", e.Suggestion)
	}
	sorted := slices.Clone(e.Known)
	slices.Sort(sorted)
	msg = fmt.Sprintf("%s (known options: %s", msg, strings.Join(sorted, ", "))
	if e.Family != "" {
		msg += "; " + e.Family
	}
	return msg + ")"
}

// OptionOf returns the option an error is about (an *Error or an
// *UnknownError anywhere in its chain), or "".
func OptionOf(err error) string {
	var oe *Error
	if errors.As(err, &oe) {
		return oe.Option
	}
	var ue *UnknownError
	if errors.As(err, &ue) {
		return ue.Option
	}
	return ""
}

// Problems checks m against the spec and returns every problem, each an
// *UnknownError or an *Error naming its option: unknown names first (with
// the closest known name), then unsupported options, then values that do
// not fit their type, each group in name order. Names of the specs in also
// are accepted and checked as well (a sink's options may hold the query's
// checkpointLocation).
func (s *Spec) Problems(m map[string]string, also ...*Spec) []error {
	specs := append([]*Spec{s}, also...)
	var known []string
	for _, sp := range specs {
		known = append(known, sp.Names()...)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	type found struct {
		name string
		f    Field
	}
	var unknown, unsupported, values []error
	var fields []found
	for _, name := range names {
		f, ok := lookup(specs, name)
		switch {
		case ok && f.Unsupported != "":
			v, _ := New(m).Get(name)
			unsupported = append(unsupported, &Error{Option: name, Allowed: "not supported: " + f.Unsupported, Spark: sparkText(f.Spark, v)})
		case ok:
			fields = append(fields, found{name, f})
		default:
			p, ok := prefixOf(specs, name)
			switch {
			case !ok:
				unknown = append(unknown, &UnknownError{What: s.What, Option: name, Suggestion: Suggest(name, known), Known: known})
			case !p.knows(name):
				unknown = append(unknown, &UnknownError{What: s.What, Option: name, Suggestion: Suggest(name, slices.Concat(known, p.names())), Known: known,
					Family: fmt.Sprintf("other %q options must be %s", p.Prefix, p.KnownDoc)})
			}
		}
	}
	o := New(m)
	for _, x := range fields {
		if err := checkValue(o, x.f); err != nil {
			values = append(values, err)
		}
	}
	return slices.Concat(unknown, unsupported, values)
}

func lookup(specs []*Spec, name string) (Field, bool) {
	for _, sp := range specs {
		if f, ok := sp.Field(name); ok {
			return f, true
		}
	}
	return Field{}, false
}

func prefixOf(specs []*Spec, name string) (Prefix, bool) {
	for _, sp := range specs {
		if p, ok := sp.prefixOf(name); ok {
			return p, true
		}
	}
	return Prefix{}, false
}

// checkValue checks the value of a set option of a checked type, with the
// same messages as the Options accessors.
func checkValue(o Options, f Field) error {
	var err error
	switch f.Type {
	case Int:
		_, err = o.Int64(f.Name, 0, f.Min)
	case Bool:
		_, err = o.Bool(f.Name, false)
	case Enum:
		_, err = o.Enum(f.Name, "", f.Allowed...)
	case Duration:
		_, err = o.Duration(f.Name, 0)
	case Size:
		// A size, or one of the words Allowed lists (e.g. "unlimited").
		if v, _ := o.Get(f.Name); !slices.ContainsFunc(f.Allowed, func(a string) bool { return strings.EqualFold(a, strings.TrimSpace(v)) }) {
			_, err = o.Bytes(f.Name, 0)
		}
	case Double:
		v, _ := o.Get(f.Name)
		x, perr := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if perr != nil || x < float64(f.Min) {
			err = &Error{Option: f.Name, Value: v, Allowed: fmt.Sprintf("allowed: a number ≥ %d", f.Min)}
		}
	}
	var oe *Error
	if err != nil && f.Hint != "" && errors.As(err, &oe) {
		oe.Allowed = f.Hint
	}
	if err != nil && f.Spark != "" && errors.As(err, &oe) {
		oe.Spark = sparkText(f.Spark, oe.Value)
	}
	return err
}

// sparkText fills Spark's message template with the value.
func sparkText(template, value string) string {
	return strings.ReplaceAll(template, "<value>", value)
}

// Read checks m against the spec (see Problems) and returns its values,
// or the first problem.
func (s *Spec) Read(m map[string]string, also ...*Spec) (Values, error) {
	if p := s.Problems(m, also...); len(p) > 0 {
		return Values{}, p[0]
	}
	return s.Values(m, also...), nil
}

// Values returns m's values without checking them, for callers that have
// run Problems themselves.
func (s *Spec) Values(m map[string]string, also ...*Spec) Values {
	return Values{o: New(m), specs: append([]*Spec{s}, also...)}
}

// Values are option values checked against a Spec. The typed accessors
// return the value set, or the field's Default when it is not set; they
// never fail, because Read has checked the values. Asking for a name the
// spec does not describe is a programming error and panics, so every
// option a package reads is documented.
type Values struct {
	o     Options
	specs []*Spec
}

func (v Values) field(name string) Field {
	f, ok := lookup(v.specs, name)
	if !ok {
		what := "(no spec)"
		if len(v.specs) > 0 {
			what = v.specs[0].What
		}
		panic(fmt.Sprintf("options: %q is not described by the %s spec", name, what))
	}
	return f
}

// Options returns the raw, case-insensitive view (for parsers of their
// own, such as the Kafka security settings).
func (v Values) Options() Options { return v.o }

// Get returns the value of name as written and whether it is set.
func (v Values) Get(name string) (string, bool) {
	v.field(name)
	return v.o.Get(name)
}

// Has reports whether name is set.
func (v Values) Has(name string) bool { _, ok := v.Get(name); return ok }

// String returns the value of name, or its default.
func (v Values) String(name string) string {
	return v.o.String(name, v.field(name).Default)
}

// Int64 returns the Int option name, or its default (0 when it has none).
func (v Values) Int64(name string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v.String(name)), 10, 64)
	return n
}

// Bool returns the Bool option name, or its default (false when none).
func (v Values) Bool(name string) bool {
	return strings.EqualFold(strings.TrimSpace(v.String(name)), "true")
}

// Enum returns the Enum option name in its canonical spelling (as in
// Field.Allowed), or its default.
func (v Values) Enum(name string) string {
	f := v.field(name)
	s := strings.TrimSpace(v.String(name))
	for _, a := range f.Allowed {
		if strings.EqualFold(s, a) {
			return a
		}
	}
	return s
}

// Duration returns the Duration option name, or its default (0 when none).
func (v Values) Duration(name string) time.Duration {
	s := v.String(name)
	if s == "" {
		return 0
	}
	d, _ := ParseInterval(s)
	return d
}

// Size returns the Size option name in bytes, or its default.
func (v Values) Size(name string) int64 {
	s := v.String(name)
	if s == "" {
		return 0
	}
	n, _ := ParseBytes(s)
	return n
}

// Float64 returns the Double option name, or its default.
func (v Values) Float64(name string) float64 {
	x, _ := strconv.ParseFloat(strings.TrimSpace(v.String(name)), 64)
	return x
}

// Only returns the subset of m described by spec (its fields and
// prefixes), for handing a spec's options to their owner.
func Only(m map[string]string, spec *Spec) map[string]string {
	out := map[string]string{}
	for k, val := range m {
		if _, ok := spec.Field(k); ok || spec.hasPrefix(k) {
			out[k] = val
		}
	}
	return out
}

// Without returns m without the options spec describes.
func Without(m map[string]string, spec *Spec) map[string]string {
	out := map[string]string{}
	for k, val := range m {
		if _, ok := spec.Field(k); !ok && !spec.hasPrefix(k) {
			out[k] = val
		}
	}
	return out
}

// DefaultText is the default as the reference shows it: DefaultDoc, else
// Default, else "".
func (f Field) DefaultText() string {
	if f.DefaultDoc != "" {
		return f.DefaultDoc
	}
	return f.Default
}

// Validate checks the spec itself: unique names, a description for each,
// defaults that pass their own type check, enums with values. The
// registry's tests call it for every spec.
func (s *Spec) Validate() error {
	seen := map[string]bool{}
	for _, f := range s.Fields {
		ln := strings.ToLower(f.Name)
		if f.Name == "" || seen[ln] {
			return fmt.Errorf("%s spec: empty or repeated option name %q", s.What, f.Name)
		}
		seen[ln] = true
		if f.Doc == "" {
			return fmt.Errorf("%s spec: option %q has no description", s.What, f.Name)
		}
		if f.Type == Enum && len(f.Allowed) == 0 {
			return fmt.Errorf("%s spec: enum option %q lists no values", s.What, f.Name)
		}
		if f.Default != "" {
			if err := checkValue(New(map[string]string{f.Name: f.Default}), f); err != nil {
				return fmt.Errorf("%s spec: default of %q: %w", s.What, f.Name, err)
			}
		}
	}
	for _, p := range s.Prefixes {
		if p.Prefix == "" || p.Doc == "" {
			return fmt.Errorf("%s spec: a pass-through prefix needs a name and a description", s.What)
		}
		if p.Known != nil && p.KnownDoc == "" {
			return fmt.Errorf("%s spec: prefix %q lists known names without saying what they are (KnownDoc)", s.What, p.Prefix)
		}
	}
	return nil
}

// IsSecret reports whether the value of the option name is a secret by
// this spec: a Field marked Secret, or a name under a Secret prefix.
func (s *Spec) IsSecret(name string) bool {
	if f, ok := s.Field(name); ok {
		return f.Secret
	}
	p, ok := s.prefixOf(name)
	return ok && p.Secret
}
