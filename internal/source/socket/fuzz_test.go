package socket

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReadLine checks readLine against splitting the input at "\n" (and
// dropping one "\r" before it), with a reader buffer small enough to make
// lines span several reads.
func FuzzReadLine(f *testing.F) {
	for _, s := range []string{"a\nb\n", "a\r\nb", "", "\n\n", "a very long line that spans reads\r\r\n", "\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		var got []string
		for {
			line, err := readLine(br, 1<<20)
			if err == nil || (errors.Is(err, io.EOF) && line != nil) {
				got = append(got, string(line))
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("readLine(%q): %v", in, err)
				}
				break
			}
		}
		var want []string
		if in != "" {
			parts := strings.Split(in, "\n")
			if parts[len(parts)-1] == "" {
				parts = parts[:len(parts)-1]
			}
			for _, p := range parts {
				want = append(want, strings.TrimSuffix(p, "\r"))
			}
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
			t.Fatalf("readLine(%q) lines %q, want %q", in, got, want)
		}
		// The byte bound: a first line longer than 2 bytes is an error.
		if n := strings.IndexByte(in, '\n'); n >= 0 && len(strings.TrimSuffix(in[:n], "\r")) > 2 {
			br := bufio.NewReaderSize(strings.NewReader(in), 16)
			if _, err := readLine(br, 2); !errors.Is(err, errLineTooLong) {
				t.Fatalf("readLine(%q) with a 2-byte bound: %v, want errLineTooLong", in, err)
			}
		}
	})
}
