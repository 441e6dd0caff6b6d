// Package storage is sluice's one crash-safe file layer. Everything sluice
// writes that a restart or another reader relies on goes through it: the
// checkpoint (metadata, offsets/, commits/, sources/ and, for stateful
// operators, state/), the file sink's _spark_metadata log, the file
// source's seen-files log and the Delta log.
//
// A Store holds files by name under one root. Names are slash-separated
// paths relative to the root ("offsets/12", "00000000000000000003.json"),
// the way object-store keys are; directories exist implicitly. Every Store
// gives the same guarantees:
//
//   - A file becomes visible whole or not at all: a reader never sees a
//     prefix of it, and a writer that dies mid-write leaves nothing under
//     the name.
//   - PutIfAbsent (and Create with IfAbsent) is exclusive: of writers racing
//     for one name exactly one wins, every other gets an error wrapping
//     ErrExist and changes nothing.
//   - A write or delete that returns nil is durable: it survives a crash or
//     power loss right after.
//   - A write that fails with any error other than ErrExist has an unknown
//     outcome: the file may or may not exist (the local disk can fail the
//     directory fsync after the rename, an object store can time out after
//     the upload). Callers must not assume it was not written; in
//     particular they must not delete data a possibly written commit refers
//     to.
//
// Local, on the local file system, is one implementation; the object
// stores — Azure Blob Storage / ADLS Gen2 (abfss://, wasbs://, az://) and
// S3 (s3a://, s3://) — are the others, with the same guarantees from the
// stores' own primitives: an upload becomes visible whole when it
// completes, and put-if-absent is a conditional write (If-None-Match: *).
// Resolver turns a path or URI into the Store that holds it, with
// credentials from the SDKs' default chains and from Spark/Hadoop's option
// names (see Conf); docs/storage.md is the user's guide.
//
// WriteOnce adds the idempotent replay rule the logs share, Sub scopes a
// Store to a sub-directory and ReadOnly refuses writes. NewUUID makes the
// random names and ids sluice needs.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrExist is wrapped by the error of a put-if-absent whose name is taken.
// It is fs.ErrExist, so errors.Is(err, fs.ErrExist) holds too.
var ErrExist = fs.ErrExist

// ErrNotExist is wrapped by the error of a Get of a missing name. It is
// fs.ErrNotExist.
var ErrNotExist = fs.ErrNotExist

// ErrConflict is wrapped by WriteOnce's error when the name already holds
// different content: another writer (a second query on the same
// checkpoint, or a replay that is not deterministic) got there first.
var ErrConflict = errors.New("file already exists with different content")

// ErrReadOnly is wrapped by the errors of writes to a ReadOnly store.
var ErrReadOnly = errors.New("storage is read-only")

// Mode says what Create does when the name exists.
type Mode int

const (
	// IfAbsent makes Commit fail with ErrExist when the name exists
	// (put-if-absent): for write-once files such as log batches.
	IfAbsent Mode = iota
	// Replace makes Commit replace an existing file atomically: for files
	// that are legitimately rewritten, such as Delta's _last_checkpoint.
	Replace
)

