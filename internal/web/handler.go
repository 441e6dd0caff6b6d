package web

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/progress"
)

// maxLimitsBody bounds the body of a limits request.
const maxLimitsBody = 64 << 10

// Write policies reported by GET /api/v1/server.
const (
	writesOpen     = "open"     // loopback listener, no token: anyone on this host
	writesToken    = "token"    // a bearer token is required
	writesDisabled = "disabled" // non-loopback listener without a token
)

// contentSecurityPolicy allows the page's own scripts and styles only;
// inline style attributes are allowed because uPlot positions its elements
// with them.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

type handler struct {
	queries  func() []Query
	metrics  http.Handler
	token    string
	loopback bool
	log      *slog.Logger
	mux      *http.ServeMux
	// probes serves /healthz and /readyz, outside the access rules.
	probes *http.ServeMux
	ready  func() (bool, string)
}

func newHandler(cfg Config, log *slog.Logger, loopback bool) *handler {
	h := &handler{queries: cfg.Queries, metrics: cfg.Metrics, token: cfg.Token, loopback: loopback, log: log, ready: cfg.Ready}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(fmt.Sprintf("web: embedded assets: %v", err)) // the embed pattern guarantees the directory
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/server", h.serverInfo)
	mux.HandleFunc("GET /api/v1/queries", h.listQueries)
	mux.HandleFunc("GET /api/v1/queries/{id}", h.getQuery)
	mux.HandleFunc("GET /api/v1/queries/{id}/progress", h.getProgress)
	mux.HandleFunc("GET /api/v1/queries/{id}/limits", h.getLimits)
	mux.HandleFunc("GET /api/v1/queries/{id}/live", h.getLive)
	mux.HandleFunc("GET /api/v1/queries/{id}/group", h.getGroup)
	mux.HandleFunc("POST /api/v1/queries/{id}/limits", h.setLimits)
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	mux.HandleFunc("GET /metrics", h.serveMetrics)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", noCache(http.FileServerFS(sub))))
	mux.HandleFunc("GET /{$}", h.index)
	h.mux = mux
	probes := http.NewServeMux()
	probes.HandleFunc("GET /healthz", h.healthz)
	probes.HandleFunc("GET /readyz", h.readyz)
	h.probes = probes
	return h
}

// Probe paths: served to anyone, carrying no data (see the package comment).
const (
	HealthzPath = "/healthz"
	ReadyzPath  = "/readyz"
)

// isProbe reports whether r asks for one of the probe endpoints, which are
// exempt from the Host and token rules.
func isProbe(r *http.Request) bool {
	return r.URL.Path == HealthzPath || r.URL.Path == ReadyzPath
}

// healthz is the liveness probe: the process is up and serving HTTP.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeProbe(w, http.StatusOK, "ok")
}

// readyz is the readiness probe: 200 "ok" when Config.Ready says so, else
// 503 "not ready: REASON".
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.ready != nil {
		if ok, reason := h.ready(); !ok {
			if reason == "" {
				reason = "unknown"
			}
			writeProbe(w, http.StatusServiceUnavailable, "not ready: "+reason)
			return
		}
	}
	writeProbe(w, http.StatusOK, "ok")
}

// writeProbe answers a probe with one line of plain text, never cached.
func writeProbe(w http.ResponseWriter, status int, line string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, line+"\n")
}

// ServeHTTP sets the headers common to every response, checks who may
// read (see authorizeRead) and dispatches.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if isProbe(r) {
		h.probes.ServeHTTP(w, r)
		return
	}
	if status, msg := h.authorizeRead(r); status != 0 {
		if status == http.StatusUnauthorized {
			challenge(w)
		}
		h.log.Warn("web: request refused", "remote", r.RemoteAddr, "host", r.Host, "path", r.URL.Path, "status", status, "reason", msg)
		writeError(w, status, msg)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorizeRead returns a non-zero status and a message when r may not be
// served at all.
//
// On a loopback listener the Host header must name the loopback interface
// (localhost, 127.0.0.1 or another 127.x address, [::1], with any port):
// otherwise a web page on another site could re-point its own name at
// 127.0.0.1 (DNS rebinding) and read or change the query through the
// victim's browser. Off loopback the token protects everything, so every
// request must carry it, and nothing is served when none is configured.
// The probe endpoints (isProbe) never reach this check.
func (h *handler) authorizeRead(r *http.Request) (int, string) {
	if h.loopback {
		if !loopbackHost(r.Host) {
			return http.StatusForbidden, fmt.Sprintf("Host %q is not a loopback name: this server listens on loopback and "+
				"answers only Host localhost, 127.0.0.1 or [::1] (protection against DNS rebinding)", r.Host)
		}
		return 0, ""
	}
	if h.token == "" {
		return http.StatusForbidden, "this server listens on a non-loopback address and no token was configured; " +
			"set SLUICE_UI_TOKEN (or --ui-token) to serve the UI and API off loopback"
	}
	if !h.tokenOK(r) {
		return http.StatusUnauthorized, "a valid token is required off loopback: Authorization: Bearer <token>, " +
			"or HTTP Basic authentication with the token as the password"
	}
	return 0, ""
}

// challenge asks for credentials: a bearer token for API clients, Basic
// authentication so that a browser prompts for the token.
func challenge(w http.ResponseWriter) {
	w.Header().Add("WWW-Authenticate", `Bearer realm="sluice"`)
	w.Header().Add("WWW-Authenticate", `Basic realm="sluice", charset="UTF-8"`)
}

// loopbackHost reports whether a Host header value names the loopback
// interface: localhost or a loopback IP literal, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func noCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	page, err := assetFS.ReadFile("assets/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "index page missing from the build")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(page)
}

