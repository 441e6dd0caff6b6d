// Package socket is sluice's text socket source (Spark's "socket" format):
// it connects to host:port and turns every received line into a row.
//
// Unlike Spark's, the buffer between the connection and the query is
// bounded (sluice.socket.maxBufferedLines / maxBufferedBytes): when it is
// full the source stops reading from the connection, the kernel's socket
// buffers fill and TCP flow control slows the sender down. Lines are
// dropped from the buffer when the batch holding them commits.
//
// Like Spark's, the source is not replayable: lines received but not
// committed when the process stops are lost, and a batch logged before a
// crash is re-run empty. It is meant for tests and demos.
package socket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/source"
)

// chunkRows is how many rows a task emits per batch.Batch.
const chunkRows = 4096

// Spec describes the socket source's options.
var Spec = &options.Spec{What: "socket source", Fields: []options.Field{
	{Name: "host", Type: options.String, Required: true, Doc: "Host name or address to connect to."},
	{Name: "port", Type: options.Int, Min: 1, Required: true, Hint: "allowed: a TCP port between 1 and 65535", Doc: "TCP port to connect to."},
	{Name: "includeTimestamp", Type: options.Bool, Default: "false", Doc: "Adds a `timestamp` column with the time each line was received."},
	{Name: "numPartitions", Type: options.Int, Min: 1, Default: "1", Doc: "Tasks per batch; lines are spread over them round-robin (1 keeps them in order)."},
	{Name: "sluice.socket.maxBufferedLines", Type: options.Int, Min: 1, Default: "100000",
		Doc: "Bound on lines received but not yet committed; when full the source stops reading and TCP pushes back on the sender."},
	{Name: "sluice.socket.maxBufferedBytes", Type: options.Int, Min: 1, Default: "67108864",
		Doc: "Bound on the bytes of those lines (64 MiB; lowered to a quarter of sluice.memory.budget when one is set)."},
	{Name: "sluice.socket.connectTimeout", Type: options.Duration, Default: "30s", Doc: "How long connecting may take."},
}}

// Format registers "socket".
var Format = source.Format{
	Name:      "socket",
	Summary:   "lines of text from a TCP connection (tests and demos); bounded buffer with TCP backpressure; not replayable",
	Options:   Spec,
	SchemaDoc: "`value string`, plus `timestamp timestamp` with includeTimestamp",
	Schema: func(v options.Values, _ source.Env) (batch.Schema, error) {
		cfg, err := parseConfig(v)
		if err != nil {
			return batch.Schema{}, err
		}
		return Schema(cfg.IncludeTimestamp), nil
	},
	Open: func(v options.Values, env source.Env) (source.Source, error) {
		cfg, err := parseConfig(v)
		if err != nil {
			return nil, err
		}
		return connect(cfg, env.Logger)
	},
}

// Config is the parsed socket source configuration.
type Config struct {
	Host             string
	Port             int
	IncludeTimestamp bool
	// NumPartitions spreads a batch's lines round-robin over this many
	// tasks, as Spark does; the default 1 keeps them in order.
	NumPartitions    int
	MaxBufferedLines int
	MaxBufferedBytes int64
	ConnectTimeout   time.Duration
}

// ParseConfig validates the socket source options.
func ParseConfig(m map[string]string) (*Config, error) {
	v, err := Spec.Read(m)
	if err != nil {
		return nil, err
	}
	return parseConfig(v)
}

func parseConfig(v options.Values) (*Config, error) {
	c := &Config{}
	c.Host = strings.TrimSpace(v.String("host"))
	if c.Host == "" {
		return nil, &options.Error{Option: "host", Allowed: "required: the host name or address to connect to"}
	}
	if !v.Has("port") {
		return nil, &options.Error{Option: "port", Allowed: "required: a TCP port between 1 and 65535"}
	}
	if p := v.Int64("port"); p > 65535 {
		pv, _ := v.Get("port")
		return nil, &options.Error{Option: "port", Value: pv, Allowed: "allowed: a TCP port between 1 and 65535"}
	}
	c.Port = int(v.Int64("port"))
	c.IncludeTimestamp = v.Bool("includeTimestamp")
	c.NumPartitions = int(min(v.Int64("numPartitions"), 1<<16))
	c.MaxBufferedLines = int(min(v.Int64("sluice.socket.maxBufferedLines"), 1<<40))
	c.MaxBufferedBytes = v.Int64("sluice.socket.maxBufferedBytes")
	c.ConnectTimeout = v.Duration("sluice.socket.connectTimeout")
	return c, nil
}

