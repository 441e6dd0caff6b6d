// Package web serves sluice's HTTP API and live UI: the status and progress
// of running queries as JSON, the Prometheus handler it is given on
// /metrics, a page with live charts built from embedded assets (uPlot is
// vendored, nothing is loaded from the internet), the endpoint that
// changes a query's limits at run time, and the liveness and readiness
// probes of container orchestrators (/healthz, /readyz).
//
// Access: on a loopback listener requests must name a loopback Host (DNS
// rebinding protection); off loopback every request needs the token. The
// two probe endpoints are the exception: they answer any Host without a
// token, because kubelet and Docker probe with the pod's IP as Host and
// carry no credentials, and so they carry no data — a fixed word ("ok",
// "starting", "failed", …), never a query name, an error message or a
// figure.
//
// The package does not know the engine: it reads queries through the small
// Query interface and learns about optional abilities (changing limits)
// through interfaces a query may also implement.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/progress"
)

// DefaultAddr is where the UI listens unless told otherwise: loopback only.
const DefaultAddr = "127.0.0.1:4040"

// Query is what the server reads from one streaming query.
type Query interface {
	// ID is the query id, stable across restarts.
	ID() string
	// RunID is the id of this run of the query.
	RunID() string
	// Name is the query name, "" when it has none.
	Name() string
	// Status is the query's current status, a JSON-marshalable value such
	// as progress.Status ({message, isDataAvailable, isTriggerActive}).
	Status() any
	// LastProgress is the newest progress report, nil before the first.
	LastProgress() *progress.Progress
	// RecentProgress returns the recent reports, oldest first.
	RecentProgress() []*progress.Progress
}

// LimitSetter is implemented by a Query whose limits can be changed while
// it runs. SetLimits receives the request body (a JSON object, not
// otherwise interpreted by this package) and returns a JSON-marshalable
// answer, typically the limits now in force. An error is reported to the
// client: errors.ErrUnsupported gives 501, an error with an
// HTTPStatus() int method gives that status, and any other error gives 400.
type LimitSetter interface {
	SetLimits(ctx context.Context, body json.RawMessage) (any, error)
}

// LimitGetter is implemented by a Query that can report its current limits
// (served by GET /api/v1/queries/{id}/limits).
type LimitGetter interface {
	Limits() any
}

// LiveReporter is implemented by a Query that can describe its state right
// now, beyond its progress reports: lag and health re-evaluated at the
// moment, the arrival series sampled between batches, the start time
// (served by GET /api/v1/queries/{id}/live; sluice's Snapshot).
type LiveReporter interface {
	Live() any
}

// GroupDescriber is implemented by a Query that runs in group mode (one
// query over several processes joined by Kafka's consumer-group protocol):
// DescribeGroup returns the whole group as the broker sees it — members,
// which member owns which partition, committed and latest offsets, lag —
// as a JSON-marshalable value (sluice's groupstatus.Report), served by GET
// /api/v1/queries/{id}/group. InGroup reports whether this run is in group
// mode; the UI shows its group panel only then.
type GroupDescriber interface {
	InGroup() bool
	DescribeGroup(ctx context.Context) (any, error)
}

// Config configures a Server.
type Config struct {
	// Addr is the listen address; "" means DefaultAddr.
	Addr string
	// Queries lists the queries to serve; nil serves none.
	Queries func() []Query
	// Metrics serves /metrics (a Prometheus handler); nil answers 404.
	Metrics http.Handler
	// Token, when set, is required as "Authorization: Bearer <token>" (or
	// as the password of HTTP Basic authentication) on every write, and off
	// loopback on every request. A server on a non-loopback address does
	// not start without one. On loopback, requests must name a loopback
	// Host (DNS rebinding protection).
	Token string
	// Logger receives request errors and limit changes; nil discards them.
	Logger *slog.Logger
	// Ready answers GET /readyz: ready, or not with a short fixed reason
	// such as "starting" (served as "not ready: starting"). The reason is
	// served without authentication, so it must name a state, never carry
	// data (no error text, names or figures). Nil means ready whenever the
	// server runs.
	Ready func() (ready bool, reason string)
}

// Server is the HTTP server of the API and UI. Create it with NewServer,
// then Start it; Close stops it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler *handler

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	done    chan struct{} // closed when the serve goroutine returns
	stop    chan struct{} // closed by Close to release the context watcher
	watched chan struct{} // closed when the context watcher returns
}

// NewServer returns a server for cfg; it does not listen until Start.
func NewServer(cfg Config) *Server {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}
}

// Start listens on the configured address and serves in the background
// until ctx is done or Close is called. It returns an error if the address
// cannot be bound or the server was already started.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("web: server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: listen on %s: %w", s.cfg.Addr, err)
	}
	loopback := isLoopback(ln.Addr())
	if !loopback && s.cfg.Token == "" {
		_ = ln.Close()
		return fmt.Errorf("web: %s is not a loopback address: a token is required to serve the UI and API there "+
			"(set SLUICE_UI_TOKEN, or --ui-token; clients send it as a bearer token or a Basic password)", s.cfg.Addr)
	}
	s.handler = newHandler(s.cfg, s.log, loopback)
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done, s.stop, s.watched = make(chan struct{}), make(chan struct{}), make(chan struct{})
	srv, done, stop, watched := s.srv, s.done, s.stop, s.watched
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web: serve", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			_ = s.shutdown(srv, done)
		case <-stop:
		case <-done:
		}
	}()
	s.log.Info("web: serving UI and API", "url", "http://"+ln.Addr().String()+"/", "loopback", s.handler.loopback, "token", s.cfg.Token != "")
	return nil
}

// Addr returns the address the server listens on (with the real port when
// the configured one was 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the server, letting requests in flight finish for up to two
// seconds, and waits for its goroutines. It is safe to call more than once
// and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done, stop, watched := s.srv, s.done, s.stop, s.watched
	if stop != nil {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := s.shutdown(srv, done)
	<-watched
	return err
}

func (s *Server) shutdown(srv *http.Server, done chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close())
	}
	<-done
	if err != nil {
		return fmt.Errorf("web: shut down: %w", err)
	}
	return nil
}

// Handler returns the server's HTTP handler, for mounting it elsewhere. With
// loopback true it follows the policy of a loopback listener (loopback Host
// names only; writes need the token when one is set); with loopback false
// every request needs the token, and nothing is served without one.
func (s *Server) Handler(loopback bool) http.Handler {
	return newHandler(s.cfg, s.log, loopback)
}

// isLoopback reports whether a listener address accepts loopback
// connections only.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	return tcp.IP != nil && tcp.IP.IsLoopback()
}
