package torture

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// GroupName is the consumer group (source option sluice.group) of a
// RunMembers torture.
const GroupName = "torture"

// MemberEnv is the environment variable that names a member
// (sluice.group.member) in the torture's pipeline file.
const MemberEnv = "SLUICE_TORTURE_MEMBER"

// Member naming of MembersConfig.Names.
const (
	NamesSlot  = "slot"
	NamesFresh = "fresh"
)

// DefaultMemberMinUp and DefaultMemberMaxUp bound the time between kills
// of a group-mode torture: a killed member's partitions move after the
// session timeout (6 s), so kills closer than that keep the group in one
// long rebalance.
const (
	DefaultMemberMinUp = 3 * time.Second
	DefaultMemberMaxUp = 9 * time.Second
)

// MembersConfig is a torture of group mode: several `sluice run` members
// of one pipeline (source option sluice.group) while a producer writes.
type MembersConfig struct {
	Config
	// Members is how many members run from the start; 0 means 3.
	Members int
	// Partitions of the input and output topics; 0 means 12.
	Partitions int
	// ShutdownTimeout is the members' --shutdown-timeout and how long a
	// graceful stop may take before it counts as failed; 0 means 20 s.
	ShutdownTimeout time.Duration
	// Names is how restarted members are named (sluice.group.member):
	// NamesSlot (default) restarts a killed member under its name, as a
	// StatefulSet pod or a container restarted in its pod (PID 1 keeps
	// the default HOSTNAME-PID) would; NamesFresh leaves the option unset
	// and every process has a new HOSTNAME-PID name, as a replacement pod
	// of a Deployment has.
	Names string
	// Settle bounds the wait, after the producer finished, for the
	// group's committed offsets to reach the end of the input; 0 means
	// 2 minutes.
	Settle time.Duration
	// MemberLogLevel is the members' --log-level; "" means error. A
	// stalled run prints the last 64 KiB each live member logged, so
	// "info" or "debug" says what each was doing, and then where its
	// goroutines wait (each live member is ended with SIGQUIT).
	MemberLogLevel string
	// LogDir, when set, keeps each member process's whole log there too
	// (NAME-PID.log), and the broker's at debug level (broker.log: the
	// group requests it saw), for a run to be studied after it ended.
	LogDir string
}

// MembersResult is what a group-mode torture did and found.
type MembersResult struct {
	// Members is how many member processes were started in all
	// (restarts and the added member included); Peak the most that ran
	// at once.
	Members, Peak int
	Kills         int
	// Added is how many members joined a running group on top of the
	// initial ones; Stopped how many were stopped with SIGTERM (the one
	// in the middle of the run and all of them at the end), StopFailed
	// how many of those did not exit 0 within ShutdownTimeout.
	Added, Stopped, StopFailed int
	// Rebalances counts the assignments observed after the first stable
	// one: each time the group, polled every 100 ms, was Stable with a
	// different member → partitions map than the last one seen. Two
	// rebalances closer than the poll count once.
	Rebalances int
	// Crashes counts members that exited on their own (each was started
	// again under its name); CrashErrors has the last line each logged.
	Crashes     int
	CrashErrors []string
	Produced    int
	// Output, Distinct, Lost and Duplicated are as in Result, by record.
	Output, Distinct, Lost, Duplicated int
}

func (r MembersResult) String() string {
	return fmt.Sprintf("members %d started (%d at most at once, %d added, %d stopped gracefully, %d of those failed), %d kills, %d crashes, %d rebalances; produced %d, output %d (%d distinct): %d lost, %d duplicated",
		r.Members, r.Peak, r.Added, r.Stopped, r.StopFailed, r.Kills, r.Crashes, r.Rebalances, r.Produced, r.Output, r.Distinct, r.Lost, r.Duplicated)
}

// ExactlyOnce reports that the output holds every produced record once.
func (r MembersResult) ExactlyOnce() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Output == r.Produced && r.Produced > 0
}

