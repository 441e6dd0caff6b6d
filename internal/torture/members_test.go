package torture

import (
	"strings"
	"testing"
)

func TestTailBufferSince(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("abcdef"))
	mark := b.Written()
	b.Write([]byte("ghij"))
	for _, tc := range []struct {
		from int64
		want string
	}{
		{mark, "ghij"},    // all of it still held
		{0, "cdefghij"},   // the start was dropped: what is left
		{b.Written(), ""}, // nothing since
		{mark + 2, "ij"},  // part of the last write
	} {
		if got := b.Since(tc.from); got != tc.want {
			t.Errorf("Since(%d) = %q, want %q", tc.from, got, tc.want)
		}
	}
	if got := b.String(); got != "cdefghij" {
		t.Errorf("String() = %q", got)
	}
}

func TestInterestingStacks(t *testing.T) {
	dump := strings.Join([]string{
		"SIGQUIT: quit\nPC=0x1 m=0 sigcode=0",
		"goroutine 1 [select]:\nmain.main()\n\t/x/main.go:1",
		"goroutine 7 [sync.Mutex.Lock]:\ngithub.com/sluice-stream/sluice/internal/source/kafka.(*Source).dropOwned(...)\n\t/x/group.go:432",
		"goroutine 9 [chan receive]:\ngithub.com/twmb/franz-go/pkg/kgo.(*groupConsumer).manage(...)\n\t/y/consumer_group.go:1",
		"goroutine 11 [IO wait]:\ninternal/poll.runtime_pollWait(...)",
	}, "\n\n")
	got := interestingStacks(dump, 1<<20)
	for _, want := range []string{"goroutine 7 [sync.Mutex.Lock]", "dropOwned", "goroutine 9 [chan receive]"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	for _, not := range []string{"goroutine 1 ", "goroutine 11 ", "SIGQUIT"} {
		if strings.Contains(got, not) {
			t.Errorf("%q kept in:\n%s", not, got)
		}
	}
	if got := interestingStacks(dump, 10); !strings.HasPrefix(got, "... (more goroutines left out)") {
		t.Errorf("over the bound: %q", got)
	}
	if got := interestingStacks("no dump", 100); got != "(no goroutine dump read)" {
		t.Errorf("no dump: %q", got)
	}
}
