package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/kgolog"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// Group mode (sluice.group).
//
// Many processes run the same pipeline as members of one Kafka consumer
// group; the group protocol (cooperative-sticky balancer) assigns each its
// partitions, and each runs its own micro-batches over the partitions it
// owns. The group's committed offsets are the truth: a partition a member
// is given starts at the group's committed offset (startingOffsets,
// earliest or latest, when the group has none), and every batch ends by
// committing its end offsets to the group — inside the output transaction
// for the Kafka sink (UseGroupTransactions: the consuming client is then a
// kgo.GroupTransactSession that also produces the sink's records), after
// the sink's commit for the others (at least once).
//
// The assignment callbacks keep the source's view (assigned, committed)
// in step with the group: a partition revoked or lost while a batch reads
// it fails the batch's tasks with source.ErrRevoked, and a transaction
// that a rebalance overtook is aborted by the session; either way the
// batch is abandoned and nothing of it is committed.

// groupState is the source's group-mode state. Its maps are guarded by the
// source's fmu, like the read path's.
type groupState struct {
	name, member string
	// opts are the consuming client's options without the group ones;
	// producer the sink's, when the sink commits through a transaction.
	opts          []kgo.Opt
	producer      []kgo.Opt
	transactional bool
	// admCl serves listings (kadm), outside the group.
	admCl *kgo.Client
	sess  *kgo.GroupTransactSession
	// connected: the group client exists (or failed to be created: err).
	connected bool
	err       error

	// committed is, per owned partition, where its next batch starts:
	// the group's committed offset when it was assigned, then the end of
	// each batch this member committed. A partition assigned but absent
	// here is resolved by the next Available.
	committed map[partition.ID]int64
	// unsent are, per owned partition, batch end offsets the sink has
	// committed but the group has not (the group commit failed: a
	// rebalance in progress, a fenced generation, a coordinator that
	// moved). Every plan sends them again until the group takes them;
	// without that the group's offset stays behind — forever for a
	// partition that gets no more records — and kafka-consumer-groups,
	// Burrow and `sluice status --group` show lag that is not there.
	// Not used with the Kafka sink's transactions.
	unsent map[partition.ID]int64
	// gen counts assignment changes; plannedGen is gen when the last plan
	// (groupAvailable) began: a wait for data after a plan that an
	// assignment change overtook ends at once.
	gen, plannedGen uint64
	// batchStart and batchEnd are the open batch's offsets; batchEnd is
	// what its transaction commits to the group.
	batchStart, batchEnd Offsets
	// sinkStarts, when set, tells where the sink's own record says a
	// partition starts (the Delta table's txn per partition): it wins
	// over the group's offsets (SetSinkOffsets).
	sinkStarts func(tps []partition.ID) (map[partition.ID]int64, error)
	// changed is signalled on assignment changes (groupWaitForData).
	changed chan struct{}
	// joined is closed by the first assignment (franz-go calls
	// OnPartitionsAssigned after every join, also with nothing new).
	joined     chan struct{}
	joinedOnce sync.Once
	// renew asks Abandoned to replace the transactional session (a fenced
	// transaction, SessionFenced); fences are when the recent ones were.
	renew  bool
	fences []time.Time
}

func newGroupState(cfg *Config, opts []kgo.Opt) *groupState {
	return &groupState{name: cfg.Group, member: cfg.Member, opts: opts, committed: map[partition.ID]int64{}, unsent: map[partition.ID]int64{}, changed: make(chan struct{}, 1), joined: make(chan struct{})}
}