// Schema is value: string, plus timestamp: timestamp (the time the line
// was received) with includeTimestamp.
func Schema(includeTimestamp bool) batch.Schema {
	s := batch.Schema{Fields: []batch.Field{{Name: "value", Type: batch.String, Nullable: true}}}
	if includeTimestamp {
		s.Fields = append(s.Fields, batch.Field{Name: "timestamp", Type: batch.Timestamp, Nullable: true})
	}
	return s
}

// Offset is the number of lines received before a position (the first
// line is line 0). Its JSON is the bare number.
type Offset int64

// JSON implements source.Offset.
func (o Offset) JSON() string { return strconv.FormatInt(int64(o), 10) }

// Source is the socket source. One goroutine, started by New and stopped
// by Close, reads lines from the connection into the bounded buffer.
type Source struct {
	cfg    *Config
	log    *slog.Logger
	schema batch.Schema
	conn   net.Conn
	wg     sync.WaitGroup
	// maxBytes is the byte bound in force: the option, lowered to a share
	// of the query's memory budget by SetMemoryBudget.
	maxBytes atomic.Int64

	mu   sync.Mutex
	cond *sync.Cond // signalled when the buffer shrinks or the source closes
	// base is the offset of lines[0]; base+len(lines) is the next line's.
	base    int64
	lines   [][]byte
	stamps  []int64 // receive time in µs, with includeTimestamp
	bytes   int64   // sum of len(lines[i])
	synced  bool    // numbering aligned with the checkpoint's offsets
	stopped bool    // the reader goroutine ended (EOF, error, Close)
	fatal   error   // an error that fails the query (line too long)
	closed  bool
}

// New connects to host:port and starts reading lines.
func New(opts map[string]string, logger *slog.Logger) (*Source, error) {
	cfg, err := ParseConfig(opts)
	if err != nil {
		return nil, err
	}
	return connect(cfg, logger)
}

func connect(cfg *Config, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.Default()
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	conn, err := net.DialTimeout("tcp", addr, cfg.ConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("socket source: connect to %s: %w", addr, err)
	}
	s := &Source{cfg: cfg, log: logger, schema: Schema(cfg.IncludeTimestamp), conn: conn}
	s.cond = sync.NewCond(&s.mu)
	s.maxBytes.Store(cfg.MaxBufferedBytes)
	s.wg.Add(1)
	go s.readLoop()
	return s, nil
}

// Config returns the parsed options.
func (s *Source) Config() *Config { return s.cfg }

// Description implements source.Source.
func (s *Source) Description() string {
	return fmt.Sprintf("TextSocketV2[host: %s, port: %d]", s.cfg.Host, s.cfg.Port)
}

// Schema implements source.Source.
func (s *Source) Schema() batch.Schema { return s.schema }

// errLineTooLong is returned for a line larger than the byte bound.
var errLineTooLong = errors.New("line longer than the buffer's byte bound (sluice.socket.maxBufferedBytes, or a quarter of the memory budget)")

// readLoop reads lines until EOF, an error or Close. After reading a line
// it waits until the buffer has room, so a full buffer stops the reads and
// lets TCP flow control push back on the sender.
func (s *Source) readLoop() {
	defer s.wg.Done()
	br := bufio.NewReaderSize(s.conn, 64<<10)
	for {
		line, err := readLine(br, s.maxBytes.Load())
		if len(line) > 0 || err == nil {
			if !s.add(line) {
				return
			}
		}
		if err != nil {
			s.mu.Lock()
			s.stopped = true
			closed := s.closed
			switch {
			case closed:
			case errors.Is(err, errLineTooLong):
				s.fatal = fmt.Errorf("socket source: %s:%d sent a %w (%d bytes)", s.cfg.Host, s.cfg.Port, err, s.maxBytes.Load())
			case errors.Is(err, io.EOF):
				s.log.Warn("socket source: stream closed by the server", "host", s.cfg.Host, "port", s.cfg.Port)
			default:
				s.log.Warn("socket source: reading stopped", "host", s.cfg.Host, "port", s.cfg.Port, "err", err)
			}
			s.mu.Unlock()
			return
		}
	}
}

