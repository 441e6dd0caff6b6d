// Package options reads Spark-style string options: names are matched
// case-insensitively (as Spark's CaseInsensitiveMap does) and every
// conversion error names the option, the value given and what is allowed.
//
// A Spec is the typed description of a set of options (name, type,
// default, allowed values, description, whether secret, pass-through
// prefixes). Every source, sink and the query itself describe their options
// as a Spec; Spec.Read checks a map against it once and returns Values whose
// accessors take defaults from the spec, and the reference documentation is
// generated from the same specs.
package options

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options is a case-insensitive view of a string map.
type Options struct {
	vals  map[string]string // lower-cased name → value
	names map[string]string // lower-cased name → name as written
}

// New wraps m. Later duplicates differing only in case win arbitrarily; the
// pipeline parser rejects those before they get here.
func New(m map[string]string) Options {
	o := Options{vals: make(map[string]string, len(m)), names: make(map[string]string, len(m))}
	for k, v := range m {
		lk := strings.ToLower(k)
		o.vals[lk] = v
		o.names[lk] = k
	}
	return o
}

// Get returns the value of name and whether it was set.
func (o Options) Get(name string) (string, bool) {
	v, ok := o.vals[strings.ToLower(name)]
	return v, ok
}

// Has reports whether name was set.
func (o Options) Has(name string) bool { _, ok := o.Get(name); return ok }

// String returns the value of name or def.
func (o Options) String(name, def string) string {
	if v, ok := o.Get(name); ok {
		return v
	}
	return def
}

// Error is an option error: which option, what was given, what is allowed.
type Error struct {
	Option  string
	Value   string
	Allowed string
	// Spark, when set, is Spark's own message for this mistake (with its
	// error condition, "[NAME] …", when Spark has one); the error leads
	// with it, then gives sluice's explanation.
	Spark string
}

func (e *Error) Error() string {
	detail := e.Allowed
	if e.Value != "" {
		detail = fmt.Sprintf("invalid value %q; %s", e.Value, e.Allowed)
	}
	if e.Spark != "" {
		return fmt.Sprintf("option %q: %s (%s)", e.Option, e.Spark, detail)
	}
	return fmt.Sprintf("option %q: %s", e.Option, detail)
}

// Int64 parses name as an integer ≥ min, or returns def when unset.
func (o Options) Int64(name string, def, min int64) (int64, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < min {
		return 0, &Error{Option: name, Value: v, Allowed: fmt.Sprintf("allowed: an integer ≥ %d", min)}
	}
	return n, nil
}

// Bool parses name as true/false (case-insensitive), or returns def.
func (o Options) Bool(name string, def bool) (bool, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &Error{Option: name, Value: v, Allowed: "allowed: true, false"}
}

// Enum returns the value of name if it is one of allowed (compared
// case-insensitively; the canonical spelling from allowed is returned), or def.
func (o Options) Enum(name, def string, allowed ...string) (string, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSpace(v), a) {
			return a, nil
		}
	}
	return "", &Error{Option: name, Value: v, Allowed: "allowed: " + strings.Join(allowed, ", ")}
}

// Duration parses name with ParseInterval, or returns def.
func (o Options) Duration(name string, def time.Duration) (time.Duration, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	d, err := ParseInterval(v)
	if err != nil {
		return 0, &Error{Option: name, Value: v, Allowed: "allowed: a duration such as \"15m\", \"30 seconds\" or milliseconds"}
	}
	return d, nil
}

// CheckKnown returns an *UnknownError for the first option (in sorted
// order) that is neither in known nor starts with one of prefixes,
// suggesting the closest known name.
func (o Options) CheckKnown(what string, known []string, prefixes ...string) error {
	spec := &Spec{What: what}
	for _, k := range known {
		spec.Fields = append(spec.Fields, Field{Name: k})
	}
	for _, p := range prefixes {
		spec.Prefixes = append(spec.Prefixes, Prefix{Prefix: p})
	}
	m := make(map[string]string, len(o.vals))
	for lk, v := range o.vals {
		m[o.names[lk]] = v
	}
	for _, err := range spec.Problems(m) {
		return err
	}
	return nil
}

// Names returns the option names as written, sorted.
func (o Options) Names() []string {
	out := make([]string, 0, len(o.names))
	for _, n := range o.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Bytes parses name as a size: a plain number of bytes or a number with a
// unit — k/m/g/t and KiB/MiB/GiB/TiB are powers of 1024 (as in Spark's
// "512m"), KB/MB/GB/TB powers of 1000. def is returned when unset.
func (o Options) Bytes(name string, def int64) (int64, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	n, err := ParseBytes(v)
	if err != nil || n < 0 {
		return 0, &Error{Option: name, Value: v, Allowed: `allowed: a size such as "256MiB", "512m", "1GB" or a number of bytes`}
	}
	return n, nil
}

// FormatSize renders a byte count the way sizes are written in options
// ("128MiB", "23.5GiB", "512KiB", "100B"), one decimal at most;
// ParseBytes reads it back (to that precision).
func FormatSize(b int64) string {
	units := []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if b >= u.size {
			return strconv.FormatFloat(math.Round(float64(b)/float64(u.size)*10)/10, 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(b, 10) + "B"
}

// ParseBytes parses a size (see Options.Bytes).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(t[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, t[i:])
	}
	return int64(num * mult), nil
}
