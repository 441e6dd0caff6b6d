package expr

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// chain is n copies of term joined by op: "b AND b AND …" or "1 + 1 + …".
func chain(term, op string, n int) string {
	var s strings.Builder
	s.Grow(n * (len(term) + len(op) + 2))
	for i := 0; i < n; i++ {
		if i > 0 {
			s.WriteString(" " + op + " ")
		}
		s.WriteString(term)
	}
	return s.String()
}

// BenchmarkLongChain measures parsing and compiling chains of one operator.
// Time per operation should grow linearly with the number of terms (compare
// the 20000 and 80000 rows: a ratio near 4, not 16). Chains of + deeper than
// the depth limit are refused, so their rows measure how fast the refusal is.
func BenchmarkLongChain(b *testing.B) {
	schema := batch.Schema{Fields: []batch.Field{{Name: "b", Type: batch.Boolean, Nullable: true}}}
	for _, c := range []struct{ name, term, op string }{{"and", "b", "AND"}, {"or", "b", "OR"}, {"add", "1", "+"}} {
		for _, n := range []int{20_000, 80_000} {
			src := chain(c.term, c.op, n)
			b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					_, _ = compileSource(src, schema)
				}
			})
		}
	}
}
