package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/web"
	"github.com/sluice-stream/sluice/progress"
)

// webQuery adapts a running query to the web server's Query interface,
// including reading and changing its limits.
type webQuery struct{ q *sluice.StreamingQuery }

func (w webQuery) ID() string                           { return w.q.ID() }
func (w webQuery) RunID() string                        { return w.q.RunID() }
func (w webQuery) Name() string                         { return w.q.Name() }
func (w webQuery) Status() any                          { return w.q.Status() }
func (w webQuery) LastProgress() *progress.Progress     { return w.q.LastProgress() }
func (w webQuery) RecentProgress() []*progress.Progress { return w.q.RecentProgress() }
func (w webQuery) Limits() any                          { return w.q.Limits() }
func (w webQuery) Live() any                            { return w.q.Snapshot() }
func (w webQuery) SetLimits(_ context.Context, body json.RawMessage) (any, error) {
	var u sluice.LimitsUpdate
	if err := u.UnmarshalJSON(body); err != nil { // its own messages for a malformed body
		return nil, err
	}
	return w.q.SetLimits(u)
}

// startUI serves the live UI and HTTP API for q on addr until ctx ends.
// token, when set, is required for writes (and always for a non-loopback
// address). metrics may be nil.
func startUI(ctx context.Context, addr, token string, q *sluice.StreamingQuery, metrics http.Handler, log *slog.Logger) (*web.Server, error) {
	srv := web.NewServer(web.Config{
		Addr:    addr,
		Queries: func() []web.Query { return []web.Query{webQuery{q}} },
		Metrics: metrics,
		Token:   token,
		Logger:  log,
	})
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}
