package options

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var testSpec = &Spec{
	What: "test source",
	Fields: []Field{
		{Name: "path", Type: Path, Required: true, Doc: "where"},
		{Name: "maxFiles", Type: Int, Min: 1, Doc: "cap"},
		{Name: "latestFirst", Type: Bool, Default: "false", Doc: "order"},
		{Name: "mode", Type: Enum, Default: "PERMISSIVE", Allowed: []string{"PERMISSIVE", "FAILFAST"}, Doc: "mode"},
		{Name: "maxAge", Type: Duration, Default: "7d", Doc: "age"},
		{Name: "budget", Type: Size, Default: "1MiB", Doc: "bytes"},
		{Name: "lag", Type: Double, Hint: "allowed: a non-negative number of seconds", Doc: "lag"},
		{Name: "port", Type: Int, Min: 1, Hint: "allowed: a TCP port between 1 and 65535", Doc: "port"},
		{Name: "kafka.auto.offset.reset", Unsupported: `use the option "startingOffsets" instead`, Doc: "no"},
	},
	Prefixes: []Prefix{{Prefix: "kafka.", Doc: "client settings"}},
}

var querySpec = &Spec{What: "query", Fields: []Field{{Name: "checkpointLocation", Type: Path, Doc: "chk"}}}

func TestSpecProblems(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]string
		want []string // error texts in order
	}{
		{"clean", map[string]string{"path": "/x", "MAXFILES": "3", "kafka.client.id": "me", "checkpointLocation": "/c"}, nil},
		{"unknown with suggestion", map[string]string{"maxFile": "1"},
			[]string{`unknown test source option "maxFile"; did you mean "maxFiles"? (known options: budget, checkpointLocation, lag, latestFirst, maxAge, maxFiles, mode, path, port)`}},
		{"unsupported", map[string]string{"kafka.auto.offset.reset": "earliest"},
			[]string{`option "kafka.auto.offset.reset": not supported: use the option "startingOffsets" instead`}},
		{"typed values in name order, unknown first", map[string]string{
			"maxFiles": "0", "latestFirst": "maybe", "mode": "lax", "maxAge": "soon", "budget": "lots", "zzz": "1"},
			[]string{
				`unknown test source option "zzz"`,
				`option "budget": invalid value "lots"; allowed: a size such as "256MiB", "512m", "1GB" or a number of bytes`,
				`option "latestFirst": invalid value "maybe"; allowed: true, false`,
				`option "maxAge": invalid value "soon"; allowed: a duration such as "15m", "30 seconds" or milliseconds`,
				`option "maxFiles": invalid value "0"; allowed: an integer ≥ 1`,
				`option "mode": invalid value "lax"; allowed: PERMISSIVE, FAILFAST`,
			}},
		{"hints", map[string]string{"lag": "-1", "port": "x"}, []string{
			`option "lag": invalid value "-1"; allowed: a non-negative number of seconds`,
			`option "port": invalid value "x"; allowed: a TCP port between 1 and 65535`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probs := testSpec.Problems(tc.opts, querySpec)
			if len(probs) != len(tc.want) {
				t.Fatalf("problems = %v, want %d", probs, len(tc.want))
			}
			for i, p := range probs {
				if !strings.HasPrefix(p.Error(), tc.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, p, tc.want[i])
				}
				if OptionOf(p) == "" {
					t.Errorf("problem %q names no option", p)
				}
			}
		})
	}
}

func TestSpecRead(t *testing.T) {
	v, err := testSpec.Read(map[string]string{"Path": "/in", "mode": "failfast", "maxFiles": " 4"}, querySpec)
	if err != nil {
		t.Fatal(err)
	}
	if v.String("path") != "/in" || v.Int64("maxFiles") != 4 || v.Enum("mode") != "FAILFAST" || v.Bool("latestFirst") {
		t.Errorf("values: path %q maxFiles %d mode %q latestFirst %v", v.String("path"), v.Int64("maxFiles"), v.Enum("mode"), v.Bool("latestFirst"))
	}
	if v.Duration("maxAge") != 7*24*time.Hour || v.Size("budget") != 1<<20 || v.Has("lag") || v.Float64("lag") != 0 {
		t.Errorf("defaults: maxAge %v budget %d lag %v", v.Duration("maxAge"), v.Size("budget"), v.Float64("lag"))
	}
	if _, ok := v.Get("checkpointLocation"); ok {
		t.Error("checkpointLocation reported set")
	}
	if _, err := testSpec.Read(map[string]string{"maxFiles": "x"}); OptionOf(err) != "maxFiles" {
		t.Errorf("Read error = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("reading an undescribed option did not panic")
		}
	}()
	v.String("nope")
}