// OK reports exactly-once output, clean graceful stops and no member
// that exited on its own.
func (r MembersResult) OK() bool {
	return r.ExactlyOnce() && r.StopFailed == 0 && r.Crashes == 0
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// member is one running `sluice run` child.
type member struct {
	name   string // sluice.group.member: its slot, kept across restarts
	stderr *tailBuffer
	exited chan error
	done   bool
	cmd    *os.Process
	pid    int
	began  time.Time // when the process was started
}

// memberStderrKept is how much of a member's stderr the torture keeps:
// room for a goroutine dump after its log; stallLogTail is how much of the
// log a stall prints.
const (
	memberStderrKept = 4 << 20
	stallLogTail     = 64 << 10
)

// goroutines asks the member for its goroutines with SIGQUIT (the Go
// runtime prints every goroutine's stack to stderr and exits 2), waits up
// to wait for it to exit and returns the stacks that pass through sluice's
// Kafka source, its engine or franz-go's group client: what a stalled
// member is blocked on.
func (m *member) goroutines(wait time.Duration) string {
	if m.done {
		return "(exited)"
	}
	from := m.stderr.Written()
	if err := m.cmd.Signal(syscall.SIGQUIT); err != nil {
		return fmt.Sprintf("(SIGQUIT: %v)", err)
	}
	select {
	case <-m.exited:
		m.done = true
	case <-time.After(wait):
		return "(no dump within " + wait.String() + ")"
	}
	return interestingStacks(m.stderr.Since(from), 48<<10)
}

// interestingStacks keeps, of a Go goroutine dump, the goroutines whose
// stack names sluice's source, engine or sink packages or franz-go's group
// and consumer code, at most max bytes of them.
func interestingStacks(dump string, max int) string {
	var b strings.Builder
	for _, g := range strings.Split(dump, "\n\n") {
		if !strings.HasPrefix(strings.TrimSpace(g), "goroutine ") {
			continue
		}
		if !strings.Contains(g, "sluice/internal/source/kafka") && !strings.Contains(g, "sluice/internal/engine") &&
			!strings.Contains(g, "sluice/internal/sink") && !strings.Contains(g, "kgo.(*groupConsumer)") &&
			!strings.Contains(g, "kgo.(*consumer)") && !strings.Contains(g, "kgo.(*cooperativeSticky") {
			continue
		}
		if b.Len()+len(g) > max {
			b.WriteString("... (more goroutines left out)\n")
			break
		}
		b.WriteString(strings.TrimSpace(g))
		b.WriteString("\n\n")
	}
	if b.Len() == 0 {
		return "(no goroutine dump read)"
	}
	return b.String()
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// memberStartGrace is how long a member has run before the torture stops
// it gracefully: a SIGTERM that lands before the process has set up its
// signal handling (the Go runtime and package initialisation, longer in a
// test binary on a loaded machine) ends it with the signal's default
// action, which says nothing about sluice's shutdown.
const memberStartGrace = 2 * time.Second

// RunMembers tortures group mode: it starts c.Members members of the copy
// pipeline with sluice.group on a c.Partitions-partition topic while a
// producer writes c.Records records, then, c.Kills times at random
// moments (MinUp..MaxUp apart), SIGKILLs a random member and starts a new
// one in its place. A third of the way through it adds a member; two
// thirds of the way it stops one with SIGTERM (which must exit 0 within
// ShutdownTimeout) and does not replace it. After the producer finished
// it waits until the group's committed offsets reach the end of the
// input, stops every member with SIGTERM, and checks the sink's committed
// output (Kafka: read_committed) holds every record exactly once.
func RunMembers(ctx context.Context, c MembersConfig) (MembersResult, error) {
	var res MembersResult
	if c.Members <= 0 {
		c.Members = 3
	}
	if c.Partitions <= 0 {
		c.Partitions = 12
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
	if c.MemberLogLevel == "" {
		c.MemberLogLevel = "error"
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.MinUp <= 0 {
		c.MinUp = DefaultMemberMinUp
	}
	if c.MaxUp <= c.MinUp {
		c.MaxUp = c.MinUp + (DefaultMemberMaxUp - DefaultMemberMinUp)
	}
	if c.Sink == "" {
		c.Sink = "kafka"
	}
	switch c.Pipeline {
	case "", "copy":
		c.Pipeline = "copy"
	default:
		return res, fmt.Errorf("torture: pipeline %q: group mode is tortured with the copy pipeline only", c.Pipeline)
	}
	if c.Store != "" && c.Store != "local" {
		return res, fmt.Errorf("torture: store %q: group mode is tortured on the local store only", c.Store)
	}
	switch c.Names {
	case "", NamesSlot:
		c.Names = NamesSlot
	case NamesFresh:
		c.freshNames = true
	default:
		return res, fmt.Errorf("torture: member names %q (allowed: %s, %s)", c.Names, NamesSlot, NamesFresh)
	}
	c.group, c.partitions = GroupName, c.Partitions
	if c.LogDir != "" {
		c.brokerLog = filepath.Join(c.LogDir, "broker.log")
	}
	r := rand.New(rand.NewPCG(c.Seed, c.Seed^0x6e0b))

	addr, stopBroker, err := c.startBroker(ctx)
	if err != nil {
		return res, err
	}
	defer stopBroker()
	pipeline, err := c.pipeline(addr, "processingTime: 100 milliseconds")
	if err != nil {
		return res, err
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	rebalances, watchDone, err := watchGroup(watchCtx, addr, GroupName)
	if err != nil {
		stopWatch()
		return res, err
	}
	defer func() { stopWatch(); <-watchDone }()

	var live []*member
	defer func() { // a failed run leaves nothing behind
		for _, m := range live {
			if !m.done {
				m.cmd.Signal(syscall.SIGKILL)
				<-m.exited
			}
		}
	}()
	slots := 0
	start := func(name string) error {
		if name == "" {
			slots++
			name = fmt.Sprintf("member-%d", slots)
		}
		res.Members++
		cmd := c.cmd(ctx, "run", pipeline, "--quiet", "--ui-addr", "off", "--log-level", c.MemberLogLevel,
			"--shutdown-timeout", c.ShutdownTimeout.String())
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, MemberEnv+"="+name)
		m := &member{name: name, stderr: &tailBuffer{max: memberStderrKept}, exited: make(chan error, 1)}
		cmd.Stderr = m.stderr
		var logFile *os.File
		if c.LogDir != "" {
			f, err := os.CreateTemp(c.LogDir, name+"-*.log")
			if err != nil {
				return err
			}
			logFile = f
			cmd.Stderr = io.MultiWriter(m.stderr, f)
		}
		if err := cmd.Start(); err != nil {
			if logFile != nil {
				logFile.Close()
			}
			return err
		}
		m.cmd, m.pid, m.began = cmd.Process, cmd.Process.Pid, time.Now()
		go func() {
			err := cmd.Wait() // the log's writes end with the process
			if logFile != nil {
				logFile.Close()
			}
			m.exited <- err
		}()
		live = append(live, m)
		res.Peak = max(res.Peak, len(live))
		return nil
	}
	// checkAlive restarts, under the same name, every member that exited
	// on its own (as a container platform would) and counts it as a
	// crash with the last line it logged.
	var checkAlive func() error
	checkAlive = func() error {
		for _, m := range slices.Clone(live) {
			select {
			case err := <-m.exited:
				m.done = true
				res.Crashes++
				why := lastLine(m.stderr.String())
				res.CrashErrors = append(res.CrashErrors, fmt.Sprintf("%s (pid %d): %v: %s", m.name, m.pid, err, why))
				fmt.Fprintf(c.Out, "CRASH: %s (pid %d) exited on its own (%v): %s\n", m.name, m.pid, err, why)
				live = slices.DeleteFunc(live, func(x *member) bool { return x == m })
				if err := start(m.name); err != nil {
					return err
				}
			default:
			}
		}
		return nil
	}
	remove := func(m *member) { live = slices.DeleteFunc(live, func(x *member) bool { return x == m }) }
	// stop sends SIGTERM and waits for exit 0 within the shutdown timeout
	// (plus a margin for the process to start up and leave the group).
	stop := func(m *member) {
		res.Stopped++
		if young := memberStartGrace - time.Since(m.began); young > 0 {
			time.Sleep(young)
		}
		began := time.Now()
		m.cmd.Signal(syscall.SIGTERM)
		select {
		case err := <-m.exited:
			m.done = true
			if err != nil {
				res.StopFailed++
				fmt.Fprintf(c.Out, "%s (pid %d): SIGTERM: %v\n%s\n", m.name, m.pid, err, m.stderr)
			} else {
				fmt.Fprintf(c.Out, "%s (pid %d) stopped gracefully in %s\n", m.name, m.pid, time.Since(began).Round(time.Millisecond))
			}
		case <-time.After(c.ShutdownTimeout + 10*time.Second):
			res.StopFailed++
			m.cmd.Signal(syscall.SIGKILL)
			<-m.exited
			m.done = true
			fmt.Fprintf(c.Out, "%s (pid %d): still running %s after SIGTERM; killed\n%s\n", m.name, m.pid, time.Since(began).Round(time.Millisecond), m.stderr)
		}
		remove(m)
	}

	for range c.Members {
		if err := start(""); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(c.Out, "%d members of group %s on %d partitions, sink %s, %s member names\n", c.Members, GroupName, c.Partitions, c.Sink, c.Names)
	prod, err := c.startProducer(ctx, addr, time.Duration(c.Kills)*(c.MinUp+c.MaxUp)/2)
	if err != nil {
		return res, err
	}
	defer prod.close()

	addAt, stopAt := c.Kills/3, 2*c.Kills/3
	for k := 0; k < c.Kills; k++ {
		up := c.MinUp + time.Duration(r.Int64N(int64(c.MaxUp-c.MinUp)))
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(up):
		}
		if err := checkAlive(); err != nil {
			return res, err
		}
		if k == addAt {
			if err := start(""); err != nil {
				return res, err
			}
			res.Added++
			m := live[len(live)-1]
			fmt.Fprintf(c.Out, "added %s (pid %d): %d running\n", m.name, m.pid, len(live))
		}
		if k == stopAt && len(live) > 1 {
			stop(live[r.IntN(len(live))])
		}
		victim := live[r.IntN(len(live))]
		victim.cmd.Signal(syscall.SIGKILL)
		<-victim.exited
		victim.done = true
		remove(victim)
		res.Kills++
		if err := start(victim.name); err != nil {
			return res, err
		}
		fmt.Fprintf(c.Out, "kill %d/%d: %s (pid %d) after %s, restarted as pid %d (produced so far: %d, rebalances seen: %d)\n",
			k+1, c.Kills, victim.name, victim.pid, up.Round(time.Millisecond), live[len(live)-1].pid, prod.produced.Load(), rebalances.Load())
	}
	if res.Produced, err = prod.wait(); err != nil {
		return res, err
	}
	fmt.Fprintf(c.Out, "producer done: %d records; waiting for the group to commit them all\n", res.Produced)
	if err := waitCaughtUp(ctx, addr, GroupName, "torture", c.Settle, checkAlive); err != nil {
		// A stall: say who owns what, what each live member logged and
		// where its goroutines wait (the Go runtime's SIGQUIT dump).
		fmt.Fprintf(c.Out, "STALL: %v\n%s", err, describeStall(ctx, addr, GroupName, "torture"))
		for _, m := range live {
			logged := m.stderr.String()
			stacks := m.goroutines(5 * time.Second)
			fmt.Fprintf(c.Out, "--- %s (pid %d, up %s) logged:\n%s\n", m.name, m.pid, time.Since(m.began).Round(time.Second), tail(logged, stallLogTail))
			fmt.Fprintf(c.Out, "--- %s (pid %d) goroutines of the source, the engine and the group client:\n%s\n", m.name, m.pid, stacks)
		}
		return res, err
	}
	for len(live) > 0 {
		stop(live[0])
	}
	res.Rebalances = int(rebalances.Load())

	var values []string
	if c.Sink == "kafka" {
		values, err = readCommitted(ctx, addr, "torture-out")
	} else {
		values, err = c.readOutput(ctx, addr)
	}
	if err != nil {
		return res, err
	}
	res.Output, res.Distinct, res.Lost, res.Duplicated = countCopies(values, res.Produced)
	return res, nil
}

// watchGroup polls the group's description every 100 ms and counts the
// stable assignments after the first one that differ from the previous.
func watchGroup(ctx context.Context, addr, group string) (*atomic.Int64, <-chan struct{}, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, nil, err
	}
	n := &atomic.Int64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cl.Close()
		adm := kadm.NewClient(cl)
		last := ""
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			dg, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				continue
			}
			g, ok := dg[group]
			if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) == 0 {
				continue
			}
			if a := assignmentKey(g); a != last {
				if last != "" {
					n.Add(1)
				}
				last = a
			}
		}
	}()
	return n, done, nil
}