// memberName is a member's name: letters, digits, '.', '_' and '-' (it
// names a directory and is part of a transactional id).
var memberName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// DefaultMember is the member name used when sluice.group.member is not
// set: the host name and the process id.
func DefaultMember() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "sluice"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, host)
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// parseGroup reads the group-mode options and checks they fit the rest.
func parseGroup(o options.Values, c *Config) error {
	ms := func(name string) time.Duration { return time.Duration(o.Int64(name)) * time.Millisecond }
	c.SessionTimeout, c.HeartbeatInterval, c.RebalanceTimeout = ms("kafka.session.timeout.ms"), ms("kafka.heartbeat.interval.ms"), ms("kafka.rebalance.timeout.ms")
	c.Group = strings.TrimSpace(o.String("sluice.group"))
	member := strings.TrimSpace(o.String("sluice.group.member"))
	instance := strings.TrimSpace(o.String("kafka.group.instance.id"))
	if c.Group == "" {
		if member != "" {
			return &options.Error{Option: "sluice.group.member", Value: member, Allowed: `names a member of a group: set "sluice.group" too`}
		}
		if instance != "" {
			return &options.Error{Option: "kafka.group.instance.id", Value: instance, Allowed: `static membership of a group: set "sluice.group" too`}
		}
		return nil
	}
	if o.Has("kafka.group.instance.id") && !memberName.MatchString(instance) {
		return &options.Error{Option: "kafka.group.instance.id", Value: instance, Allowed: "allowed: 1 to 128 letters, digits, '.', '_' or '-' (a stable name per member, e.g. the StatefulSet pod name)"}
	}
	c.InstanceID = instance
	if member == "" {
		member = DefaultMember()
	}
	if !memberName.MatchString(member) {
		return &options.Error{Option: "sluice.group.member", Value: member, Allowed: "allowed: 1 to 128 letters, digits, '.', '_' or '-'"}
	}
	c.Member = member
	if !o.Has("kafka.client.id") {
		// Members told apart by client id too (kafka-consumer-groups
		// --members, sluice status --group, broker logs and quotas).
		c.ClientID += "-" + member
	}
	switch {
	case c.Assign != nil:
		return &options.Error{Option: "assign", Allowed: `not with "sluice.group": in group mode the group assigns the partitions; use "subscribe" or "subscribePattern"`}
	case c.CommitGroup != "":
		return &options.Error{Option: "sluice.commitGroup", Value: c.CommitGroup, Allowed: `not with "sluice.group": in group mode every batch commits to the group itself`}
	case c.StartingJSON != nil || c.StartingTopics != nil || c.StartingTimestamp >= 0 || c.StartingByTimestamp != nil:
		opt := "startingOffsets"
		if c.StartingTimestamp >= 0 {
			opt = "startingTimestamp"
		} else if c.StartingByTimestamp != nil {
			opt = "startingOffsetsByTimestamp"
		}
		return &options.Error{Option: opt, Allowed: `with "sluice.group", a partition the group has no offset for starts at "earliest" or "latest" (startingOffsets); per-partition or timestamp starts are not supported in group mode`}
	case c.HeartbeatInterval >= c.SessionTimeout:
		return &options.Error{Option: "kafka.heartbeat.interval.ms", Value: fmt.Sprint(c.HeartbeatInterval.Milliseconds()),
			Allowed: fmt.Sprintf("must be below kafka.session.timeout.ms (%d)", c.SessionTimeout.Milliseconds())}
	}
	return nil
}

// Group returns the consumer group of group mode ("" otherwise).
func (s *Source) Group() string { return s.cfg.Group }

// Member returns this member's name in group mode ("" otherwise).
func (s *Source) Member() string { return s.cfg.Member }

// UseGroupTransactions makes the group's client a
// kgo.GroupTransactSession with the given producer options, so that the
// Kafka sink produces through it and commits each batch's offsets in its
// transaction (BeginGroupTxn, EndGroupTxn). It must be called before the
// query starts.
func (s *Source) UseGroupTransactions(producer []kgo.Opt) error {
	if s.grp == nil {
		return errors.New(`kafka source: transactions over the group need "sluice.group"`)
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.grp.connected {
		return errors.New("kafka source: the group client is already connected")
	}
	s.grp.producer, s.grp.transactional = producer, true
	return nil
}

// SetSinkOffsets makes the sink's own record of what it wrote the truth
// for where a partition starts when it is assigned (the Delta sink's txn
// per partition); the group's offsets serve the partitions it does not
// know. Call it before the query starts.
func (s *Source) SetSinkOffsets(fn func(tps []partition.ID) (map[partition.ID]int64, error)) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.grp.sinkStarts = fn
}

