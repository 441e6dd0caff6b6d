package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/loadgen"
)

// The latency runs put the broker and the load generator in processes of
// their own (`sluice broker`, `sluice loadgen`), as a user's are: each run
// gets a fresh broker that holds only its own topic. Inside the bench
// process the broker also holds the preloaded topic and the earlier runs'
// records (1–2 GB by the latency runs), and that process's collections —
// which mark all of it — stalled the broker's answers and the producer's
// ticks together for tens to hundreds of milliseconds (records stamped at a
// tick reached the broker 100 ms later): time the query could not have
// seen, counted as its latency. The three processes still share the
// machine's cores.

// brokerChild is a `sluice broker` child serving one topic.
type brokerChild struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// pid is the broker child's process id.
func (b *brokerChild) pid() int { return b.cmd.Process.Pid }

// startBrokerChild starts `sluice broker` on a free port with topic and
// waits until it listens.
func startBrokerChild(ctx context.Context, cfg *Config, topic string, partitions int) (*brokerChild, error) {
	cmd := cfg.Command("broker", "--listen", "127.0.0.1:0", "--auto-create-topics=false",
		"--topic", topic+":"+strconv.Itoa(partitions), "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("broker child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("broker child: start %s: %w", cmd.Path, err)
	}
	b := &brokerChild{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() { // read to the end, so the child never blocks on its stdout
			if a, ok := strings.CutPrefix(sc.Text(), "bootstrap servers: "); ok && !sent {
				addr <- strings.TrimSpace(a)
				sent = true
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case b.addr = <-addr:
		return b, nil
	case <-b.done:
		return nil, errors.New("broker child: exited before it listened")
	case <-time.After(30 * time.Second):
		b.stop()
		return nil, errors.New("broker child: not listening after 30 s")
	case <-ctx.Done():
		b.stop()
		return nil, ctx.Err()
	}
}

// stop ends the broker child (SIGINT, then SIGKILL after 10 s) and waits.
func (b *brokerChild) stop() {
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// loadgenJSON is the part of `sluice loadgen --json`'s result the latency
// run uses.
type loadgenJSON struct {
	DurationSec    float64 `json:"duration_sec"`
	Acked          int64   `json:"acked"`
	AchievedPerSec float64 `json:"achieved_per_sec"`
	Throttled      bool    `json:"throttled"`
}

// loadResult is what the latency run needs of a load generator's run.
type loadResult struct {
	Duration  time.Duration
	Acked     int64
	Achieved  float64
	Throttled bool
	// CPU is the load generator child's user + system time (-1 in process).
	CPU time.Duration
}

func fromLoadgen(r loadgen.Result) loadResult {
	return loadResult{Duration: r.Duration, Acked: r.Acked, Achieved: r.AchievedRate(), Throttled: r.Throttled(), CPU: -1}
}

// LatencyProducerLinger is the latency runs' producer linger: none, as
// the producer of Kafka's own end-to-end latency tool (linger.ms=0) and as
// a producer tuned for latency. The load generator's default (2 ms) fills
// larger batches at high rates, but every record then waits for it before
// the broker has it — time no consumer could save, which the latency rows
// used to count as the query's.
const LatencyProducerLinger time.Duration = 0

// loadgenChild runs `sluice loadgen` against addr with the settings the
// in-process latency load uses (orders shape, seed 1, 1,000 keys, 100,000
// records buffered at most, LatencyProducerLinger) and returns its result.
func loadgenChild(ctx context.Context, cfg *Config, addr, topic string, rate float64, d time.Duration) (loadResult, error) {
	cmd := cfg.Command("loadgen", "--bootstrap", addr, "--topic", topic, "--partitions", strconv.Itoa(cfg.Partitions),
		"--profile", "steady", "--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--duration", d.String(),
		"--shape", loadgen.ShapeOrders, "--seed", "1", "--keys", "1000", "--max-buffered", "100000",
		"--linger", LatencyProducerLinger.String(), "--json", "--quiet", "--log-level", "error")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("loadgen child: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var j loadgenJSON
	if err := json.Unmarshal(out, &j); err != nil {
		return loadResult{}, fmt.Errorf("loadgen child: result %q: %w", out, err)
	}
	return loadResult{Duration: time.Duration(j.DurationSec * float64(time.Second)), Acked: j.Acked, Achieved: j.AchievedPerSec, Throttled: j.Throttled,
		CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
}
