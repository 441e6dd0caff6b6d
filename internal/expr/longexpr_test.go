package expr

import (
	"runtime"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

var boolSchema = batch.Schema{Fields: []batch.Field{{Name: "b", Type: batch.Boolean, Nullable: true}}}

// A chain of 300,000 terms used to overflow the stack while compiling. Now
// AND and OR chains compile (balanced, as Spark's parser builds them) and
// other operator chains deeper than MaxDepth are refused with a clear error.
func TestLongChainsCompileOrFailCleanly(t *testing.T) {
	const n = 300_000
	for _, op := range []string{"+", "-", "*", "||", "DIV"} {
		_, err := compileSource(chain("1", op, n), boolSchema)
		if err == nil || !strings.Contains(err.Error(), "nested too deeply: more than 1000 levels") {
			t.Fatalf("%d-term %s chain: err = %v, want the nesting limit error", n, op, err)
		}
		if len(err.Error()) > 600 {
			t.Errorf("%s chain: error message is %d bytes long; the source line must be clipped around the caret", op, len(err.Error()))
		}
	}
	for _, op := range []string{"AND", "OR"} {
		f, err := CompileFilter(chain("b", op, n), boolSchema)
		if err != nil {
			t.Fatalf("%d-term %s chain: %v", n, op, err)
		}
		in := mkBatch(boolSchema, []any{true}, []any{false}, []any{nil})
		out, err := f.Apply(in, testCtx)
		if err != nil {
			t.Fatalf("%s chain: %v", op, err)
		}
		// Only the true row passes either chain (NULL AND … and NULL OR …
		// of all-NULL terms are NULL).
		if out.N != 1 || out.Columns[0].Value(0) != true {
			t.Errorf("%s chain kept %d rows, want the one true row", op, out.N)
		}
	}
}

// The limit is exact: MaxDepth operators in a chain compile, one more does not.
func TestDepthLimitBoundary(t *testing.T) {
	if _, err := compileSource(chain("1", "+", MaxDepth+1), boolSchema); err != nil {
		t.Errorf("%d operators: %v", MaxDepth, err)
	}
	_, err := compileSource(chain("1", "+", MaxDepth+2), boolSchema)
	if err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("%d operators: err = %v, want the nesting limit error", MaxDepth+1, err)
	}
	// A tree built without the parser is checked by Compile too.
	var n Node = &Literal{Type: batch.Int, Value: int64(1)}
	for i := 0; i <= MaxDepth; i++ {
		n = &Binary{Op: "+", L: n, R: &Literal{Type: batch.Int, Value: int64(1)}}
	}
	if _, err := Compile(n, boolSchema); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("Compile of a hand-built %d-deep tree: err = %v, want the nesting limit error", MaxDepth+1, err)
	}
}

// Spark's parser turns a chain of one logical operator into a balanced tree,
// which shows in the generated column name.
func TestLogicChainsAreBalancedLikeSpark(t *testing.T) {
	schema := batch.Schema{Fields: []batch.Field{
		{Name: "a", Type: batch.Boolean}, {Name: "b", Type: batch.Boolean},
		{Name: "c", Type: batch.Boolean}, {Name: "d", Type: batch.Boolean}, {Name: "e", Type: batch.Boolean},
	}}
	for _, tt := range []struct{ src, name string }{
		{"a AND b", "(a AND b)"},
		{"a AND b AND c", "((a AND b) AND c)"},
		{"a AND b AND c AND d", "((a AND b) AND (c AND d))"},
		{"a OR b OR c OR d OR e", "(((a OR b) OR c) OR (d OR e))"},
		{"a AND b OR c AND d AND e", "((a AND b) OR ((c AND d) AND e))"},
		{"(a AND b) AND c AND d", "(((a AND b) AND c) AND d)"},
	} {
		c, err := compileSource(tt.src, schema)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		if c.Name() != tt.name {
			t.Errorf("%s: name %s, want %s", tt.src, c.Name(), tt.name)
		}
	}
}

// allocated is the number of bytes allocated while running f.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Compiling a chain four times as long must cost about four times as much,
// not sixteen (the generated SQL text used to be rebuilt at every level).
// Allocated bytes stand in for time: they grow with the same copying but do
// not depend on the machine's load. BenchmarkLongChain measures the time.
func TestLongChainWorkGrowsLinearly(t *testing.T) {
	for _, op := range []string{"AND", "OR"} {
		small, large := chain("b", op, 20_000), chain("b", op, 80_000)
		a := allocated(func() { _, _ = compileSource(small, boolSchema) })
		b := allocated(func() { _, _ = compileSource(large, boolSchema) })
		if ratio := float64(b) / float64(a); ratio > 6 {
			t.Errorf("%s chain: compiling 80k terms allocated %.1f× as much as 20k (%d vs %d bytes), want ≤ 6× (linear is 4×)",
				op, ratio, b, a)
		}
	}
	// Chains of + up to the depth limit: the cost of MaxDepth/4 vs MaxDepth.
	small, large := chain("1", "+", MaxDepth/4), chain("1", "+", MaxDepth)
	a := allocated(func() { _, _ = compileSource(small, boolSchema) })
	b := allocated(func() { _, _ = compileSource(large, boolSchema) })
	t.Logf("+ chain: %d vs %d bytes", a, b)
}