func TestSpecValidate(t *testing.T) {
	if err := testSpec.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []*Spec{
		{What: "dup", Fields: []Field{{Name: "a", Doc: "x"}, {Name: "A", Doc: "y"}}},
		{What: "undocumented", Fields: []Field{{Name: "a"}}},
		{What: "enum", Fields: []Field{{Name: "a", Type: Enum, Doc: "x"}}},
		{What: "default", Fields: []Field{{Name: "a", Type: Int, Min: 1, Default: "0", Doc: "x"}}},
		{What: "prefix", Prefixes: []Prefix{{Prefix: "kafka."}}},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate accepted a bad spec", s.What)
		}
	}
}

func TestOnlyWithout(t *testing.T) {
	m := map[string]string{"checkpointLocation": "/c", "path": "/p", "kafka.x": "1"}
	if got := Only(m, querySpec); len(got) != 1 || got["checkpointLocation"] != "/c" {
		t.Errorf("Only = %v", got)
	}
	if got := Without(m, querySpec); len(got) != 2 || got["path"] != "/p" || got["kafka.x"] != "1" {
		t.Errorf("Without = %v", got)
	}
}

func TestSuggestAll(t *testing.T) {
	fns := []string{"hour", "year", "upper", "ucase", "day"}
	for _, tc := range []struct {
		word string
		want []string
	}{
		{"uper", []string{"upper"}},
		{"hoar", []string{"hour"}},
		{"yeer", []string{"year"}},
		{"our", []string{"hour"}},
		{"frobnicate", nil},
		{"UPPER", []string{"upper"}},
	} {
		if got := SuggestAll(tc.word, fns); !slices.Equal(got, tc.want) {
			t.Errorf("SuggestAll(%q) = %v, want %v", tc.word, got, tc.want)
		}
	}
	// Several at the same distance come in candidate order.
	if got := SuggestAll("dat", []string{"day", "date", "data"}); !slices.Equal(got, []string{"day", "date", "data"}) {
		t.Errorf("SuggestAll(dat) = %v", got)
	}
}

func TestCheckKnownIsUnknownError(t *testing.T) {
	err := New(map[string]string{"hots": "x"}).CheckKnown("socket source", []string{"host", "port"})
	var ue *UnknownError
	if !errors.As(err, &ue) || ue.Suggestion != "host" {
		t.Fatalf("err = %v", err)
	}
}

func TestPrefixKnownNames(t *testing.T) {
	spec := &Spec{What: "x source", Fields: []Field{{Name: "client.password", Type: String, Doc: "d"}},
		Prefixes: []Prefix{{Prefix: "client.", Doc: "pass-through", Known: []string{"max.poll.records", "linger.ms"}, KnownDoc: "client settings"}}}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	probs := spec.Problems(map[string]string{"client.pasword": "x", "Client.Linger.MS": "5", "client.max.poll.records": "1", "other": "1"})
	if len(probs) != 2 {
		t.Fatalf("problems %v, want the misspelling and the unknown name", probs)
	}
	var ue *UnknownError
	if !errors.As(probs[0], &ue) || ue.Option != "client.pasword" || ue.Suggestion != "client.password" || !strings.Contains(ue.Error(), `other "client." options must be client settings`) {
		t.Errorf("problem 0 = %v", probs[0])
	}
	if !errors.As(probs[1], &ue) || ue.Option != "other" || ue.Family != "" {
		t.Errorf("problem 1 = %v", probs[1])
	}
	if got := spec.PassedThrough([]string{"client.password", "Client.Linger.MS", "client.max.poll.records", "client.nope", "other"}); !slices.Equal(got, []string{"Client.Linger.MS", "client.max.poll.records"}) {
		t.Errorf("PassedThrough = %v", got)
	}
	// Without Known every name under the prefix passes, as before.
	open := &Spec{What: "y", Prefixes: []Prefix{{Prefix: "client.", Doc: "d"}}}
	if p := open.Problems(map[string]string{"client.anything": "1"}); len(p) != 0 {
		t.Errorf("open prefix: %v", p)
	}
	if got := open.PassedThrough([]string{"client.anything"}); len(got) != 0 {
		t.Errorf("open prefix PassedThrough = %v", got)
	}
	bad := &Spec{What: "z", Prefixes: []Prefix{{Prefix: "c.", Doc: "d", Known: []string{"a"}}}}
	if err := bad.Validate(); err == nil {
		t.Error("a prefix with known names and no KnownDoc validated")
	}
}