func (m Mode) String() string {
	switch m {
	case IfAbsent:
		return "if-absent"
	case Replace:
		return "replace"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Entry is one name found by List.
type Entry struct {
	// Name is the last element of the name (no directory part).
	Name string
	// IsDir is true for a directory (a common prefix on object stores).
	IsDir bool
	// Size and ModTime describe a file (zero for a directory); ModTime is
	// the time the file was written (an object's Last-Modified).
	Size    int64
	ModTime time.Time
}

// Store is a place for crash-safe files. Implementations are safe for
// concurrent use. See the package documentation for the guarantees.
type Store interface {
	// PutIfAbsent creates name holding data unless it exists; when it
	// exists the error wraps ErrExist and nothing changes.
	PutIfAbsent(ctx context.Context, name string, data []byte) error
	// Put creates or atomically replaces name with data.
	Put(ctx context.Context, name string, data []byte) error
	// Create starts writing name as a stream; nothing is visible until
	// the Writer's Commit, which follows mode.
	Create(ctx context.Context, name string, mode Mode) (Writer, error)
	// Get returns the content of name; a missing name gives an error
	// wrapping ErrNotExist.
	Get(ctx context.Context, name string) ([]byte, error)
	// Open streams the content of name, for files too large to hold in
	// memory; a missing name gives an error wrapping ErrNotExist. The
	// caller closes the reader.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the entries directly under dir ("" for the root),
	// sorted by name. A missing dir is empty. Files being written (not yet
	// committed) are not listed.
	List(ctx context.Context, dir string) ([]Entry, error)
	// Delete removes the names given; missing names are not an error.
	Delete(ctx context.Context, names ...string) error
}

// Writer streams one file into a Store.
type Writer interface {
	io.Writer
	// Finish ends the writing and does the slow part of making the bytes
	// durable without making them visible: on the local disk it fsyncs
	// and closes the temporary file, on an object store it uploads the
	// blocks still buffered (a file small enough for one request stays
	// buffered until Commit). Calling it is optional; Write fails after it.
	// A caller that decides whether to publish only once the file is
	// written (the state store's snapshots) calls Finish, then Commit or
	// Abort.
	Finish() error
	// Commit makes the written bytes visible under the name, atomically
	// and durably, or fails (with ErrExist for a taken name in IfAbsent
	// mode). It finishes the file first if Finish was not called. The
	// Writer cannot be used afterwards.
	Commit() error
	// Abort discards what was written. It is a no-op after Commit or a
	// previous Abort.
	Abort()
}

// WriteOnce writes a file of a write-once log: it creates name with data
// unless it exists; an existing file with the same bytes is success (an
// idempotent replay of the same batch), one with other bytes an error
// wrapping ErrConflict.
func WriteOnce(ctx context.Context, s Store, name string, data []byte) error {
	err := s.PutIfAbsent(ctx, name, data)
	if !errors.Is(err, ErrExist) {
		return err
	}
	got, gerr := s.Get(ctx, name)
	if gerr != nil {
		return fmt.Errorf("compare with the existing %s: %w", name, gerr)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("%s: %w", name, ErrConflict)
	}
	return nil
}

// NewUUID returns a random (version 4) UUID in canonical form: query ids,
// run ids and the unique part of data file names.
func NewUUID() string { return uuid.NewString() }

// CheckName reports whether name is a valid store name: a relative,
// slash-separated, clean path without "." or ".." elements.
func CheckName(name string) error {
	if name == "" || name == "." || !fs.ValidPath(name) {
		return fmt.Errorf("storage: invalid name %q (want a relative slash-separated path without . or .. elements)", name)
	}
	return nil
}

// checkDir is CheckName for a directory argument, where "" is the root.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	return CheckName(dir)
}

// Sub returns the part of s under dir: its names are relative to dir. A
// checkpoint hands its state/ directory to a state store this way.
func Sub(s Store, dir string) (Store, error) {
	if err := CheckName(dir); err != nil {
		return nil, err
	}
	if sub, ok := s.(*subStore); ok {
		return &subStore{s: sub.s, dir: path.Join(sub.dir, dir)}, nil
	}
	return &subStore{s: s, dir: dir}, nil
}

type subStore struct {
	s   Store
	dir string
}

func (s *subStore) name(n string) (string, error) {
	if err := CheckName(n); err != nil {
		return "", err
	}
	return s.dir + "/" + n, nil
}

func (s *subStore) PutIfAbsent(ctx context.Context, name string, data []byte) error {
	n, err := s.name(name)
	if err != nil {
		return err
	}
	return s.s.PutIfAbsent(ctx, n, data)
}

func (s *subStore) Put(ctx context.Context, name string, data []byte) error {
	n, err := s.name(name)
	if err != nil {
		return err
	}
	return s.s.Put(ctx, n, data)
}

func (s *subStore) Create(ctx context.Context, name string, mode Mode) (Writer, error) {
	n, err := s.name(name)
	if err != nil {
		return nil, err
	}
	return s.s.Create(ctx, n, mode)
}

func (s *subStore) Get(ctx context.Context, name string) ([]byte, error) {
	n, err := s.name(name)
	if err != nil {
		return nil, err
	}
	return s.s.Get(ctx, n)
}

func (s *subStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	n, err := s.name(name)
	if err != nil {
		return nil, err
	}
	return s.s.Open(ctx, n)
}

// URI implements Locator.
func (s *subStore) URI(name string) string {
	if name == "" {
		return URI(s.s, s.dir)
	}
	return URI(s.s, s.dir+"/"+name)
}

// String names the sub-store's directory, for messages.
func (s *subStore) String() string { return s.URI("") }

func (s *subStore) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	return s.s.List(ctx, strings.TrimSuffix(s.dir+"/"+dir, "/"))
}

func (s *subStore) Delete(ctx context.Context, names ...string) error {
	full := make([]string, len(names))
	for i, n := range names {
		var err error
		if full[i], err = s.name(n); err != nil {
			return err
		}
	}
	return s.s.Delete(ctx, full...)
}

