package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

// LogDir is the name of the log directory under the table root.
const LogDir = "_delta_log"

const (
	lastCheckpointFile = "_last_checkpoint"
	commitSuffix       = ".json"
	checkpointSuffix   = ".checkpoint.parquet"
	// tombstoneRetention is how long removed files stay in checkpoints
	// (delta.deletedFileRetentionDuration's default, one week).
	tombstoneRetention = 7 * 24 * time.Hour
)

func commitName(v int64) string     { return fmt.Sprintf("%020d%s", v, commitSuffix) }
func checkpointName(v int64) string { return fmt.Sprintf("%020d%s", v, checkpointSuffix) }

// state is a table snapshot: the result of replaying the log up to
// version.
type state struct {
	version    int64 // -1: no table
	protocol   *protocolAction
	meta       *metaDataAction
	txns       map[string]txnAction
	files      map[string]addAction    // live files by path
	tombstones map[string]removeAction // removed files by path
}

func newState() *state {
	return &state{version: -1, txns: map[string]txnAction{}, files: map[string]addAction{}, tombstones: map[string]removeAction{}}
}

// apply reconciles one action into the state, as PROTOCOL.md's action
// reconciliation says: the latest protocol, metaData and txn per appId
// win; an add or remove of a path replaces earlier ones.
func (s *state) apply(a actionIn) {
	switch {
	case a.Protocol != nil:
		s.protocol = a.Protocol
	case a.MetaData != nil:
		s.meta = a.MetaData
	case a.Txn != nil:
		s.txns[a.Txn.AppID] = *a.Txn
	case a.Add != nil:
		s.files[a.Add.Path] = *a.Add
		delete(s.tombstones, a.Add.Path)
	case a.Remove != nil:
		delete(s.files, a.Remove.Path)
		s.tombstones[a.Remove.Path] = *a.Remove
	}
}

// logListing is what a listing of the log directory found.
type logListing struct {
	commits     []int64 // sorted
	checkpoints []int64 // single-file classic checkpoints, sorted
}

func (l logListing) latest() int64 {
	v := int64(-1)
	if n := len(l.commits); n > 0 {
		v = l.commits[n-1]
	}
	if n := len(l.checkpoints); n > 0 {
		v = max(v, l.checkpoints[n-1])
	}
	return v
}

func (l logListing) hasCommit(v int64) bool {
	_, ok := slices.BinarySearch(l.commits, v)
	return ok
}

// deltaLog is a table's _delta_log directory, kept in a storage.Store:
// commits are put-if-absent, so two writers can never both commit a
// version; checkpoints and _last_checkpoint are replaced atomically.
type deltaLog struct {
	dir string // for messages
	st  storage.Store
}

// openDeltaLog returns the log of the table whose directory is root.
func openDeltaLog(root storage.Store) (deltaLog, error) {
	st, err := storage.Sub(root, LogDir)
	if err != nil {
		return deltaLog{}, fmt.Errorf("delta log: %w", err)
	}
	dir := storage.URI(st, "")
	if d, ok := storage.LocalRoot(st); ok {
		dir = d
	}
	return deltaLog{dir: dir, st: st}, nil
}

// ctx is the context of the log's storage calls, which are local and
// short.
var ctx = context.Background()

// list lists the log; a missing log is empty.
func (lg deltaLog) list() (logListing, error) {
	var l logListing
	ents, err := lg.st.List(ctx, "")
	if err != nil {
		return l, fmt.Errorf("listing delta log: %w", err)
	}
	for _, e := range ents {
		name := e.Name
		switch {
		case strings.HasSuffix(name, checkpointSuffix):
			if v, ok := parseVersion(strings.TrimSuffix(name, checkpointSuffix)); ok {
				l.checkpoints = append(l.checkpoints, v)
			}
		case strings.HasSuffix(name, commitSuffix):
			if v, ok := parseVersion(strings.TrimSuffix(name, commitSuffix)); ok {
				l.commits = append(l.commits, v)
			}
		}
	}
	slices.Sort(l.commits)
	slices.Sort(l.checkpoints)
	return l, nil
}