// GroupBatch returns the start and end offsets of the open batch (group
// mode).
func (s *Source) GroupBatch() (start, end map[partition.ID]int64) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return maps.Clone(partition.Offsets(s.grp.batchStart)), maps.Clone(partition.Offsets(s.grp.batchEnd))
}

// Abandoned implements source.Grouped: after a batch was abandoned, where
// the owned partitions start is read again (from the sink's record and the
// group) at the next plan. When the batch's transaction was fenced
// (SessionFenced), the member first replaces its transactional session
// (renewSession).
func (s *Source) Abandoned() {
	s.fmu.Lock()
	clear(s.grp.committed)
	renew := s.grp.renew
	s.grp.renew = false
	s.fmu.Unlock()
	if renew {
		s.renewSession()
	}
}

// Fences of the group's transaction that a member recovers from in
// process: at most maxFences within fenceWindow. More means another
// process keeps taking the transactional id over (two members with one
// name), and the member stops.
const (
	maxFences   = 3
	fenceWindow = 10 * time.Minute
)

// SessionFenced is called by the Kafka sink when the broker fenced the
// group's transaction: most likely it outlived kafka.transaction.timeout.ms
// (a batch stalled under load) and the broker aborted it and bumped the
// producer's epoch, after which franz-go's session cannot commit again.
// The batch is abandoned, and Abandoned then replaces the session: the
// member leaves the group, rejoins with a fresh transactional producer
// (which fences its old self) and resumes from the group's committed
// offsets, which the fenced transaction never moved. It returns an error
// instead when the member was fenced maxFences times within fenceWindow.
func (s *Source) SessionFenced() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	now := time.Now()
	kept := s.grp.fences[:0]
	for _, at := range s.grp.fences {
		if now.Sub(at) < fenceWindow {
			kept = append(kept, at)
		}
	}
	s.grp.fences = append(kept, now)
	if len(s.grp.fences) > maxFences {
		return fmt.Errorf("kafka source: member %s of group %q was fenced %d times within %s: another process probably runs under the same member name (sluice.group.member), or batches keep outliving kafka.transaction.timeout.ms",
			s.grp.member, s.grp.name, len(s.grp.fences), fenceWindow)
	}
	s.grp.renew = true
	return nil
}

// renewSession replaces the group's client after a fenced transaction:
// the old one is closed (it leaves the group; its partitions are revoked),
// everything it owned or had fetched is forgotten, and a new client joins
// the group, so the partitions it is given start from the group's
// committed offsets as at any assignment.
func (s *Source) renewSession() {
	s.park()
	old, oldSess := s.cl, s.grp.sess
	s.fmu.Unlock() // the fetch goroutine stays parked; the revoke callbacks take the lock
	s.log.Warn("kafka source: the group's transaction was fenced (it most likely outlived kafka.transaction.timeout.ms); leaving the group and rejoining with a fresh transactional session", "group", s.grp.name, "member", s.grp.member)
	if oldSess != nil {
		oldSess.Close()
	} else if old != nil {
		old.Close()
	}
	s.fmu.Lock()
	for tp := range s.assigned {
		s.forget(tp)
	}
	for tp := range s.pos {
		s.forget(tp)
	}
	clear(s.assigned)
	clear(s.paused)
	clear(s.grp.committed)
	clear(s.grp.unsent) // not used with transactions; the next owner catches up from the group anyway
	clear(s.hwm)
	clear(s.hwmAt)
	s.grp.gen++
	s.grp.sess = nil
	s.grp.joined, s.grp.joinedOnce = make(chan struct{}), sync.Once{}
	if s.closed {
		s.grp.err = errors.New("kafka source: closed")
	} else {
		_ = s.newGroupClientLocked() // an error is kept in s.grp.err for the next plan
	}
	s.unpark()
	s.sizeFetches()
}

