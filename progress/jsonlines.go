package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// JSONLinesWriter is a Listener that appends every progress report as one
// line of compact JSON (the format of `sluice run --progress-file F`). Other
// events are ignored. It is safe for concurrent use. After the first write
// error it stops writing and Err returns the error.
type JSONLinesWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	err    error
	closed bool
	lines  int64
}

// NewJSONLinesWriter writes to w; Close does not close w.
func NewJSONLinesWriter(w io.Writer) *JSONLinesWriter { return &JSONLinesWriter{w: w} }

// OpenJSONLinesFile appends to the file at path, creating it (mode 0644) if
// needed; Close closes the file.
func OpenJSONLinesFile(path string) (*JSONLinesWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("progress: open progress file: %w", err)
	}
	return &JSONLinesWriter{w: f, closer: f}, nil
}

// OnQueryProgress writes e.Progress as one line, with a single Write call.
func (j *JSONLinesWriter) OnQueryProgress(e ProgressEvent) {
	if e.Progress == nil {
		return
	}
	// MarshalJSON's output is compact and escaped already: json.Marshal
	// of the report would only check and copy it again (half the cost of
	// a line, once per batch).
	line, err := e.Progress.MarshalJSON()
	if err == nil {
		line = append(line, '\n')
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil || j.closed {
		return
	}
	if err != nil {
		j.err = fmt.Errorf("progress: progress file batch %d: %w", e.Progress.BatchID, err)
		return
	}
	if _, err := j.w.Write(line); err != nil {
		j.err = fmt.Errorf("progress: write progress file batch %d: %w", e.Progress.BatchID, err)
		return
	}
	j.lines++
}

// OnQueryStarted does nothing.
func (j *JSONLinesWriter) OnQueryStarted(StartedEvent) {}

// OnQueryIdle does nothing.
func (j *JSONLinesWriter) OnQueryIdle(IdleEvent) {}

// OnQueryTerminated does nothing.
func (j *JSONLinesWriter) OnQueryTerminated(TerminatedEvent) {}

// Lines returns how many reports were written.
func (j *JSONLinesWriter) Lines() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lines
}

// Err returns the first error met, if any.
func (j *JSONLinesWriter) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Close closes the file opened by OpenJSONLinesFile and returns the first
// write error, if any. Later progress events are ignored.
func (j *JSONLinesWriter) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.err
	if j.closer != nil {
		if cerr := j.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("progress: close progress file: %w", cerr)
		}
		j.closer = nil
	}
	j.closed = true
	return err
}