func (h *handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if h.metrics == nil {
		http.Error(w, "metrics are not configured", http.StatusNotFound)
		return
	}
	h.metrics.ServeHTTP(w, r)
}

// writePolicy says who may change limits.
func (h *handler) writePolicy() string {
	switch {
	case h.token != "":
		return writesToken
	case h.loopback:
		return writesOpen
	default:
		return writesDisabled
	}
}

type serverInfoJSON struct {
	Loopback bool   `json:"loopback"`
	Writes   string `json:"writes"`
}

func (h *handler) serverInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, serverInfoJSON{Loopback: h.loopback, Writes: h.writePolicy()})
}

// queryJSON is one entry of GET /api/v1/queries.
type queryJSON struct {
	ID           string             `json:"id"`
	RunID        string             `json:"runId"`
	Name         *string            `json:"name"`
	Status       any                `json:"status"`
	LastProgress *progress.Progress `json:"lastProgress"`
	Limits       limitsCaps         `json:"limits"`
	Reports      queryCaps          `json:"reports"`
}

// limitsCaps tells the UI which limit operations a query supports.
type limitsCaps struct {
	Settable bool `json:"settable"`
	Readable bool `json:"readable"`
}

// queryCaps tells the UI what else a query can report.
type queryCaps struct {
	Live bool `json:"live"`
	// Group: the query runs in group mode and can describe its group.
	Group bool `json:"group"`
}

func describe(q Query) queryJSON {
	var name *string
	if n := q.Name(); n != "" {
		name = &n
	}
	_, settable := q.(LimitSetter)
	_, readable := q.(LimitGetter)
	_, live := q.(LiveReporter)
	g, ok := q.(GroupDescriber)
	inGroup := ok && g.InGroup()
	return queryJSON{
		ID: q.ID(), RunID: q.RunID(), Name: name, Status: q.Status(),
		LastProgress: q.LastProgress(),
		Limits:       limitsCaps{Settable: settable, Readable: readable},
		Reports:      queryCaps{Live: live, Group: inGroup},
	}
}

func (h *handler) list() []Query {
	if h.queries == nil {
		return nil
	}
	return h.queries()
}

// find returns the query whose id is id, or else the one named id.
func (h *handler) find(id string) Query {
	qs := h.list()
	for _, q := range qs {
		if q != nil && q.ID() == id {
			return q
		}
	}
	for _, q := range qs {
		if q != nil && q.Name() != "" && q.Name() == id {
			return q
		}
	}
	return nil
}

func (h *handler) lookup(w http.ResponseWriter, r *http.Request) Query {
	id := r.PathValue("id")
	q := h.find(id)
	if q == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no query with id or name %q", id))
	}
	return q
}

