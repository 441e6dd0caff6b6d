package plan

import (
	"fmt"
	"testing"
)

func build(ops ...Op) *Node {
	n := NewScan("kafka", nil)
	for _, o := range ops {
		n = n.With(o)
	}
	return n
}

func TestRequiredColumns(t *testing.T) {
	cases := []struct {
		root *Node
		want string
	}{
		{build(Op{Kind: SelectExpr, Exprs: []string{"CAST(value AS STRING) AS json"}}, Op{Kind: WithColumn, Name: "ts", Expr: "current_timestamp()"}), "[value]"},
		{build(Op{Kind: Select, Exprs: []string{"partition", "offset", "upper(CAST(key AS STRING))"}}), "[partition offset key]"},
		{build(Op{Kind: SelectExpr, Exprs: []string{"*"}}), "all"},
		{build(Op{Kind: WithColumn, Name: "x", Expr: "1"}), "all"},
		{build(Op{Kind: Filter, Expr: "offset > 3"}, Op{Kind: SelectExpr, Exprs: []string{"value"}}), "all"},
		{build(), "all"},
		{build(Op{Kind: SelectExpr, Exprs: []string{"1 AS one"}}), "[]"},
	}
	for i, c := range cases {
		got := requiredColumns(c.root)
		s := fmt.Sprint(got)
		if got == nil {
			s = "all"
		}
		if s != c.want {
			t.Errorf("case %d: requiredColumns = %s, want %s", i, s, c.want)
		}
	}
}

func TestNodeSteps(t *testing.T) {
	n := build(Op{Kind: Filter, Expr: "a"}, Op{Kind: Filter, Expr: "b"})
	ops := n.Ops()
	if len(ops) != 2 || ops[0].Expr != "a" || ops[0].Step != 0 || ops[1].Step != 1 || n.Source().Format != "kafka" {
		t.Fatalf("ops %+v", ops)
	}
}
