package sluice

import (
	"context"
	"strings"
	"testing"
)

// An expression too deep to compile is refused with an error short enough
// to read: the step is named by a clipped prefix of its text, not all of it.
func TestLongExpressionErrorIsShort(t *testing.T) {
	long := "1" + strings.Repeat(" + 1", 300_000)
	q, err := NewSession().ReadStream().Format("rate").Load().Filter(long+" > 0").WriteStream().Format("noop").
		Option("checkpointLocation", t.TempDir()).Start(context.Background())
	if q != nil {
		_ = q.Stop()
	}
	if err == nil || !strings.Contains(err.Error(), "nested too deeply: more than 1000 levels") {
		t.Fatalf("err = %.300v, want the nesting limit error", err)
	}
	if n := len(err.Error()); n > 1200 {
		t.Errorf("the error is %d bytes long:\n%.400s…", n, err.Error())
	}
}