func (h *handler) listQueries(w http.ResponseWriter, r *http.Request) {
	out := []queryJSON{}
	for _, q := range h.list() {
		if q != nil {
			out = append(out, describe(q))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getQuery(w http.ResponseWriter, r *http.Request) {
	if q := h.lookup(w, r); q != nil {
		writeJSON(w, http.StatusOK, describe(q))
	}
}

// getProgress serves the recent progress reports, oldest first; ?limit=N
// keeps the newest N.
func (h *handler) getProgress(w http.ResponseWriter, r *http.Request) {
	q := h.lookup(w, r)
	if q == nil {
		return
	}
	recent := q.RecentProgress()
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a non-negative integer, got %q", s))
			return
		}
		if n < len(recent) {
			recent = recent[len(recent)-n:]
		}
	}
	out := make([]*progress.Progress, 0, len(recent))
	for _, p := range recent {
		if p != nil {
			out = append(out, p)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// getLive serves the query's live state (LiveReporter).
func (h *handler) getLive(w http.ResponseWriter, r *http.Request) {
	q := h.lookup(w, r)
	if q == nil {
		return
	}
	l, ok := q.(LiveReporter)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this query cannot report its live state")
		return
	}
	writeJSON(w, http.StatusOK, l.Live())
}

// getGroup serves the query's consumer group as the broker describes it
// (GroupDescriber): 501 for a query that cannot, 404 for one not in group
// mode, 502 when the broker could not be asked.
func (h *handler) getGroup(w http.ResponseWriter, r *http.Request) {
	q := h.lookup(w, r)
	if q == nil {
		return
	}
	g, ok := q.(GroupDescriber)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this query cannot describe a consumer group")
		return
	}
	if !g.InGroup() {
		writeError(w, http.StatusNotFound, "this query does not run in group mode (source option sluice.group)")
		return
	}
	rep, err := g.DescribeGroup(r.Context())
	if err != nil {
		h.log.Warn("describe the consumer group", "query", q.ID(), "err", err)
		writeError(w, http.StatusBadGateway, "describe the consumer group: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (h *handler) getLimits(w http.ResponseWriter, r *http.Request) {
	q := h.lookup(w, r)
	if q == nil {
		return
	}
	g, ok := q.(LimitGetter)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this query cannot report its limits")
		return
	}
	writeJSON(w, http.StatusOK, g.Limits())
}

// setLimits passes a JSON object to the query's SetLimits after checking
// who is asking.
func (h *handler) setLimits(w http.ResponseWriter, r *http.Request) {
	if status, msg := h.authorizeWrite(r); status != 0 {
		if status == http.StatusUnauthorized {
			challenge(w)
		}
		h.log.Warn("web: limits request refused", "remote", r.RemoteAddr, "status", status, "reason", msg)
		writeError(w, status, msg)
		return
	}
	q := h.lookup(w, r)
	if q == nil {
		return
	}
	setter, ok := q.(LimitSetter)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this query does not support changing limits at run time")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLimitsBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxLimitsBody))
			return
		}
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		writeError(w, http.StatusBadRequest, "body must be a JSON object")
		return
	}
	answer, err := setter.SetLimits(r.Context(), json.RawMessage(trimmed))
	if err != nil {
		status := http.StatusBadRequest
		var hs interface{ HTTPStatus() int }
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			status = http.StatusNotImplemented
		case errors.As(err, &hs) && hs.HTTPStatus() >= 400 && hs.HTTPStatus() <= 599:
			status = hs.HTTPStatus()
		}
		h.log.Warn("web: limits not changed", "query", q.ID(), "remote", r.RemoteAddr, "err", err)
		writeError(w, status, err.Error())
		return
	}
	h.log.Info("web: limits changed", "query", q.ID(), "remote", r.RemoteAddr, "request", string(trimmed))
	writeJSON(w, http.StatusOK, answer)
}

// authorizeWrite returns a non-zero status and a message when r may not
// write. A configured token is always required; without one, only a
// loopback listener accepts writes. Requests from another site (a page the
// user visits that posts to localhost) are refused in every case: the body
// must be declared as JSON, which a cross-site form cannot send without a
// CORS preflight this server never grants, and a present Origin must be
// this server.
func (h *handler) authorizeWrite(r *http.Request) (int, string) {
	switch h.writePolicy() {
	case writesDisabled:
		return http.StatusForbidden, "writes are disabled: the server listens on a non-loopback address and no token was configured"
	case writesToken:
		if !h.tokenOK(r) {
			return http.StatusUnauthorized, "a valid bearer token is required"
		}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return http.StatusForbidden, "cross-site requests may not change limits"
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return http.StatusForbidden, fmt.Sprintf("origin %q may not change limits", origin)
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, "Content-Type must be application/json"
	}
	return 0, ""
}

// tokenOK reports whether r carries the token: as a bearer token, or as the
// password of HTTP Basic authentication (any user name), which is what a
// browser sends after prompting.
func (h *handler) tokenOK(r *http.Request) bool {
	if h.token == "" {
		return false
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(pass), []byte(h.token)) == 1
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	cred = strings.TrimSpace(cred)
	return subtle.ConstantTimeCompare([]byte(cred), []byte(h.token)) == 1
}

type errorJSON struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorJSON{Error: msg})
}

// writeJSON encodes v before writing anything, so that an encoding error
// becomes a 500 instead of a truncated 200.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorJSON{Error: "encoding response: " + err.Error()})
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