// connectGroup creates the group's client once: it joins the group.
func (s *Source) connectGroup() error {
	s.fmu.Lock()
	if s.grp.connected {
		err := s.grp.err
		s.fmu.Unlock()
		return err
	}
	s.grp.connected = true
	if s.closed {
		s.grp.err = errors.New("kafka source: closed")
		s.fmu.Unlock()
		return s.grp.err
	}
	if err := s.newGroupClientLocked(); err != nil {
		s.fmu.Unlock()
		return err
	}
	s.fmu.Unlock()
	s.sizeFetches()
	return nil
}

// newGroupClientLocked creates the group's client (a
// GroupTransactSession's with UseGroupTransactions), which joins the
// group. s.fmu is held.
func (s *Source) newGroupClientLocked() error {
	// Where a partition the group has no offset for starts; the source
	// sets every owned partition's position itself (groupStarts), this only
	// covers franz-go's own first fetch after an assignment.
	start := kgo.NewOffset().AtEnd()
	if s.cfg.Starting == "earliest" {
		start = kgo.NewOffset().AtStart()
	}
	opts := append(append([]kgo.Opt{}, s.grp.opts...),
		kgo.ConsumerGroup(s.grp.name),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeStartOffset(start),
		// Offsets deleted before they were read (retention overtook the
		// group's committed offset, or a running member) must reach the
		// reader as OffsetOutOfRange, which fails the query or skips them
		// as failOnDataLoss says — as in one process — rather than be
		// reset past silently.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.SessionTimeout(s.cfg.SessionTimeout),
		kgo.HeartbeatInterval(s.cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(s.cfg.RebalanceTimeout),
		kgo.WithLogger(kgolog.New(s.log, "kafka source group client: ")),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.dropOwned(m, "revoked") }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { s.dropOwned(m, "lost") }),
	)
	if s.cfg.InstanceID != "" {
		// Static membership: a restart under the same id within the
		// session timeout gets its partitions back without a rebalance,
		// and closing does not leave the group.
		opts = append(opts, kgo.InstanceID(s.cfg.InstanceID))
	}
	if s.cfg.Pattern != nil {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(s.cfg.Pattern.String()))
	} else {
		opts = append(opts, kgo.ConsumeTopics(s.cfg.Topics...))
	}
	var err error
	if s.grp.transactional {
		s.grp.sess, err = kgo.NewGroupTransactSession(append(opts, s.grp.producer...)...)
		if err == nil {
			s.cl = s.grp.sess.Client()
		}
	} else {
		s.cl, err = kgo.NewClient(opts...)
	}
	if err != nil {
		s.grp.err = fmt.Errorf("kafka source: create the client of group %q: %w", s.grp.name, s.cfg.Security.Scrub(err))
		return s.grp.err
	}
	s.log.Info("kafka source: joining consumer group", "group", s.grp.name, "member", s.grp.member, "instance", s.cfg.InstanceID, "transactional", s.grp.transactional)
	return nil
}

// closeGroup leaves the group and closes the clients (after stopFetching).
func (s *Source) closeGroup() {
	s.fmu.Lock()
	cl := s.cl
	s.fmu.Unlock()
	if cl != nil {
		cl.Close() // leaves the group (unless static): the others take the partitions over now
	}
	s.grp.admCl.Close()
}

