package expr

import (
	"fmt"
	"testing"
)

func TestColumns(t *testing.T) {
	cases := []struct {
		src   string
		names []string
		star  bool
	}{
		{"CAST(value AS STRING) AS json", []string{"value"}, false},
		{"current_timestamp()", nil, false},
		{"current_timestamp", []string{"current_timestamp"}, false},
		{"CASE WHEN a > 1 THEN upper(b) ELSE c END", []string{"a", "b", "c"}, false},
		{"x IN (y, 3) AND z BETWEEN lo AND hi OR s LIKE p", []string{"x", "y", "z", "lo", "hi", "s", "p"}, false},
		{"`my col` IS NOT NULL", []string{"my col"}, false},
		{"*", nil, true},
		{"a + a", []string{"a"}, false},
	}
	for _, c := range cases {
		n, err := Parse(c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		names, star := Columns(n)
		if fmt.Sprint(names) != fmt.Sprint(c.names) || star != c.star {
			t.Errorf("Columns(%s) = %v, %v; want %v, %v", c.src, names, star, c.names, c.star)
		}
	}
}