// add appends a line once the buffer has room; false if the source closed.
func (s *Source) add(line []byte) bool {
	var ts int64
	if s.cfg.IncludeTimestamp {
		ts = time.Now().UnixMicro()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && len(s.lines) > 0 &&
		(len(s.lines) >= s.cfg.MaxBufferedLines || s.bytes+int64(len(line)) > s.maxBytes.Load()) {
		s.cond.Wait()
	}
	if s.closed {
		return false
	}
	s.lines = append(s.lines, line)
	if s.cfg.IncludeTimestamp {
		s.stamps = append(s.stamps, ts)
	}
	s.bytes += int64(len(line))
	return true
}

// readLine reads one line without its "\n" or "\r\n", copying it out of
// the reader's buffer. A last line without a newline is returned with
// io.EOF.
func readLine(br *bufio.Reader, maxBytes int64) ([]byte, error) {
	var acc []byte
	for {
		frag, err := br.ReadSlice('\n')
		if int64(len(acc)+len(frag)) > maxBytes+2 {
			return nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			acc = append(acc, frag...)
			continue
		}
		if err != nil {
			if len(acc)+len(frag) == 0 {
				return nil, err
			}
			line := trimEOL(append(acc, frag...))
			if int64(len(line)) > maxBytes {
				return nil, errLineTooLong
			}
			return line, err
		}
		var line []byte
		if acc == nil {
			line = append([]byte(nil), frag...)
		} else {
			line = append(acc, frag...)
		}
		line = trimEOL(line)
		if int64(len(line)) > maxBytes {
			return nil, errLineTooLong
		}
		return line, nil
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// SetMemoryBudget implements source.Budgeted: the buffer holds at most the
// share of the query's memory budget admission leaves to source buffers
// (at least 64 KiB), or less if sluice.socket.maxBufferedBytes says so.
func (s *Source) SetMemoryBudget(budget, buffers int64) {
	if budget <= 0 {
		return
	}
	s.maxBytes.Store(min(s.cfg.MaxBufferedBytes, max(buffers, 64<<10)))
	s.mu.Lock()
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Buffered reports the lines and bytes held in the buffer.
func (s *Source) Buffered() (lines int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines), s.bytes
}

// Metrics reports the buffer's fill level.
func (s *Source) Metrics(_, _ source.Offset) map[string]string {
	lines, bytes := s.Buffered()
	return map[string]string{
		"bufferedLines": strconv.Itoa(lines),
		"bufferedBytes": strconv.FormatInt(bytes, 10),
	}
}

// InitialOffset is the first buffered line.
func (s *Source) InitialOffset(context.Context) (source.Offset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Offset(s.base), nil
}

// ParseOffset implements source.Source.
func (s *Source) ParseOffset(js string) (source.Offset, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(js), 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket source: parse offset %q: not a line number", js)
	}
	return Offset(n), nil
}

func asOffset(o source.Offset) (int64, error) {
	switch v := o.(type) {
	case Offset:
		return int64(v), nil
	case *Offset:
		return int64(*v), nil
	}
	return 0, fmt.Errorf("socket source: offset %T is not a socket offset", o)
}

// sync aligns the line numbering with a checkpoint written by an earlier
// process, on the first call after start: lines buffered so far are
// numbered from `to`. Called with mu held.
func (s *Source) sync(to int64) {
	if s.synced {
		return
	}
	s.synced = true
	if to > s.base {
		s.base = to
	}
}

// Latest implements source.Source: everything buffered, or at most
// limit.MaxRows lines.
func (s *Source) Latest(_ context.Context, startOff source.Offset, limit source.ReadLimit) (source.Offset, source.Offset, error) {
	start, err := asOffset(startOff)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal != nil {
		return nil, nil, s.fatal
	}
	s.sync(start)
	latest := s.base + int64(len(s.lines))
	if start > latest {
		return nil, nil, fmt.Errorf("socket source: start offset %d is past the %d lines received", start, latest)
	}
	end := latest
	if limit.MaxRows > 0 {
		end = min(end, start+limit.MaxRows)
	}
	return Offset(end), Offset(latest), nil
}

// Open implements source.Source. Lines of [start, end) that are no longer
// buffered (a batch logged by a process that crashed) are lost; a warning
// says how many.
func (s *Source) Open(_ context.Context, startOff, endOff source.Offset) (source.Reader, error) {
	start, err := asOffset(startOff)
	if err != nil {
		return nil, err
	}
	end, err := asOffset(endOff)
	if err != nil {
		return nil, err
	}
	if end < start {
		return nil, fmt.Errorf("socket source: invalid range [%d,%d)", start, end)
	}
	s.mu.Lock()
	s.sync(end)
	have := s.base + int64(len(s.lines))
	if end > have {
		s.mu.Unlock()
		return nil, fmt.Errorf("socket source: range [%d,%d) is past the %d lines received", start, end, have)
	}
	from := max(start, s.base)
	// Copy the slice headers: Commit clears the buffer's entries.
	lines := append([][]byte(nil), s.lines[from-s.base:end-s.base]...)
	var stamps []int64
	if s.cfg.IncludeTimestamp {
		stamps = append([]int64(nil), s.stamps[from-s.base:end-s.base]...)
	}
	s.mu.Unlock()
	if lost := from - start; lost > 0 {
		s.log.Warn("socket source: lines of a batch logged before a restart are lost (the socket source is not replayable)",
			"from", start, "to", from, "lost", min(lost, end-start))
	}
	r := &reader{s: s}
	n := s.cfg.NumPartitions
	for p := 0; p < n; p++ {
		t := &task{part: p, step: n, start: from, end: end, lines: lines, stamps: stamps}
		if t.Size() > 0 || p == 0 {
			r.tasks = append(r.tasks, t)
		}
	}
	return r, nil
}

// Commit drops the lines before end from the buffer, making room for the
// reader goroutine.
func (s *Source) Commit(_ context.Context, endOff source.Offset) error {
	end, err := asOffset(endOff)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := end - s.base
	if n <= 0 {
		return nil
	}
	n = min(n, int64(len(s.lines)))
	for i := int64(0); i < n; i++ {
		s.bytes -= int64(len(s.lines[i]))
		s.lines[i] = nil
	}
	s.lines = s.lines[n:]
	if s.cfg.IncludeTimestamp {
		s.stamps = s.stamps[n:]
	}
	s.base += n
	s.cond.Broadcast()
	return nil
}

// Close disconnects and waits for the reader goroutine to stop.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	err := s.conn.Close()
	s.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("socket source: close connection: %w", err)
	}
	return nil
}