// onAssigned runs on franz-go's group goroutine when partitions are given
// to this member: they start paused with an unknown position; the next
// Available resolves where they start.
func (s *Source) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	defer s.grp.joinedOnce.Do(func() { close(s.grp.joined) })
	var got []string
	for t, ps := range m {
		for _, p := range ps {
			tp := partition.ID{Topic: t, Partition: p}
			s.assigned[tp] = true
			delete(s.paused, tp)
			delete(s.grp.committed, tp)
			delete(s.grp.unsent, tp)
			s.forget(tp)
			got = append(got, tp.String())
		}
	}
	if len(got) == 0 {
		return
	}
	s.grp.gen++
	s.adjustPauses()
	sort.Strings(got)
	s.log.Info("kafka source: partitions assigned by the group", "group", s.grp.name, "member", s.grp.member, "partitions", got)
	s.signalGroupChange()
}

// dropOwned runs on franz-go's group goroutine when partitions are revoked
// or lost: the source forgets them, and a batch reading one of them fails
// with source.ErrRevoked.
func (s *Source) dropOwned(m map[string][]int32, why string) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	var gone []string
	for t, ps := range m {
		for _, p := range ps {
			tp := partition.ID{Topic: t, Partition: p}
			if r := s.cur; r != nil && !r.closed {
				if _, ok := r.ranges[tp]; ok {
					r.failPartition(tp, fmt.Errorf("kafka source: %w: %s-%d was %s", source.ErrRevoked, t, p, why))
				}
			}
			delete(s.assigned, tp)
			delete(s.paused, tp)
			delete(s.grp.committed, tp)
			delete(s.grp.unsent, tp) // its next owner catches the group up from the sink's record
			delete(s.hwm, tp)
			delete(s.hwmAt, tp)
			s.forget(tp)
			gone = append(gone, tp.String())
		}
	}
	if len(gone) == 0 {
		return
	}
	s.grp.gen++
	sort.Strings(gone)
	s.log.Info("kafka source: partitions "+why+" by the group", "group", s.grp.name, "member", s.grp.member, "partitions", gone)
	s.signalGroupChange()
}

func (s *Source) signalGroupChange() {
	select {
	case s.grp.changed <- struct{}{}:
	default:
	}
	select {
	case s.dataCh <- struct{}{}:
	default:
	}
}

// InGroup implements source.Grouped: true in group mode.
func (s *Source) InGroup() bool { return s.grp != nil }

// GroupMember implements source.Grouped.
func (s *Source) GroupMember() source.GroupMember {
	if s.grp == nil {
		return source.GroupMember{}
	}
	s.fmu.Lock()
	cl := s.cl
	parts := make([]partition.ID, 0, len(s.assigned))
	for tp := range s.assigned {
		parts = append(parts, tp)
	}
	s.fmu.Unlock()
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	m := source.GroupMember{Group: s.grp.name, Name: s.grp.member, Partitions: parts}
	if cl != nil {
		m.MemberID, _ = cl.GroupMetadata()
	}
	return m
}

// ownedOnly keeps the partitions this member owns.
func (s *Source) ownedOnly(o Offsets) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for tp := range o {
		if !s.assigned[tp] {
			delete(o, tp)
		}
	}
}

// checkOwned fails with source.ErrRevoked when a partition of a batch is
// no longer owned.
func (s *Source) checkOwned(end Offsets) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for _, tp := range partition.Offsets(end).Sorted() {
		if !s.assigned[tp] {
			return fmt.Errorf("kafka source: %w: %s-%d is no longer owned by member %s", source.ErrRevoked, tp.Topic, tp.Partition, s.grp.member)
		}
	}
	return nil
}