// parseVersion accepts exactly 20 digits.
func parseVersion(s string) (int64, bool) {
	if len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// readCommit reads and parses commit v.
func (lg deltaLog) readCommit(v int64) ([]actionIn, error) {
	data, err := lg.st.Get(ctx, commitName(v))
	if err != nil {
		return nil, fmt.Errorf("reading delta log version %d: %w", v, err)
	}
	acts, err := decodeActions(data)
	if err != nil {
		return nil, fmt.Errorf("delta log version %d: %w", v, err)
	}
	return acts, nil
}

// putCommit creates commit v unless it exists (an error wrapping
// storage.ErrExist then). On any other error the outcome is unknown.
func (lg deltaLog) putCommit(v int64, data []byte) error {
	return lg.st.PutIfAbsent(ctx, commitName(v), data)
}

// applyCommits replays commits s.version+1 .. through onto s. Every one
// must be present.
func (s *state) applyCommits(lg deltaLog, l logListing, through int64) error {
	for v := s.version + 1; v <= through; v++ {
		if !l.hasCommit(v) {
			return fmt.Errorf("delta log is missing version %d (latest is %d)", v, through)
		}
		acts, err := lg.readCommit(v)
		if err != nil {
			return err
		}
		for _, a := range acts {
			s.apply(a)
		}
		s.version = v
	}
	return nil
}

// update brings s up to the latest version of the log by replaying the
// commits after s.version.
func (s *state) update(lg deltaLog) error {
	l, err := lg.list()
	if err != nil {
		return err
	}
	latest := l.latest()
	if latest < s.version {
		return fmt.Errorf("delta log went back from version %d to %d", s.version, latest)
	}
	return s.applyCommits(lg, l, latest)
}

// lastCheckpoint is the content of _delta_log/_last_checkpoint.
type lastCheckpoint struct {
	Version       int64  `json:"version"`
	Size          int64  `json:"size"`
	SizeInBytes   *int64 `json:"sizeInBytes,omitempty"`
	NumOfAddFiles *int64 `json:"numOfAddFiles,omitempty"`
}

// readLastCheckpoint returns the version _last_checkpoint points at, or
// -1 when it is missing or unreadable (it is only a hint).
func (lg deltaLog) readLastCheckpoint() int64 {
	data, err := lg.st.Get(ctx, lastCheckpointFile)
	if err != nil {
		return -1
	}
	var lc lastCheckpoint
	if json.Unmarshal(data, &lc) != nil {
		return -1
	}
	return lc.Version
}

// load replays the log from scratch. With useCheckpoints it starts from
// the newest readable checkpoint (the one _last_checkpoint names first,
// then others newest first) and falls back to replaying every commit from
// version 0.
func (lg deltaLog) load(useCheckpoints bool) (*state, error) {
	l, err := lg.list()
	if err != nil {
		return nil, err
	}
	latest := l.latest()
	if latest < 0 {
		return newState(), nil
	}
	var candidates []int64
	if useCheckpoints {
		if hint := lg.readLastCheckpoint(); hint >= 0 && hint <= latest && slices.Contains(l.checkpoints, hint) {
			candidates = append(candidates, hint)
		}
		for i := len(l.checkpoints) - 1; i >= 0; i-- {
			if v := l.checkpoints[i]; !slices.Contains(candidates, v) {
				candidates = append(candidates, v)
			}
		}
	}
	var errs []error
	for _, cp := range candidates {
		s, err := lg.readCheckpointFile(checkpointName(cp))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.version = cp
		if err := s.applyCommits(lg, l, latest); err != nil {
			errs = append(errs, err)
			continue
		}
		return s, nil
	}
	s := newState()
	if err := s.applyCommits(lg, l, latest); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	return s, nil
}

// Snapshot replays the Delta table at path (a local directory, or a URI
// resolved with the options' resolver; using its latest checkpoint when
// there is one) and returns its live data files (paths relative to the
// table root, URI-decoded, sorted), the latest transaction version per
// application id (streaming query id), and the table version. A path
// without a log has version -1 and no files.
func Snapshot(path string, opts ...file.Option) (files []string, txn map[string]int64, version int64, err error) {
	root, err := file.ResolveRoot(path, opts...)
	if err != nil {
		return nil, nil, -1, err
	}
	return SnapshotStore(root)
}

// SnapshotStore is Snapshot for the table whose directory is root.
func SnapshotStore(root storage.Store) (files []string, txn map[string]int64, version int64, err error) {
	return snapshot(root, true)
}

func snapshot(root storage.Store, useCheckpoints bool) ([]string, map[string]int64, int64, error) {
	lg, err := openDeltaLog(root)
	if err != nil {
		return nil, nil, -1, err
	}
	s, err := lg.load(useCheckpoints)
	if err != nil {
		return nil, nil, -1, err
	}
	files := make([]string, 0, len(s.files))
	for p := range s.files {
		dec, err := url.PathUnescape(p)
		if err != nil {
			return nil, nil, -1, fmt.Errorf("delta log: bad file path %q: %w", p, err)
		}
		files = append(files, dec)
	}
	slices.Sort(files)
	txn := make(map[string]int64, len(s.txns))
	for id, t := range s.txns {
		txn[id] = t.Version
	}
	return files, txn, s.version, nil
}

// Retention returns how long the table whose directory is root keeps
// removed files for readers of older versions: its
// delta.deletedFileRetentionDuration, or Delta's default of 7 days. A
// directory without a table has the default.
func Retention(root storage.Store) (time.Duration, error) {
	lg, err := openDeltaLog(root)
	if err != nil {
		return 0, err
	}
	s, err := lg.load(true)
	if err != nil {
		return 0, err
	}
	return s.retention(), nil
}

// retention is the table's tombstone retention.
func (s *state) retention() time.Duration {
	if s.meta == nil {
		return tombstoneRetention
	}
	v, ok := s.meta.Configuration["delta.deletedFileRetentionDuration"]
	if !ok {
		return tombstoneRetention
	}
	d, err := options.ParseInterval(v)
	if err != nil {
		return tombstoneRetention
	}
	return d
}

// VacuumListed returns the files of the table whose directory is root
// that a version within retention of now refers to, as names relative to
// root: the files of the current version and those removed less than
// retention ago (unexpired tombstones; a remove without a timestamp counts
// as unexpired). These are what a vacuum must keep, as PROTOCOL.md's
// tombstone rule says. Absolute paths outside the table are left out.
func VacuumListed(root storage.Store, now time.Time, retention time.Duration) (map[string]bool, error) {
	lg, err := openDeltaLog(root)
	if err != nil {
		return nil, err
	}
	s, err := lg.load(true)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(s.files)+len(s.tombstones))
	add := func(p string) error {
		rel, ok, err := vacuum.RelativeName(root, p)
		if err != nil {
			return fmt.Errorf("delta log: %w", err)
		}
		if ok {
			out[rel] = true
		}
		return nil
	}
	for p := range s.files {
		if err := add(p); err != nil {
			return nil, err
		}
	}
	cutoff := now.Add(-retention).UnixMilli()
	for p, r := range s.tombstones {
		if r.DeletionTimestamp == nil || *r.DeletionTimestamp >= cutoff {
			if err := add(p); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
