package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// dashboardPath is the Grafana dashboard shipped in the repository.
var dashboardPath = filepath.Join("..", "..", "dashboards", "sluice-grafana.json")

// promqlKeywords are identifiers that are not metric names when not
// followed by "(".
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "atan2": true,
	"inf": true, "nan": true,
}

// aggregations may be followed by a by/without clause before their
// parenthesised argument.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// labelListKeywords are followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// metricNames returns the metric names a PromQL expression selects: the
// identifiers outside label matchers, ranges and label lists that are not
// functions, aggregations or keywords. Grafana variables ($x, ${x}) are
// skipped.
func metricNames(expr string) ([]string, error) {
	var names []string
	i, n := 0, len(expr)
	skipString := func() error {
		q := expr[i]
		for i++; i < n; i++ {
			if expr[i] == '\\' && q != '`' {
				i++
				continue
			}
			if expr[i] == q {
				i++
				return nil
			}
		}
		return fmt.Errorf("unterminated string in %q", expr)
	}
	skipTo := func(open, close byte) error {
		depth := 0
		for i < n {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				if err := skipString(); err != nil {
					return err
				}
				continue
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					i++
					return nil
				}
			}
			i++
		}
		return fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	nextNonSpace := func(j int) byte {
		for j < n && (expr[j] == ' ' || expr[j] == '\t' || expr[j] == '\n') {
			j++
		}
		if j < n {
			return expr[j]
		}
		return 0
	}
	for i < n {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := skipString(); err != nil {
				return nil, err
			}
		case c == '{':
			if err := skipTo('{', '}'); err != nil {
				return nil, err
			}
		case c == '[':
			if err := skipTo('[', ']'); err != nil {
				return nil, err
			}
		case c == '$':
			i++
			if i < n && expr[i] == '{' {
				if err := skipTo('{', '}'); err != nil {
					return nil, err
				}
				continue
			}
			for i < n && isIdentChar(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			// Numbers and durations (5m, 1h30m, 1e3).
			for i < n && (isIdentChar(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < n && isIdentChar(expr[i]) {
				i++
			}
			word := expr[start:i]
			lower := strings.ToLower(word)
			next := nextNonSpace(i)
			if aggregations[lower] && next != '(' {
				j := i
				for j < n && (expr[j] == ' ' || expr[j] == '\t' || expr[j] == '\n') {
					j++
				}
				k := j
				for k < n && isIdentChar(expr[k]) {
					k++
				}
				if w := strings.ToLower(expr[j:k]); w == "by" || w == "without" {
					continue // the clause and the argument follow
				}
			}
			switch {
			case labelListKeywords[lower] && next == '(':
				for expr[i] != '(' {
					i++
				}
				if err := skipTo('(', ')'); err != nil {
					return nil, err
				}
			case next == '(' && !promqlKeywords[lower]:
				// a function or aggregation
			case promqlKeywords[lower]:
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	return names, nil
}

var labelValuesRE = regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`)

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets and query variables.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			out["panel "+p.Title] = append(out["panel "+p.Title], tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out["variable "+v.Name] = append(out["variable "+v.Name], v.Definition)
		}
	}
	if len(d.Panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	return out
}

// TestDashboardNamesExportedMetrics checks that every query of the shipped
// Grafana dashboard names only metrics sluice exports, and that every
// exported metric (but the informational ones) has a panel.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	_, fams := exportedNames(t)
	known := map[string]bool{}
	for name, f := range fams {
		known[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[name+s] = true
			}
		}
	}
	used := map[string]bool{}
	for where, exprs := range dashboardExprs(t) {
		for _, e := range exprs {
			var names []string
			if m := labelValuesRE.FindStringSubmatch(e); m != nil {
				names = []string{m[1]}
			} else {
				var err error
				if names, err = metricNames(e); err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
			}
			if len(names) == 0 {
				t.Errorf("%s: expression %q names no metric", where, e)
			}
			for _, name := range names {
				if !known[name] {
					t.Errorf("%s: expression %q uses %s, which sluice does not export", where, e, name)
				}
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}
	for name := range known {
		if fams[name] == nil || name == "sluice_query_info" || name == "sluice_last_batch_id" {
			continue
		}
		if !used[name] {
			t.Errorf("metric %s has no panel in %s", name, dashboardPath)
		}
	}
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sluice_lag_records{query=~"$query"}`, []string{"sluice_lag_records"}},
		{`rate(sluice_batches_total{query="a b"}[$__rate_interval])`, []string{"sluice_batches_total"}},
		{`histogram_quantile(0.95, sum by (query, le) (rate(x_bucket[5m])))`, []string{"x_bucket"}},
		{`sum(a) without (topic) / on(query) group_left(id) b offset 5m`, []string{"a", "b"}},
		{`time() - last_ts{q="}"} > bool 1e3 and up`, []string{"last_ts", "up"}},
		{`eta < +Inf or eta > NaN`, []string{"eta", "eta"}},
		{`${ds_var} + {__name__="hidden"}`, nil},
		{`max by (query) (m:recorded:rate5m)`, []string{"m:recorded:rate5m"}},
		{"count\twithout (x) (a) + sum(b) by (y) + max", []string{"a", "b", "max"}},
	}
	for _, tt := range tests {
		got, err := metricNames(tt.expr)
		if err != nil {
			t.Errorf("%q: %v", tt.expr, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
	for _, bad := range []string{`a{b="c}`, `rate(a[5m)`, `"open`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q): no error", bad)
		}
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_:][A-Za-z0-9_:]*$`)

func FuzzMetricNames(f *testing.F) {
	f.Add(`sum by (query) (rate(sluice_batches_total{query=~"$query"}[1m]))`)
	f.Add(`a{b="\"}"} / on(x) group_left b offset 1h`)
	f.Add("`raw` ${v} $v")
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := metricNames(expr)
		if err != nil {
			return
		}
		for _, n := range names {
			if !identRE.MatchString(n) || !strings.Contains(expr, n) {
				t.Fatalf("metricNames(%q) returned %q", expr, n)
			}
		}
	})
}