// groupAvailable is Available in group mode: the owned partitions, each
// from where the group (or this member's last commit) says it starts, to
// its latest offset. Partitions whose start is not known yet are resolved
// from the group's committed offsets first.
func (s *Source) groupAvailable(ctx context.Context) (from, latest partition.Offsets, err error) {
	if err := s.connectGroup(); err != nil {
		return nil, nil, err
	}
	// Plan nothing before the member has joined: a once or availableNow
	// query would otherwise end before it was given any partition.
	s.fmu.Lock()
	joined := s.grp.joined // a new one after renewSession
	s.fmu.Unlock()
	select {
	case <-joined:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-time.After(s.cfg.ReconnectTimeout):
		return nil, nil, fmt.Errorf("kafka source: member %s did not join consumer group %q within %s (sluice.reconnect.timeout)", s.grp.member, s.grp.name, s.cfg.ReconnectTimeout)
	}
	if err := s.sendGroupCommits(ctx); err != nil {
		s.log.Warn("kafka source: the group commit failed again", "group", s.grp.name, "member", s.grp.member, "err", err)
	}
	s.fmu.Lock()
	gen := s.grp.gen
	s.grp.plannedGen = gen
	var need []partition.ID
	for tp := range s.assigned {
		if _, ok := s.grp.committed[tp]; !ok {
			need = append(need, tp)
		}
	}
	s.fmu.Unlock()
	if len(need) > 0 {
		starts, err := s.groupStarts(ctx, need)
		if err != nil {
			return nil, nil, err
		}
		s.fmu.Lock()
		if s.grp.gen == gen { // else the assignment moved meanwhile: resolve again next time
			for tp, off := range starts {
				if s.assigned[tp] {
					s.grp.committed[tp] = off
				}
			}
		}
		s.fmu.Unlock()
	}
	l, err := s.listOffsets(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	from, latest = partition.Offsets{}, partition.Offsets{}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for tp := range s.assigned {
		c, ok := s.grp.committed[tp]
		if !ok {
			continue
		}
		lt := l[tp]
		if snap, ok := s.availableNow[tp]; ok {
			lt = min(lt, snap) // availableNow: what the member saw at start
		}
		from[tp] = c
		latest[tp] = max(lt, c)
	}
	return from, latest, nil
}

// groupStarts reads the group's committed offsets of tps, waiting while a
// transaction that commits some of them is still open (KIP-447: the
// broker answers UNSTABLE_OFFSET_COMMIT until it ends). Partitions the
// group has no offset for start as startingOffsets says.
func (s *Source) groupStarts(ctx context.Context, tps []partition.ID) (map[partition.ID]int64, error) {
	out := map[partition.ID]int64{}
	deadline := time.Now().Add(s.cfg.ReconnectTimeout)
	wait := 50 * time.Millisecond
	for {
		resp, err := s.adm.FetchOffsets(kadm.RequireStable(ctx), s.grp.name)
		unstable := errors.Is(err, kerr.UnstableOffsetCommit)
		if err == nil {
			for _, tp := range tps {
				r, ok := resp.Lookup(tp.Topic, tp.Partition)
				switch {
				case ok && errors.Is(r.Err, kerr.UnstableOffsetCommit):
					unstable = true
				case ok && r.Err != nil:
					return nil, fmt.Errorf("kafka source: offsets of group %q for %s-%d: %w", s.grp.name, tp.Topic, tp.Partition, r.Err)
				case ok && r.At >= 0:
					out[tp] = r.At
				}
			}
		}
		if err != nil && !unstable {
			return nil, fmt.Errorf("kafka source: fetch the committed offsets of group %q: %w", s.grp.name, s.cfg.Security.Explain(err))
		}
		if !unstable {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("kafka source: the offsets of group %q stayed locked by an open transaction for %s (sluice.reconnect.timeout)", s.grp.name, s.cfg.ReconnectTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	s.fmu.Lock()
	sinkStarts := s.grp.sinkStarts
	s.fmu.Unlock()
	if sinkStarts != nil {
		recorded, err := sinkStarts(tps)
		if err != nil {
			return nil, fmt.Errorf("kafka source: read where the sink's record says the partitions start: %w", err)
		}
		ahead := map[string]map[int32]kgo.EpochOffset{}
		for tp, off := range recorded {
			if g, ok := out[tp]; !ok || g < off {
				if ahead[tp.Topic] == nil {
					ahead[tp.Topic] = map[int32]kgo.EpochOffset{}
				}
				ahead[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
			}
			out[tp] = off // the sink's record is the truth for what it wrote
		}
		s.catchUpGroup(ctx, ahead)
	}
	var fresh bool
	for _, tp := range tps {
		if _, ok := out[tp]; !ok {
			fresh = true
		}
	}
	if fresh {
		first, err := s.listOffsets(ctx, s.cfg.Starting != "earliest")
		if err != nil {
			return nil, err
		}
		for _, tp := range tps {
			if _, ok := out[tp]; !ok {
				if off, listed := first[tp]; listed {
					out[tp] = off
					s.log.Info("kafka source: the group has no offset for the partition; starting at "+s.cfg.Starting, "group", s.grp.name, "partition", tp.String(), "offset", off)
				}
			}
		}
	}
	return out, nil
}

// catchUpGroup commits to the group the offsets the sink's record is ahead
// of: the previous owner wrote the batch but lost the partition (or died)
// before its group commit. Without this the group's offset — what
// kafka-consumer-groups, Burrow and the lag of `sluice status --group`
// read — would stay behind until the partition's next batch, forever when
// no record arrives. It only moves the group to what the sink already
// holds; a failure is logged (the next batch commits again).
func (s *Source) catchUpGroup(ctx context.Context, ahead map[string]map[int32]kgo.EpochOffset) {
	s.fmu.Lock()
	cl := s.cl
	s.fmu.Unlock()
	if len(ahead) == 0 || cl == nil {
		return
	}
	cerr := commitSync(ctx, cl, ahead)
	if cerr != nil {
		s.log.Warn("kafka source: could not move the group's offsets up to the sink's record", "group", s.grp.name, "err", cerr)
		return
	}
	s.log.Info("kafka source: moved the group's offsets up to the sink's record", "group", s.grp.name, "offsets", fmt.Sprint(ahead))
}

// commitSync commits offsets to the client's group and returns the
// request's error or the first partition's error.
func commitSync(ctx context.Context, cl *kgo.Client, offsets map[string]map[int32]kgo.EpochOffset) error {
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s-%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return cerr
}

// groupCommit ends a batch in group mode: the offsets of the partitions
// still owned become their next batch's start, and unless the sink
// committed them in its transaction they are committed to the group now
// (at least once: output written before a failed commit is written again
// by the partition's next owner).
func (s *Source) groupCommit(ctx context.Context, end Offsets) error {
	s.fmu.Lock()
	for tp, off := range end {
		if _, owned := s.grp.committed[tp]; !owned || !s.assigned[tp] {
			continue
		}
		s.grp.committed[tp] = off
		if !s.grp.transactional {
			s.grp.unsent[tp] = off
		}
	}
	s.fmu.Unlock()
	return s.sendGroupCommits(ctx)
}

// sendGroupCommits commits the unsent offsets of owned partitions to the
// group (groupCommit, and again at every plan after a failure).
func (s *Source) sendGroupCommits(ctx context.Context) error {
	s.fmu.Lock()
	cl := s.cl
	if cl == nil || len(s.grp.unsent) == 0 {
		s.fmu.Unlock()
		return nil
	}
	sent := maps.Clone(s.grp.unsent)
	s.fmu.Unlock()
	commit := map[string]map[int32]kgo.EpochOffset{}
	for tp, off := range sent {
		if commit[tp.Topic] == nil {
			commit[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		commit[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	if cerr := commitSync(ctx, cl, commit); cerr != nil {
		return fmt.Errorf("kafka source: commit offsets to group %q (sent again at the next plan): %w", s.grp.name, s.cfg.Security.Explain(cerr))
	}
	s.fmu.Lock()
	for tp, off := range sent {
		if s.grp.unsent[tp] == off {
			delete(s.grp.unsent, tp)
		}
	}
	s.fmu.Unlock()
	return nil
}

// BeginGroupTxn begins the transaction of a batch (UseGroupTransactions),
// while the fetch goroutine does not poll.
func (s *Source) BeginGroupTxn() error {
	if s.grp == nil || s.grp.sess == nil {
		return errors.New("kafka source: no group transaction session (sluice.group with the Kafka sink)")
	}
	s.quiesce()
	defer s.unquiesce()
	return s.grp.sess.Begin()
}

// EndGroupTxn ends the open batch's transaction. With commit it commits
// exactly the batch's end offsets to the group in the transaction (not the
// positions the prefetch reached), unless a rebalance overtook the batch;
// committed says whether it did. When the transaction aborts, the session
// rewinds the client's fetch positions to the group's offsets, so the
// source forgets every position it knew.
func (s *Source) EndGroupTxn(ctx context.Context, commit bool) (committed bool, err error) {
	if s.grp == nil || s.grp.sess == nil {
		return false, errors.New("kafka source: no group transaction session (sluice.group with the Kafka sink)")
	}
	s.quiesce()
	defer s.unquiesce()
	s.fmu.Lock()
	end := maps.Clone(s.grp.batchEnd)
	s.fmu.Unlock()
	meta := "sluice " + s.grp.member
	ctx = kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		ids := map[string][16]byte{}
		for _, t := range req.Topics {
			ids[t.Topic] = t.TopicID
		}
		byTopic := map[string][]partition.ID{}
		for _, tp := range partition.Offsets(end).Sorted() {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp)
		}
		topics := make([]string, 0, len(byTopic))
		for t := range byTopic {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		req.Topics = req.Topics[:0]
		for _, t := range topics {
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = t, ids[t]
			for _, tp := range byTopic[t] {
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = tp.Partition, end[tp], -1, &meta
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return nil
	})
	committed, err = s.grp.sess.End(ctx, kgo.TransactionEndTry(commit))
	if !committed {
		s.fmu.Lock()
		for tp := range s.pos {
			s.forget(tp)
		}
		s.adjustPauses()
		s.fmu.Unlock()
	}
	return committed, err
}

// quiesce keeps the fetch goroutine from polling until unquiesce (a
// GroupTransactSession must not poll concurrently with Begin or End),
// without holding the source lock: the assignment callbacks still run.
func (s *Source) quiesce() {
	s.park()
	s.fmu.Unlock()
}

func (s *Source) unquiesce() {
	s.fmu.Lock()
	s.unpark()
}

// groupWaitForData is WaitForData in group mode: owned partitions whose
// cursor is unknown are moved to pos, so their records are fetched; an
// assignment change ends the wait too.
func (s *Source) groupWaitForData(ctx context.Context, pos Offsets, maxWait time.Duration) bool {
	s.park()
	set := map[string]map[int32]kgo.EpochOffset{}
	for tp, off := range pos {
		if _, known := s.pos[tp]; known || !s.assigned[tp] {
			continue
		}
		if set[tp.Topic] == nil {
			set[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
		s.pos[tp] = off
	}
	if len(set) > 0 {
		s.cl.SetOffsets(set)
		s.adjustPauses()
	}
	owned := Offsets{}
	for tp, off := range pos {
		if s.assigned[tp] {
			owned[tp] = off
		}
	}
	select {
	case <-s.grp.changed: // a stale signal: the check below covers it
	default:
	}
	if s.grp.gen != s.grp.plannedGen {
		// The assignment changed after the plan began: plan again now.
		s.unpark()
		return true
	}
	if len(s.grp.unsent) > 0 {
		// A group commit failed: plan again soon, which sends it again.
		maxWait = min(maxWait, time.Second)
	}
	s.unpark()
	return s.waitForData(ctx, owned, maxWait, s.grp.changed)
}

var _ source.Grouped = (*Source)(nil)