// assignmentKey is a stable group's member → partitions map as text.
func assignmentKey(g kadm.DescribedGroup) string {
	var parts []string
	for _, m := range g.Members {
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		var ps []string
		for _, t := range c.Topics {
			for _, p := range t.Partitions {
				ps = append(ps, fmt.Sprintf("%s/%d", t.Topic, p))
			}
		}
		slices.Sort(ps)
		parts = append(parts, m.MemberID+"="+strings.Join(ps, ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// waitCaughtUp waits until group has committed the end offset of every
// partition of topic, failing after timeout or when alive reports a
// member that exited on its own.
func waitCaughtUp(ctx context.Context, addr, group, topic string, timeout time.Duration, alive func() error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if err := alive(); err != nil {
			return err
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			var committed kadm.OffsetResponses
			committed, err = adm.FetchOffsets(ctx, group)
			if err == nil {
				behind := 0
				var lag int64
				ends.Each(func(e kadm.ListedOffset) {
					o, ok := committed.Lookup(e.Topic, e.Partition)
					if e.Offset > 0 && (!ok || o.Err != nil || o.At < e.Offset) {
						behind++
						if ok && o.At >= 0 {
							lag += e.Offset - o.At
						} else {
							lag += e.Offset
						}
					}
				})
				if behind == 0 {
					return nil
				}
				last = fmt.Sprintf("%d partitions (%d records) not committed", behind, lag)
			}
		}
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("torture: the group did not commit the whole input within %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// describeStall lists, for every partition of topic whose committed
// offset in group is behind its end, the committed and end offsets and
// the member that owns it, to explain a run whose group did not catch up.
func describeStall(ctx context.Context, addr, group, topic string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err.Error() + "\n"
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	owner := map[int32]string{}
	state := "?"
	var members strings.Builder
	if dg, err := adm.DescribeGroups(ctx, group); err == nil {
		if g, ok := dg[group]; ok {
			state = g.State
			for _, m := range g.Members {
				n := 0
				if a, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range a.Topics {
						n += len(t.Partitions)
					}
				}
				fmt.Fprintf(&members, "  member %s (%s from %s): %d partitions assigned\n", m.MemberID, m.ClientID, m.ClientHost, n)
			}
			for _, m := range g.Members {
				if a, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range a.Topics {
						for _, p := range t.Partitions {
							inst := "-"
							if m.InstanceID != nil {
								inst = *m.InstanceID
							}
							owner[p] = m.MemberID + " (" + m.ClientID + ", instance " + inst + ")"
						}
					}
				}
			}
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err.Error() + "\n"
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err.Error() + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "group %s is %s\n%s", group, state, members.String())
	ends.Each(func(e kadm.ListedOffset) {
		o, ok := committed.Lookup(e.Topic, e.Partition)
		at := int64(-1)
		if ok && o.Err == nil {
			at = o.At
		}
		mark := ""
		if at < e.Offset {
			mark = "  BEHIND"
		}
		fmt.Fprintf(&b, "  %s/%d committed %d end %d owner %s%s\n", e.Topic, e.Partition, at, e.Offset, owner[e.Partition], mark)
	})
	return b.String()
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent
// use.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	b       []byte
	written int64 // bytes written in all
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.written += int64(len(p))
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// Written is how many bytes were written in all.
func (t *tailBuffer) Written() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written
}

// Since returns what was written after the first n bytes, as much of it
// as the buffer still holds.
func (t *tailBuffer) Since(n int64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := int64(len(t.b)) - (t.written - n)
	return string(t.b[max(start, 0):])
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