// task is every step-th line of a batch, starting at part.
type task struct {
	part, step int
	start, end int64
	lines      [][]byte
	stamps     []int64
}

func (t *task) String() string {
	return fmt.Sprintf("socket-%d[%d,%d)", t.part, t.start, t.end)
}

// Size is the number of lines the task reads.
func (t *task) Size() int64 {
	n := int64(len(t.lines))
	if n <= int64(t.part) {
		return 0
	}
	return (n-int64(t.part)-1)/int64(t.step) + 1
}

type reader struct {
	s     *Source
	tasks []source.Task
}

func (r *reader) Tasks() []source.Task { return r.tasks }

func (r *reader) Read(ctx context.Context, st source.Task, emit source.Emit) error {
	t, ok := st.(*task)
	if !ok {
		return fmt.Errorf("socket source: task %v is not a socket task", st)
	}
	ts := r.s.cfg.IncludeTimestamp
	for i := t.part; i < len(t.lines); {
		if err := ctx.Err(); err != nil {
			return err
		}
		val := batch.NewColumn(batch.String, chunkRows)
		var tcol *batch.Column
		if ts {
			tcol = batch.NewColumn(batch.Timestamp, chunkRows)
		}
		n := 0
		for ; i < len(t.lines) && n < chunkRows; i += t.step {
			val.AppendBytes(t.lines[i])
			if ts {
				tcol.AppendInt(t.stamps[i])
			}
			n++
		}
		cols := []*batch.Column{val}
		if ts {
			cols = append(cols, tcol)
		}
		if err := emit(ctx, batch.New(r.s.schema, cols, n)); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) Close() error { return nil }

var _ source.Limited = (*Source)(nil)
var _ source.Metrics = (*Source)(nil)
var _ source.Budgeted = (*Source)(nil)
