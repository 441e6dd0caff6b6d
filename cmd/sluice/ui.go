package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/web"
	"github.com/sluice-stream/sluice/progress"
)

// webQuery adapts a running query to the web server's Query interface,
// including reading and changing its limits.
type webQuery struct {
	q *sluice.StreamingQuery
	// group describes the consumer group in group mode; nil otherwise.
	group *groupView
}

func (w webQuery) ID() string                           { return w.q.ID() }
func (w webQuery) RunID() string                        { return w.q.RunID() }
func (w webQuery) Name() string                         { return w.q.Name() }
func (w webQuery) Status() any                          { return w.q.Status() }
func (w webQuery) LastProgress() *progress.Progress     { return w.q.LastProgress() }
func (w webQuery) RecentProgress() []*progress.Progress { return w.q.RecentProgress() }
func (w webQuery) Limits() any                          { return w.q.Limits() }
func (w webQuery) Live() any                            { return w.q.Snapshot() }
func (w webQuery) InGroup() bool                        { return w.group != nil }
func (w webQuery) DescribeGroup(ctx context.Context) (any, error) {
	if w.group == nil {
		return nil, errors.New("not in group mode")
	}
	return w.group.describe(ctx)
}
func (w webQuery) SetLimits(_ context.Context, body json.RawMessage) (any, error) {
	var u sluice.LimitsUpdate
	if err := u.UnmarshalJSON(body); err != nil { // its own messages for a malformed body
		return nil, err
	}
	return w.q.SetLimits(u)
}

// runState is what the HTTP server of `sluice run` knows about the run:
// no query while it starts, then the query, and whether a signal asked it
// to stop. It answers /readyz and lists the query for the API.
type runState struct {
	q        atomic.Pointer[sluice.StreamingQuery]
	group    *groupView // set before the server starts; nil outside group mode
	stopping atomic.Bool
}

// Readiness reasons served by /readyz: fixed words, no data (the probe is
// served without authentication).
const (
	notReadyStarting   = "starting"   // connecting, resolving offsets, recovering
	notReadyStopping   = "stopping"   // a signal arrived: the running batch finishes, no new one starts
	notReadyFailed     = "failed"     // the query stopped with an error
	notReadyTerminated = "terminated" // the query ended (a finished availableNow or once trigger)
)

// started records the running query.
func (s *runState) started(q *sluice.StreamingQuery) { s.q.Store(q) }

// queries lists the query once it has started.
func (s *runState) queries() []web.Query {
	if q := s.q.Load(); q != nil {
		return []web.Query{webQuery{q: q, group: s.group}}
	}
	return nil
}

// ready is web.Config.Ready: ready once the query has started, until it
// stops or is asked to.
func (s *runState) ready() (bool, string) {
	q := s.q.Load()
	switch {
	case q == nil:
		return false, notReadyStarting
	case s.stopping.Load():
		return false, notReadyStopping
	case q.IsActive():
		return true, ""
	case q.Exception() != nil:
		return false, notReadyFailed
	default:
		return false, notReadyTerminated
	}
}

// startUI serves the live UI and HTTP API for q on addr until ctx ends.
// token, when set, is required for writes (and always for a non-loopback
// address). metrics may be nil.
func startUI(ctx context.Context, addr, token string, q *sluice.StreamingQuery, metrics http.Handler, log *slog.Logger) (*web.Server, error) {
	st := &runState{}
	st.started(q)
	return serveUI(ctx, addr, token, st, metrics, log)
}

// serveUI serves the live UI, the HTTP API, /metrics and the probes for the
// run st describes on addr until ctx ends or the server is closed.
func serveUI(ctx context.Context, addr, token string, st *runState, metrics http.Handler, log *slog.Logger) (*web.Server, error) {
	srv := web.NewServer(web.Config{
		Addr:    addr,
		Queries: st.queries,
		Metrics: metrics,
		Token:   token,
		Logger:  log,
		Ready:   st.ready,
	})
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}
