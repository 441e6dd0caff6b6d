package socket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/source"

	"github.com/sluice-stream/sluice/internal/admission"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// server accepts one connection and hands it to the test.
func server(t *testing.T) (port string, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			ch <- c
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, ch
}

func open(t *testing.T, extra map[string]string) (*Source, net.Conn) {
	t.Helper()
	port, conns := server(t)
	opts := map[string]string{"host": "127.0.0.1", "port": port}
	for k, v := range extra {
		opts[k] = v
	}
	s, err := New(opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return s, c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
	return nil, nil
}

// waitLines polls until the source buffered at least n lines.
func waitLines(t *testing.T, s *Source, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := s.Buffered(); got >= n {
			return
		}
		if time.Now().After(deadline) {
			got, _ := s.Buffered()
			t.Fatalf("buffered %d lines, want ≥ %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

type readRow struct {
	value string
	ts    int64
	null  bool
}

func readRange(t *testing.T, s *Source, start, end source.Offset) [][]readRow {
	t.Helper()
	ctx := context.Background()
	r, err := s.Open(ctx, start, end)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	var out [][]readRow
	for _, tk := range r.Tasks() {
		var rows []readRow
		err := r.Read(ctx, tk, func(_ context.Context, b *batch.Batch) error {
			if err := b.Validate(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				rr := readRow{value: string(b.Columns[0].Bytes[i]), null: b.Columns[0].IsNull(i)}
				if len(b.Columns) > 1 {
					rr.ts = b.Columns[1].Ints[i]
				}
				rows = append(rows, rr)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(rows)) != tk.Size() {
			t.Errorf("task %s: Size %d, read %d", tk, tk.Size(), len(rows))
		}
		out = append(out, rows)
	}
	return out
}

func TestLinesAndOffsets(t *testing.T) {
	before := time.Now().UnixMicro()
	s, c := open(t, map[string]string{"includeTimestamp": "true"})
	if _, err := io.WriteString(c, "alpha\r\n\nbeta\ngamma"); err != nil {
		t.Fatal(err)
	}
	c.Close() // EOF: the last line has no newline
	waitLines(t, s, 4)
	ctx := context.Background()
	init, _ := s.InitialOffset(ctx)
	if init.JSON() != "0" {
		t.Fatalf("initial offset %s", init.JSON())
	}
	end, latest, err := s.Latest(ctx, init, source.ReadLimit{MaxRows: 3})
	if err != nil || end.JSON() != "3" || latest.JSON() != "4" {
		t.Fatalf("Latest with MaxRows 3 = %v, %v, %v; want 3, 4", end, latest, err)
	}
	got := readRange(t, s, init, end)
	want := []string{"alpha", "", "beta"}
	if len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("rows %v", got)
	}
	after := time.Now().UnixMicro()
	for i, r := range got[0] {
		if r.value != want[i] || r.null {
			t.Errorf("line %d = %+v, want %q", i, r, want[i])
		}
		if r.ts < before || r.ts > after {
			t.Errorf("line %d timestamp %d outside [%d,%d]", i, r.ts, before, after)
		}
	}
	if err := s.Commit(ctx, end); err != nil {
		t.Fatal(err)
	}
	if n, b := s.Buffered(); n != 1 || b != int64(len("gamma")) {
		t.Errorf("after commit: %d lines %d bytes buffered, want 1 line of 5 bytes", n, b)
	}
	end2, _, _ := s.Latest(ctx, end, source.ReadLimit{})
	got = readRange(t, s, end, end2)
	if end2.JSON() != "4" || len(got[0]) != 1 || got[0][0].value != "gamma" {
		t.Errorf("second batch %s: %v", end2.JSON(), got)
	}
	if s.Schema().String() != "struct<value:string,timestamp:timestamp>" {
		t.Errorf("schema %s", s.Schema())
	}
	if d := s.Description(); !strings.HasPrefix(d, "TextSocketV2[host: 127.0.0.1, port: ") {
		t.Errorf("description %q", d)
	}
}

func TestRoundRobinPartitions(t *testing.T) {
	s, c := open(t, map[string]string{"numPartitions": "3"})
	for i := 0; i < 7; i++ {
		fmt.Fprintf(c, "l%d\n", i)
	}
	waitLines(t, s, 7)
	ctx := context.Background()
	end, _, _ := s.Latest(ctx, Offset(0), source.ReadLimit{})
	got := readRange(t, s, Offset(0), end)
	want := [][]string{{"l0", "l3", "l6"}, {"l1", "l4"}, {"l2", "l5"}}
	if len(got) != 3 {
		t.Fatalf("%d tasks, want 3", len(got))
	}
	for p := range want {
		var vals []string
		for _, r := range got[p] {
			vals = append(vals, r.value)
		}
		if strings.Join(vals, ",") != strings.Join(want[p], ",") {
			t.Errorf("task %d: %v, want %v", p, vals, want[p])
		}
	}
}

// TestBackpressure: a sender much faster than the query is slowed by TCP
// flow control once the bounded buffer is full, and resumes after commit.
func TestBackpressure(t *testing.T) {
	const maxLines = 100
	s, c := open(t, map[string]string{"sluice.socket.maxBufferedLines": strconv.Itoa(maxLines)})
	line := bytes.Repeat([]byte("x"), 99)
	line = append(line, '\n')
	chunk := bytes.Repeat(line, 640) // 64 KB per write
	const total = 64 << 20           // far more than the kernel's socket buffers

	var written atomic.Int64
	var sendErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.SetWriteDeadline(time.Now().Add(1500 * time.Millisecond))
		for written.Load() < total {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				sendErr = err
				return
			}
		}
	}()
	// Watch the buffer while the sender runs; the query consumes nothing.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	maxSeen := 0
watch:
	for {
		select {
		case <-done:
			break watch
		default:
		}
		n, b := s.Buffered()
		maxSeen = max(maxSeen, n)
		if n > maxLines || b > int64(maxLines*99) {
			t.Fatalf("buffer holds %d lines / %d bytes, bound is %d lines", n, b, maxLines)
		}
		time.Sleep(200 * time.Microsecond)
	}
	if !errors.Is(sendErr, os.ErrDeadlineExceeded) {
		t.Fatalf("sender finished with %v after %d bytes; want its writes to block until the deadline", sendErr, written.Load())
	}
	if w := written.Load(); w >= total {
		t.Fatalf("sender wrote all %d bytes: no backpressure", w)
	}
	if maxSeen != maxLines {
		t.Errorf("buffer peaked at %d lines, want exactly the bound %d", maxSeen, maxLines)
	}

	// The query consumes one batch: exactly the bounded buffer.
	ctx := context.Background()
	end, _, err := s.Latest(ctx, Offset(0), source.ReadLimit{})
	if err != nil || end.JSON() != strconv.Itoa(maxLines) {
		t.Fatalf("Latest = %v, %v; want %d", end, err, maxLines)
	}
	rows := readRange(t, s, Offset(0), end)
	if len(rows[0]) != maxLines || rows[0][0].value != string(line[:99]) {
		t.Fatalf("batch has %d rows", len(rows[0]))
	}
	if err := s.Commit(ctx, end); err != nil {
		t.Fatal(err)
	}
	// Committing frees room: reading resumes from the kernel buffers.
	waitLines(t, s, maxLines)
	end2, _, _ := s.Latest(ctx, end, source.ReadLimit{})
	if end2.JSON() != strconv.Itoa(2*maxLines) {
		t.Errorf("second batch ends at %s, want %d", end2.JSON(), 2*maxLines)
	}
	// Close stops the reader goroutine although it is blocked on a full buffer.
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the reader goroutine")
	}
}

func TestByteBound(t *testing.T) {
	s, c := open(t, map[string]string{"sluice.socket.maxBufferedBytes": "10"})
	io.WriteString(c, "abcd\nefgh\nijkl\n")
	waitLines(t, s, 2)
	time.Sleep(50 * time.Millisecond)
	if n, b := s.Buffered(); n != 2 || b != 8 {
		t.Fatalf("buffered %d lines / %d bytes, want 2 / 8 under a 10-byte bound", n, b)
	}
	s.Commit(context.Background(), Offset(1))
	waitLines(t, s, 2)
	if n, b := s.Buffered(); n != 2 || b != 8 {
		t.Errorf("after commit: %d lines / %d bytes, want 2 / 8", n, b)
	}
}

func TestMemoryBudgetLowersByteBound(t *testing.T) {
	s, c := open(t, nil)
	s.SetMemoryBudget(1<<20, admission.BufferShare(1<<20)) // a quarter: 256 KiB
	line := strings.Repeat("y", 1023) + "\n"
	go func() {
		for i := 0; i < 1024; i++ { // 1 MiB
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	waitLines(t, s, 256)
	time.Sleep(50 * time.Millisecond)
	if n, b := s.Buffered(); n != 256 || b != 256*1023 {
		t.Errorf("buffered %d lines / %d bytes, want 256 lines under a 256 KiB bound", n, b)
	}
}

func TestLineTooLongFailsQuery(t *testing.T) {
	s, c := open(t, map[string]string{"sluice.socket.maxBufferedBytes": "8"})
	io.WriteString(c, "0123456789abcdef\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := s.Latest(context.Background(), Offset(0), source.ReadLimit{})
		if err != nil {
			if !strings.Contains(err.Error(), "maxBufferedBytes") || !strings.Contains(err.Error(), "(8 bytes)") {
				t.Errorf("error %v does not name the bound", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("an over-long line did not fail the source")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRestartNumbering: a new process continues the checkpoint's numbering;
// the lines of a batch logged before the crash are gone.
func TestRestartNumbering(t *testing.T) {
	s, c := open(t, nil)
	io.WriteString(c, "a\nb\nc\n")
	waitLines(t, s, 3)
	ctx := context.Background()
	// The engine replays batch [500, 520) logged by the previous process.
	st, _ := s.ParseOffset("500")
	en, _ := s.ParseOffset("520")
	rows := readRange(t, s, st, en)
	if len(rows) != 1 || len(rows[0]) != 0 {
		t.Fatalf("replayed batch read %v, want nothing", rows)
	}
	s.Commit(ctx, en)
	end, _, err := s.Latest(ctx, en, source.ReadLimit{})
	if err != nil || end.JSON() != "523" {
		t.Fatalf("Latest after replay = %v, %v; want 523", end, err)
	}
	rows = readRange(t, s, en, end)
	if len(rows[0]) != 3 || rows[0][0].value != "a" || rows[0][2].value != "c" {
		t.Errorf("rows %v", rows)
	}

	// Without a replay: the first Latest renumbers from the checkpoint.
	s2, c2 := open(t, nil)
	io.WriteString(c2, "x\n")
	waitLines(t, s2, 1)
	end, _, _ = s2.Latest(ctx, Offset(40), source.ReadLimit{})
	if end.JSON() != "41" {
		t.Errorf("Latest from 40 = %s, want 41", end.JSON())
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts    map[string]string
		wantErr string
	}{
		{map[string]string{"port": "1"}, `option "host": required`},
		{map[string]string{"host": "h"}, `option "port": required`},
		{map[string]string{"host": "h", "port": "70000"}, `option "port": invalid value "70000"`},
		{map[string]string{"host": "h", "port": "x"}, `option "port": invalid value "x"`},
		{map[string]string{"host": "h", "port": "1", "includeTimestamp": "yes"}, `option "includeTimestamp"`},
		{map[string]string{"host": "h", "port": "1", "sluice.socket.maxBufferedLines": "0"}, `option "sluice.socket.maxBufferedLines"`},
		{map[string]string{"host": "h", "port": "1", "hots": "x"}, `did you mean "host"?`},
	} {
		if _, err := ParseConfig(tc.opts); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseConfig(%v) = %v, want %q", tc.opts, err, tc.wantErr)
		}
	}
	c, err := ParseConfig(map[string]string{"HOST": "h", "Port": "9"})
	if err != nil || c.MaxBufferedLines != 100_000 || c.MaxBufferedBytes != 64<<20 || c.NumPartitions != 1 || c.IncludeTimestamp {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	if _, err := New(map[string]string{"host": "127.0.0.1", "port": "1", "sluice.socket.connectTimeout": "1s"}, quiet); err == nil ||
		!strings.Contains(err.Error(), "connect to 127.0.0.1:1") {
		t.Errorf("connecting to a closed port: %v", err)
	}
}
