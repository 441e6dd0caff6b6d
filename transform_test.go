package sluice

import (
	"fmt"
	"testing"
)

func TestRequiredColumns(t *testing.T) {
	cases := []struct {
		ops  []op
		want string
	}{
		{[]op{{kind: opSelectExpr, exprs: []string{"CAST(value AS STRING) AS json"}}, {kind: opWithColumn, name: "ts", exprs: []string{"current_timestamp()"}}}, "[value]"},
		{[]op{{kind: opSelect, exprs: []string{"partition", "offset", "upper(CAST(key AS STRING))"}}}, "[partition offset key]"},
		{[]op{{kind: opSelectExpr, exprs: []string{"*"}}}, "all"},
		{[]op{{kind: opWithColumn, name: "x", exprs: []string{"1"}}}, "all"},
		{[]op{{kind: opFilter, exprs: []string{"offset > 3"}}, {kind: opSelectExpr, exprs: []string{"value"}}}, "all"},
		{nil, "all"},
		{[]op{{kind: opSelectExpr, exprs: []string{"1 AS one"}}}, "[]"},
	}
	for i, c := range cases {
		got := requiredColumns(c.ops)
		s := fmt.Sprint(got)
		if got == nil {
			s = "all"
		}
		if s != c.want {
			t.Errorf("case %d: requiredColumns = %s, want %s", i, s, c.want)
		}
	}
}
