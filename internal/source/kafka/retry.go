package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/kafkaauth"
)

// ErrUnavailable matches (errors.Is) an *UnavailableError: the brokers
// stayed unreachable for longer than sluice.reconnect.timeout.
var ErrUnavailable = errors.New("kafka brokers unavailable")

// UnavailableError reports brokers that could not be reached for the
// whole retry window of one step (planning or reading a batch).
type UnavailableError struct {
	// Step is what the source was doing, e.g. "list end offsets".
	Step string
	// For is how long it retried.
	For time.Duration
	// Attempts counts the tries.
	Attempts int
	// Err is the last error (scrubbed of secrets).
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("kafka source: %s: brokers unreachable for %s (%d attempts; sluice.reconnect.timeout bounds the wait): %v",
		e.Step, e.For.Round(time.Millisecond), e.Attempts, e.Err)
}

// Unwrap returns the last error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Retry pacing: exponential from retryMin to retryMax.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
	// warnEvery spaces the "still waiting" warnings.
	warnEvery = 10 * time.Second
	// maxConfigRetries is how often an authentication or TLS failure is
	// retried after the brokers had accepted the same settings.
	maxConfigRetries = 3
)

// transient reports whether err is worth retrying: the connection to the
// brokers failed or a broker answered with a retriable error code.
// Authentication and TLS failures are not.
func transient(err error) bool {
	switch {
	case err == nil, kafkaauth.Fatal(err), errors.Is(err, kgo.ErrClientClosed),
		errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		// A request timed out inside the client (the caller's own
		// context is checked separately).
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || kgo.IsRetryableBrokerErr(err) {
		return true
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return false
}

// health tracks whether the brokers are reachable, for Waiting and logs.
type health struct {
	mu       sync.Mutex
	reached  bool      // a request succeeded once
	since    time.Time // first failure of the current outage; zero = healthy
	lastErr  error
	lastWarn time.Time
	fatal    error // an authentication/TLS failure before any success
}

// Waiting describes why the source is waiting for its brokers, or returns
// "" when it is not. An engine shows this as the query status, e.g.
// "Waiting for Kafka brokers (unreachable for 12s, retrying): dial tcp
// 127.0.0.1:9092: connect: connection refused".
func (s *Source) Waiting() string {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return ""
	}
	return fmt.Sprintf("Waiting for Kafka brokers %s (unreachable for %s, retrying): %v",
		s.brokers(), time.Since(h.since).Round(time.Second), h.lastErr)
}

func (s *Source) brokers() string {
	if len(s.cfg.Bootstrap) == 1 {
		return s.cfg.Bootstrap[0]
	}
	return fmt.Sprint(s.cfg.Bootstrap)
}

// down records a failed attempt and logs (rate-limited) that the source is
// waiting.
func (s *Source) down(err error) time.Time {
	h := &s.health
	h.mu.Lock()
	now := time.Now()
	if h.since.IsZero() {
		h.since = now
	}
	h.lastErr = err
	since := h.since
	warn := now.Sub(h.lastWarn) >= warnEvery
	if warn {
		h.lastWarn = now
	}
	h.mu.Unlock()
	if warn {
		s.log.Warn("kafka source: brokers unreachable; retrying", "brokers", s.brokers(),
			"for", now.Sub(since).Round(time.Millisecond).String(), "err", err.Error())
	}
	return since
}

// up records a success.
func (s *Source) up() {
	h := &s.health
	h.mu.Lock()
	was := h.since
	h.since, h.lastErr, h.lastWarn = time.Time{}, nil, time.Time{}
	h.reached = true
	h.mu.Unlock()
	if !was.IsZero() {
		s.log.Info("kafka source: brokers reachable again", "brokers", s.brokers(), "after", time.Since(was).Round(time.Millisecond).String())
	}
}

// withRetry runs fn until it succeeds, fails with an error retrying cannot
// fix, ctx ends, or the brokers stayed unreachable for the retry window:
// ReconnectTimeout once the brokers have answered, at most the request
// timeout before that (so a wrong address fails a new query quickly).
// Errors come back explained (authentication, TLS) and scrubbed of
// secrets.
func (s *Source) withRetry(ctx context.Context, step string, fn func(context.Context) error) error {
	s.health.mu.Lock()
	fatal := s.health.fatal
	s.health.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	start := time.Now()
	wait := retryMin
	configRetries := 0
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			s.up()
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("kafka source: %s: %w", step, cerr)
		}
		err = s.cfg.Security.Explain(err)
		s.health.mu.Lock()
		reached := s.health.reached
		s.health.mu.Unlock()
		if kafkaauth.Fatal(err) && reached && configRetries < maxConfigRetries {
			// Credentials and certificates that worked before: a
			// broker restarting mid-handshake looks the same as a
			// refusal, so give it a few more tries.
			configRetries++
		} else if !transient(err) {
			err = fmt.Errorf("kafka source: %s: %w", step, err)
			if kafkaauth.Fatal(err) && !reached {
				// Nothing ever worked with these settings: do not
				// try again on later calls either (no retry storm).
				s.health.mu.Lock()
				s.health.fatal = err
				s.health.mu.Unlock()
			}
			return err
		}
		s.down(err)
		window := s.cfg.ReconnectTimeout
		if !reached {
			window = min(window, s.cfg.RequestTimeout)
		}
		elapsed := time.Since(start)
		if elapsed >= window {
			return &UnavailableError{Step: step, For: elapsed, Attempts: attempt, Err: err}
		}
		// The last wait is cut to the window's end, so the step gives up
		// when the window has passed, not one back-off before it.
		t := time.NewTimer(min(wait, window-elapsed))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("kafka source: %s: %w", step, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}

// connHook watches connection attempts so that Waiting also reports
// brokers lost while a batch is being fetched (the client retries fetches
// on its own).
type connHook struct{ s *Source }

var _ kgo.HookBrokerConnect = connHook{}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h connHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		h.s.up()
		return
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		h.s.down(h.s.cfg.Security.Scrub(err))
	}
}
