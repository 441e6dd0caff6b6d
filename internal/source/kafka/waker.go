package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// An idle query waits for data (WaitForData) with the source's own client,
// whose fetches return every kafka.fetch.max.wait.ms (200 ms: short, so a
// partition resumed while another's fetch is in flight waits little during
// a drain). Each empty fetch costs a round trip and a few wake-ups; five a
// second add up to 0.5 % of a core on an idle query. When the query stays
// idle past wakerAfter, the source pauses its own client and hands the
// wait to the waker: a second, small client that long-polls the same
// partitions from the same positions with a long fetch.max.wait
// (sluice.fetch.idleLongPoll). The broker answers that fetch as soon as a
// record arrives, so the first record after a quiet spell still wakes the
// query within a round trip, and an idle query sends one fetch per long
// poll. The waker's records are dropped (it only says that data exists);
// its fetches are bounded to wakerFetchBytes.
const (
	// wakerAfter is how long an idle wait uses the source's own client
	// before it hands over to the waker (a query that was just busy
	// usually gets more data soon; a wait that already timed out once
	// hands over at once).
	wakerAfter = time.Second
	// wakerFetchBytes bounds the waker's fetches (the broker still returns
	// a first record batch larger than this whole).
	wakerFetchBytes = 64 << 10
)

// waitIdle waits on the waker for records past pos, at most maxWait. It
// returns whether data arrived and whether the waker worked at all (false:
// the caller waits with its own client instead). A signal on wake (group
// mode: the assignment changed) ends the wait as data does.
func (s *Source) waitIdle(ctx context.Context, pos Offsets, maxWait time.Duration, wake <-chan struct{}) (data, ok bool) {
	w, err := s.wakerClient()
	if err != nil {
		s.log.Debug("kafka source: idle long poll unavailable; polling with the source's client", "err", err)
		return false, false
	}
	add := map[string]map[int32]kgo.Offset{}
	for tp, off := range pos {
		if add[tp.Topic] == nil {
			add[tp.Topic] = map[int32]kgo.Offset{}
		}
		add[tp.Topic][tp.Partition] = kgo.NewOffset().At(off)
	}
	if len(add) == 0 {
		return false, false
	}
	// Quiet the source's client: every partition paused, so it sends no
	// fetch while the waker waits (adjustPauses, idleWaiting).
	s.fmu.Lock()
	s.idleWaiting = true
	s.adjustPauses()
	s.fmu.Unlock()
	defer func() {
		s.fmu.Lock()
		s.idleWaiting = false
		s.adjustPauses()
		s.fmu.Unlock()
	}()

	// The waker keeps its partitions between waits that found nothing:
	// the next wait starts from the same positions, and its long poll in
	// flight goes on (changing what it consumes would cancel the poll,
	// and franz-go closes a connection with a fetch in flight).
	s.wmu.Lock()
	if !s.wakerPos.equal(pos) {
		if len(s.wakerPos) > 0 {
			w.PurgeTopicsFromConsuming(s.wakerPos.topics()...)
		}
		w.AddConsumePartitions(add)
		s.wakerPos = maps.Clone(pos)
	}
	s.wmu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	woken := make(chan struct{})
	if wake != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() { // ends with the wait
			select {
			case <-wake:
				close(woken)
				cancel()
			case <-stop:
			case <-wctx.Done():
			}
		}()
	}
	for {
		fs := w.PollRecords(wctx, 1)
		if fs.NumRecords() > 0 {
			s.forgetWaker(w)
			return true, true
		}
		if wctx.Err() != nil {
			select {
			case <-woken:
				// The partitions changed: the caller plans again, and
				// the waker follows the new positions next time.
				s.forgetWaker(w)
				return true, true
			default:
			}
			if ctx.Err() != nil {
				s.forgetWaker(w)
			}
			return false, true
		}
		var perr error
		fs.EachError(func(t string, p int32, err error) {
			if perr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				perr = fmt.Errorf("%s-%d: %w", t, p, err)
			}
		})
		if perr != nil {
			// Offsets out of range, a deleted topic, an unreachable
			// broker: the source's own client handles them (and reports
			// them) when the query plans; the waker steps aside.
			s.forgetWaker(w)
			s.log.Debug("kafka source: idle long poll failed; polling with the source's client", "err", perr)
			return false, false
		}
	}
}

// forgetWaker stops the waker's consumption: the query is busy again (or
// the wait was abandoned), and its next idle wait starts elsewhere.
func (s *Source) forgetWaker(w *kgo.Client) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if len(s.wakerPos) > 0 {
		w.PurgeTopicsFromConsuming(s.wakerPos.topics()...)
	}
	s.wakerPos = nil
}

// wakerClient returns the waker client, created on first use with the
// source's brokers, security and isolation level.
func (s *Source) wakerClient() (*kgo.Client, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.waker != nil {
		return s.waker, nil
	}
	if s.wakerClosed {
		return nil, errors.New("source closed")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Bootstrap...),
		kgo.ClientID(s.cfg.ClientID),
		kgo.FetchMaxBytes(wakerFetchBytes),
		kgo.FetchMaxPartitionBytes(wakerFetchBytes),
		kgo.FetchMaxWait(s.cfg.IdleLongPoll),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{}),
	}
	opts = append(opts, s.cfg.Security.Opts()...)
	if s.cfg.ReadCommitted {
		// Woken by committed records only: an open transaction's
		// records would wake a query that then finds nothing to read.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: idle long-poll client: %w", s.cfg.Security.Scrub(err))
	}
	s.waker = cl
	return cl, nil
}

// closeWaker closes the waker client, if one was created.
func (s *Source) closeWaker() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wakerClosed = true
	if s.waker != nil {
		s.waker.Close()
		s.waker = nil
	}
}

func (o Offsets) equal(p Offsets) bool {
	if len(o) != len(p) {
		return false
	}
	for tp, off := range o {
		if q, ok := p[tp]; !ok || q != off {
			return false
		}
	}
	return true
}

func (o Offsets) topics() []string {
	seen := map[string]bool{}
	var ts []string
	for tp := range o {
		if !seen[tp.Topic] {
			seen[tp.Topic] = true
			ts = append(ts, tp.Topic)
		}
	}
	return ts
}