func (s *subStore) deleteUnsynced(ctx context.Context, names ...string) error {
	full := make([]string, len(names))
	for i, n := range names {
		var err error
		if full[i], err = s.name(n); err != nil {
			return err
		}
	}
	return DeleteUnsynced(ctx, s.s, full...)
}

// unsyncedDeleter is a store whose Delete pays extra to make removals
// durable (Local: a directory fsync) and that can skip it.
type unsyncedDeleter interface {
	deleteUnsynced(ctx context.Context, names ...string) error
}

// DeleteUnsynced removes names as Delete does, but does not wait for the
// removals to be durable where that costs extra: on the local disk the
// directories are not fsynced, so after a crash a removed file may be back.
// It is for files whose return is harmless and that a later call removes
// again, such as the old batches a checkpoint purges. Other stores delete
// as Delete does.
func DeleteUnsynced(ctx context.Context, s Store, names ...string) error {
	if d, ok := s.(unsyncedDeleter); ok {
		return d.deleteUnsynced(ctx, names...)
	}
	return s.Delete(ctx, names...)
}

// ReadOnly returns a view of s whose writes fail with ErrReadOnly: what a
// reader of another process's files (sluice status) gets.
func ReadOnly(s Store) Store { return readOnly{s} }

type readOnly struct{ s Store }

func (r readOnly) refuse(name string) error {
	return fmt.Errorf("storage: write %s: %w", name, ErrReadOnly)
}

func (r readOnly) PutIfAbsent(_ context.Context, name string, _ []byte) error { return r.refuse(name) }
func (r readOnly) Put(_ context.Context, name string, _ []byte) error         { return r.refuse(name) }
func (r readOnly) Create(_ context.Context, name string, _ Mode) (Writer, error) {
	return nil, r.refuse(name)
}
func (r readOnly) Get(ctx context.Context, name string) ([]byte, error) { return r.s.Get(ctx, name) }
func (r readOnly) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return r.s.Open(ctx, name)
}
func (r readOnly) URI(name string) string { return URI(r.s, name) }
func (r readOnly) String() string         { return URI(r.s, "") }
func (r readOnly) List(ctx context.Context, dir string) ([]Entry, error) {
	return r.s.List(ctx, dir)
}
func (r readOnly) Delete(_ context.Context, names ...string) error {
	return r.refuse(strings.Join(names, ", "))
}

// Locator is implemented by stores that can name their files as URIs
// (file:///…, abfss://…, s3a://…): what logs that list files by full path
// (the file sink's _spark_metadata) and messages use.
type Locator interface {
	// URI returns the URI of name ("" for the store's root).
	URI(name string) string
}

// URI returns the URI of name in s ("" for the root) when s is a Locator,
// otherwise name itself.
func URI(s Store, name string) string {
	if l, ok := s.(Locator); ok {
		return l.URI(name)
	}
	return name
}

// LocalRoot returns the local directory of s when s is a Local store or a
// Sub or ReadOnly view of one: what code that must hand a directory to a
// library doing its own I/O (Pebble) needs. ok is false for object stores.
func LocalRoot(s Store) (dir string, ok bool) {
	switch v := s.(type) {
	case *Local:
		return v.root, true
	case *subStore:
		root, ok := LocalRoot(v.s)
		if !ok {
			return "", false
		}
		return filepath.Join(root, filepath.FromSlash(v.dir)), true
	case readOnly:
		return LocalRoot(v.s)
	}
	return "", false
}

// Walk calls fn for every file under dir ("" for the root), depth first in
// name order, with its name relative to the store's root; a directory is
// skipped when skipDir returns true for its name (nil: none is). It lists
// each directory once (one List request per directory on object stores).
func Walk(ctx context.Context, s Store, dir string, skipDir func(name string) bool, fn func(name string, e Entry) error) error {
	ents, err := s.List(ctx, dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name
		if dir != "" {
			name = dir + "/" + e.Name
		}
		if e.IsDir {
			if skipDir != nil && skipDir(name) {
				continue
			}
			if err := Walk(ctx, s, name, skipDir, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(name, e); err != nil {
			return err
		}
	}
	return nil
}

// DeleteAll deletes every file under dir (a directory of a Local store is
// removed too once empty; object stores have no directories).
func DeleteAll(ctx context.Context, s Store, dir string) error {
	var names []string
	if err := Walk(ctx, s, dir, nil, func(name string, _ Entry) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return err
	}
	for len(names) > 0 {
		n := min(len(names), 1000)
		if err := s.Delete(ctx, names[:n]...); err != nil {
			return err
		}
		names = names[n:]
	}
	if l, ok := s.(*Local); ok {
		return l.removeEmptyDirs(dir)
	}
	return nil
}
