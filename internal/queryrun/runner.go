package queryrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/progress"
)

// Runner starts a query from its pipeline file, appending every batch's
// progress to progressFile as JSON lines (none when it is "").
type Runner interface {
	Start(ctx context.Context, pipelineFile, progressFile string) (Process, error)
	// Describe says how queries run, for the report.
	Describe() string
}

// Process is a running query.
type Process interface {
	// PID is the operating-system process running the query, or 0 when it
	// runs inside this process (its memory cannot be told apart then).
	PID() int
	// Stop asks the query to stop after its current batch and waits; it
	// returns the query's failure, if any.
	Stop() error
	// Done is closed when the query has stopped on its own or by Stop.
	Done() <-chan struct{}
	// PeakRSS is the process's peak resident memory as it reported it at
	// exit, or -1 when unknown. Valid after Done.
	PeakRSS() int64
	// CPUTime is the user + system CPU time the process used over its
	// whole life, or -1 when unknown (inside this process). Valid after
	// Done.
	CPUTime() time.Duration
}

// ChildRunner runs each query as `sluice run FILE --progress-file F
// --stats --quiet` in a child process, so that its memory and CPU are
// measured apart from the broker and the load generator.
type ChildRunner struct {
	// Command returns the command for the sluice arguments given, e.g.
	// exec.Command(os.Executable(), args...).
	Command func(args ...string) *exec.Cmd
	// Stderr receives the child's stderr lines (nil: discarded); the last
	// lines are also kept for error messages.
	Stderr io.Writer
	// StopTimeout bounds the wait after SIGTERM before the child is
	// killed (default 30 s).
	StopTimeout time.Duration
	// CPUProfile, if set, is where the child writes a CPU profile of its
	// whole run (`sluice run --cpuprofile`), complete once it has stopped.
	CPUProfile string
}

// Describe implements Runner.
func (r *ChildRunner) Describe() string {
	return "each query runs in its own process (`sluice run`); memory is that process's resident set"
}

// Start implements Runner.
func (r *ChildRunner) Start(ctx context.Context, pipelineFile, progressFile string) (Process, error) {
	args := []string{"run", pipelineFile}
	if progressFile != "" {
		args = append(args, "--progress-file", progressFile)
	}
	if r.CPUProfile != "" {
		args = append(args, "--cpuprofile", r.CPUProfile)
	}
	cmd := r.Command(append(args, "--stats", "--quiet", "--log-level", "warn")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("queryrun: child stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("queryrun: start %s: %w", cmd.Path, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), peak: -1, timeout: r.StopTimeout}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	go c.wait(stderr, r.Stderr)
	return c, nil
}

var peakRE = regexp.MustCompile(`peak RSS: (\d+) bytes`)

type child struct {
	cmd     *exec.Cmd
	done    chan struct{}
	timeout time.Duration

	mu   sync.Mutex
	tail []string
	peak int64
	err  error
}

func (c *child) PID() int              { return c.cmd.Process.Pid }
func (c *child) Done() <-chan struct{} { return c.done }

func (c *child) PeakRSS() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

func (c *child) CPUTime() time.Duration {
	select {
	case <-c.done:
	default:
		return -1
	}
	st := c.cmd.ProcessState
	if st == nil {
		return -1
	}
	return st.UserTime() + st.SystemTime()
}

// wait reads the child's stderr until it exits.
func (c *child) wait(stderr io.Reader, copyTo io.Writer) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		if m := peakRE.FindStringSubmatch(line); m != nil {
			c.peak, _ = strconv.ParseInt(m[1], 10, 64)
		}
		c.tail = append(c.tail, line)
		if len(c.tail) > 20 {
			c.tail = c.tail[1:]
		}
		c.mu.Unlock()
		if copyTo != nil {
			fmt.Fprintln(copyTo, line)
		}
	}
	err := c.cmd.Wait()
	c.mu.Lock()
	if err != nil {
		c.err = fmt.Errorf("query process: %w; last output:\n%s", err, strings.Join(c.tail, "\n"))
	}
	c.mu.Unlock()
	close(c.done)
}

func (c *child) Stop() error {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(c.timeout):
			_ = c.cmd.Process.Kill()
			<-c.done
			return fmt.Errorf("query process did not stop within %s of SIGTERM; killed", c.timeout)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// InProcessRunner runs each query inside this process through the public
// API. Timing is as good as with a child process, but memory and CPU
// cannot be measured apart from the broker and the load generator: PID is
// 0, PeakRSS and CPUTime -1.
type InProcessRunner struct {
	Logger *slog.Logger
}

// Describe implements Runner.
func (r *InProcessRunner) Describe() string {
	return "each query runs inside the measuring process; its memory is not measured"
}

// Start implements Runner.
func (r *InProcessRunner) Start(ctx context.Context, pipelineFile, progressFile string) (Process, error) {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, err := sluice.NewSession(sluice.WithLogger(log)).PipelineFile(pipelineFile)
	if err != nil {
		return nil, err
	}
	var jl *progress.JSONLinesWriter
	if progressFile != "" {
		if jl, err = progress.OpenJSONLinesFile(progressFile); err != nil {
			return nil, err
		}
		w.AddListener(jl)
	}
	w.Stdout(io.Discard)
	q, err := w.Start(ctx)
	if err != nil {
		if jl != nil {
			jl.Close()
		}
		return nil, err
	}
	p := &inProcess{q: q, jl: jl, done: make(chan struct{})}
	go func() {
		_ = q.AwaitTermination(context.Background())
		close(p.done)
	}()
	return p, nil
}

type inProcess struct {
	q    *sluice.StreamingQuery
	jl   *progress.JSONLinesWriter
	done chan struct{}
	once sync.Once
	err  error
}

func (p *inProcess) PID() int               { return 0 }
func (p *inProcess) Done() <-chan struct{}  { return p.done }
func (p *inProcess) PeakRSS() int64         { return -1 }
func (p *inProcess) CPUTime() time.Duration { return -1 }

func (p *inProcess) Stop() error {
	p.once.Do(func() {
		err := p.q.Stop()
		<-p.done
		var cerr error
		if p.jl != nil {
			cerr = p.jl.Close()
		}
		p.err = errors.Join(err, p.q.Exception(), cerr)
	})
	return p.err
}
