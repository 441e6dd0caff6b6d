package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/internal/redact"
)

// objectBackend is one bucket (S3) or container (Azure) of an object
// store, addressed by full keys. Its errors wrap ErrExist for a lost
// conditional write and ErrNotExist for a missing key.
type objectBackend interface {
	// put uploads data as key in one request; with ifAbsent the write is
	// conditional (If-None-Match: *).
	put(ctx context.Context, key string, data []byte, ifAbsent bool) error
	get(ctx context.Context, key string) (io.ReadCloser, error)
	// list lists the keys directly under prefix (which is "" or ends in
	// "/"), with "/" as the delimiter: files with their full keys, and the
	// common prefixes (without the trailing "/").
	list(ctx context.Context, prefix string) (files []Entry, dirs []string, err error)
	// delete removes keys; missing keys are not an error.
	delete(ctx context.Context, keys []string) error
	// newUpload starts a multi-part upload of key.
	newUpload(ctx context.Context, key string) (multipartUpload, error)
	// minPart is the smallest size of a part other than the last.
	minPart() int
	// uri returns the URI of key.
	uri(key string) string
}

// multipartUpload is an upload in parts (S3 multipart upload, Azure block
// list) that becomes visible only when completed.
type multipartUpload interface {
	// part uploads part n (0, 1, …); parts may be uploaded concurrently.
	part(ctx context.Context, n int, data []byte) error
	// complete publishes parts 0..parts-1 as the object, conditionally
	// when ifAbsent.
	complete(ctx context.Context, parts int, ifAbsent bool) error
	// abort discards the parts (best effort).
	abort(ctx context.Context)
}

// Upload tuning defaults.
const (
	// DefaultBlockSize is the size of one uploaded block or part: a file
	// larger than this is uploaded in parts, several at a time.
	DefaultBlockSize = 8 << 20
	// DefaultUploadConcurrency is how many parts of one file are uploaded
	// at once.
	DefaultUploadConcurrency = 4
	// DefaultUploadMemory bounds the upload buffers of one store when no
	// memory budget gives it a share.
	DefaultUploadMemory = 64 << 20
	// minBuffer is the first allocation of a writer's buffer, which then
	// doubles up to the block size: small files stay small.
	minBuffer = 64 << 10
)

// objectStore is a Store on an object store: every name is the key
// prefix + "/" + name. Files become visible when their upload completes
// (object stores make a single PUT and a completed multi-part upload
// atomic), put-if-absent is the store's conditional write, and nothing is
// ever renamed.
type objectStore struct {
	b           objectBackend
	prefix      string // "" or a key prefix without a trailing "/"
	scrub       redact.Scrubber
	pool        *bufferPool
	blockSize   int
	concurrency int
}

func (s *objectStore) key(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	if s.prefix == "" {
		return name, nil
	}
	return s.prefix + "/" + name, nil
}

// URI implements Locator.
func (s *objectStore) URI(name string) string {
	k := s.prefix
	if name != "" {
		if k != "" {
			k += "/"
		}
		k += name
	}
	return s.b.uri(k)
}

// String returns the root URI, for messages.
func (s *objectStore) String() string { return s.URI("") }

// wrap names the file in an error from the backend and removes secrets
// from it (a request URL may carry a SAS token).
func (s *objectStore) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return s.scrub.Err(fmt.Errorf("storage: %s %s: %w", op, s.URI(name), err))
}

// PutIfAbsent implements Store. A conditional write that finds the name
// taken by identical bytes succeeds: the SDKs retry a request whose answer
// was lost, and the retry of a write that landed finds its own file.
func (s *objectStore) PutIfAbsent(ctx context.Context, name string, data []byte) error {
	k, err := s.key(name)
	if err != nil {
		return err
	}
	return s.wrap("write", name, s.putIfAbsent(ctx, k, data))
}

func (s *objectStore) putIfAbsent(ctx context.Context, key string, data []byte) error {
	err := s.b.put(ctx, key, data, true)
	if !errors.Is(err, ErrExist) {
		return err
	}
	if same, _ := s.sameContent(ctx, key, data); same {
		return nil
	}
	return err
}

// sameContent reports whether key holds exactly data.
func (s *objectStore) sameContent(ctx context.Context, key string, data []byte) (bool, error) {
	r, err := s.b.get(ctx, key)
	if err != nil {
		return false, err
	}
	defer r.Close()
	got, err := io.ReadAll(io.LimitReader(r, int64(len(data))+1))
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, data), nil
}

// Put implements Store.
func (s *objectStore) Put(ctx context.Context, name string, data []byte) error {
	k, err := s.key(name)
	if err != nil {
		return err
	}
	return s.wrap("write", name, s.b.put(ctx, k, data, false))
}

// Get implements Store.
func (s *objectStore) Get(ctx context.Context, name string) ([]byte, error) {
	r, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, s.wrap("read", name, err)
	}
	return data, nil
}

// Open implements Store.
func (s *objectStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	k, err := s.key(name)
	if err != nil {
		return nil, err
	}
	r, err := s.b.get(ctx, k)
	if err != nil {
		return nil, s.wrap("read", name, err)
	}
	return r, nil
}

// List implements Store.
func (s *objectStore) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	prefix := s.prefix
	if dir != "" {
		if prefix != "" {
			prefix += "/"
		}
		prefix += dir
	}
	if prefix != "" {
		prefix += "/"
	}
	files, dirs, err := s.b.list(ctx, prefix)
	if err != nil {
		return nil, s.wrap("list", dir, err)
	}
	byName := map[string]Entry{}
	for _, d := range dirs {
		n := strings.TrimPrefix(d, prefix)
		if n != "" && !strings.Contains(n, "/") {
			byName[n] = Entry{Name: n, IsDir: true}
		}
	}
	for _, f := range files {
		n := strings.TrimPrefix(f.Name, prefix)
		if n == "" || strings.Contains(n, "/") {
			continue // a directory marker
		}
		if e, ok := byName[n]; ok && e.IsDir {
			continue
		}
		f.Name = n
		byName[n] = f
	}
	if len(byName) == 0 {
		return nil, nil
	}
	out := make([]Entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete implements Store.
func (s *objectStore) Delete(ctx context.Context, names ...string) error {
	keys := make([]string, len(names))
	for i, n := range names {
		k, err := s.key(n)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	if len(keys) == 0 {
		return nil
	}
	if err := s.b.delete(ctx, keys); err != nil {
		return s.scrub.Err(fmt.Errorf("storage: delete under %s: %w", s.URI(""), err))
	}
	return nil
}

// Create implements Store: the writer buffers up to one block; a file that
// fits in one block is uploaded by Commit in one request, a larger one in
// blocks (several at a time) as they fill, published by Commit.
func (s *objectStore) Create(ctx context.Context, name string, mode Mode) (Writer, error) {
	if mode != IfAbsent && mode != Replace {
		return nil, fmt.Errorf("storage: create %s: unknown mode %v", name, mode)
	}
	k, err := s.key(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	uctx, cancel := context.WithCancel(ctx)
	bs := max(s.blockSize, s.b.minPart())
	return &objectWriter{s: s, name: name, key: k, mode: mode, ctx: uctx, cancel: cancel, blockSize: bs,
		sem: make(chan struct{}, max(s.concurrency, 1))}, nil
}

// SetUploadMemory sets the bytes the store's writers may hold in upload
// buffers together (at least two blocks).
func (s *objectStore) SetUploadMemory(limit int64) {
	s.pool.setLimit(max(limit, 2*int64(max(s.blockSize, s.b.minPart()))))
}

// UploadMemory returns the upload buffer limit.
func (s *objectStore) UploadMemory() int64 { return s.pool.getLimit() }

// objectWriter streams one object. Its buffer and the blocks being
// uploaded are charged to the store's buffer pool.
type objectWriter struct {
	s         *objectStore
	name, key string
	mode      Mode
	ctx       context.Context
	cancel    context.CancelFunc
	blockSize int

	buf  []byte // the block being filled; cap(buf) is charged to the pool
	up   multipartUpload
	n    int // parts dispatched
	sem  chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	uerr error // first upload error

	finished, done bool
}

func (w *objectWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.uerr
}

func (w *objectWriter) Write(p []byte) (int, error) {
	if w.done || w.finished {
		return 0, fmt.Errorf("storage: write %s: writer already finished", w.s.URI(w.name))
	}
	written := 0
	for len(p) > 0 {
		if err := w.failed(); err != nil {
			return written, err
		}
		if len(w.buf) == w.blockSize {
			if err := w.dispatch(); err != nil {
				return written, err
			}
		}
		if len(w.buf) == cap(w.buf) {
			if err := w.grow(len(p)); err != nil {
				return written, w.s.wrap("write", w.name, err)
			}
		}
		n := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		written += n
	}
	return written, nil
}

// grow enlarges the buffer (doubling, up to a block) for want more bytes,
// charging the pool.
func (w *objectWriter) grow(want int) error {
	c := cap(w.buf)
	nc := min(w.blockSize, max(2*c, minBuffer, len(w.buf)+want))
	if err := w.s.pool.acquire(w.ctx, int64(nc-c)); err != nil {
		return err
	}
	nb := make([]byte, len(w.buf), nc)
	copy(nb, w.buf)
	w.buf = nb
	return nil
}

// dispatch hands the buffer to an upload goroutine as the next part.
func (w *objectWriter) dispatch() error {
	if w.up == nil {
		up, err := w.s.b.newUpload(w.ctx, w.key)
		if err != nil {
			return w.s.wrap("write", w.name, err)
		}
		w.up = up
	}
	select {
	case w.sem <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	data, held, n := w.buf, int64(cap(w.buf)), w.n
	w.buf = nil
	w.n++
	w.s.pool.uploadStarted()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		err := w.up.part(w.ctx, n, data)
		w.s.pool.uploadDone(held)
		<-w.sem
		if err != nil {
			w.mu.Lock()
			if w.uerr == nil {
				w.uerr = w.s.wrap("write", w.name, fmt.Errorf("part %d: %w", n, err))
			}
			w.mu.Unlock()
			w.cancel()
		}
	}()
	return nil
}

func (w *objectWriter) releaseBuf() {
	if c := cap(w.buf); c > 0 {
		w.s.pool.release(int64(c))
	}
	w.buf = nil
}

// Finish implements Writer: a file already being uploaded in parts gets
// its last part uploaded and every part waited for; a file that fits in
// one request stays buffered for Commit.
func (w *objectWriter) Finish() error {
	if w.done {
		return fmt.Errorf("storage: finish %s: writer already finished", w.s.URI(w.name))
	}
	if w.finished {
		return w.failed()
	}
	w.finished = true
	if w.up != nil && len(w.buf) > 0 {
		if err := w.dispatch(); err != nil {
			w.wg.Wait()
			return err
		}
	}
	w.wg.Wait()
	return w.failed()
}

// Commit implements Writer.
func (w *objectWriter) Commit() error {
	if w.done {
		return fmt.Errorf("storage: commit %s: writer already finished", w.s.URI(w.name))
	}
	err := w.Finish()
	w.done = true
	defer w.cancel()
	defer w.releaseBuf()
	if err != nil {
		w.abortUpload()
		return err
	}
	if w.up == nil {
		if w.mode == IfAbsent {
			err = w.s.putIfAbsent(w.ctx, w.key, w.buf)
		} else {
			err = w.s.b.put(w.ctx, w.key, w.buf, false)
		}
		return w.s.wrap("write", w.name, err)
	}
	if err := w.up.complete(w.ctx, w.n, w.mode == IfAbsent); err != nil {
		if errors.Is(err, ErrExist) {
			w.abortUpload()
		}
		return w.s.wrap("write", w.name, err)
	}
	return nil
}

func (w *objectWriter) abortUpload() {
	if w.up == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	w.up.abort(ctx)
}

// Abort implements Writer.
func (w *objectWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.cancel()
	w.wg.Wait()
	w.releaseBuf()
	w.abortUpload()
}

// bufferPool counts the bytes a store's writers hold in upload buffers
// against a limit. A writer that needs more waits while uploads are in
// flight (each returns its block's bytes when done); when none is, waiting
// could never end (every byte is in half-filled buffers of files still
// being written), so the request is granted beyond the limit and counted
// in Overdraft.
type bufferPool struct {
	mu       sync.Mutex
	limit    int64
	used     int64
	peak     int64
	inflight int
	over     int64 // bytes granted beyond the limit, cumulative
	wake     chan struct{}
}

func newBufferPool(limit int64) *bufferPool {
	return &bufferPool{limit: limit, wake: make(chan struct{})}
}

func (p *bufferPool) setLimit(n int64) {
	p.mu.Lock()
	p.limit = n
	p.signalLocked()
	p.mu.Unlock()
}

func (p *bufferPool) getLimit() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

func (p *bufferPool) signalLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *bufferPool) acquire(ctx context.Context, n int64) error {
	for {
		p.mu.Lock()
		if p.used+n <= p.limit || p.inflight == 0 {
			if p.used+n > p.limit {
				p.over += p.used + n - max(p.limit, p.used)
			}
			p.used += n
			p.peak = max(p.peak, p.used)
			p.mu.Unlock()
			return nil
		}
		ch := p.wake
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *bufferPool) release(n int64) {
	p.mu.Lock()
	p.used -= n
	p.signalLocked()
	p.mu.Unlock()
}

func (p *bufferPool) uploadStarted() {
	p.mu.Lock()
	p.inflight++
	p.mu.Unlock()
}

func (p *bufferPool) uploadDone(n int64) {
	p.mu.Lock()
	p.inflight--
	p.used -= n
	p.signalLocked()
	p.mu.Unlock()
}

// BufferStats describes a store's upload buffers.
type BufferStats struct {
	// Limit is the bytes writers may hold together; Used what they hold
	// now and Peak the most they held at once.
	Limit, Used, Peak int64
	// Overdraft counts bytes granted beyond Limit because no upload was in
	// flight to free any (more files open at once than Limit holds blocks).
	Overdraft int64
}

// UploadBuffers returns the upload buffer figures of s (or of the store s
// is a Sub or ReadOnly view of); ok is false for stores without upload
// buffers (the local disk).
func UploadBuffers(s Store) (BufferStats, bool) {
	o, ok := objectOf(s)
	if !ok {
		return BufferStats{}, false
	}
	p := o.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	return BufferStats{Limit: p.limit, Used: p.used, Peak: p.peak, Overdraft: p.over}, true
}

// SetUploadMemory bounds the upload buffers of s (see UploadBuffers) and
// returns the bound in force (at least two blocks); 0 and false for stores
// without upload buffers.
func SetUploadMemory(s Store, limit int64) (int64, bool) {
	o, ok := objectOf(s)
	if !ok {
		return 0, false
	}
	o.SetUploadMemory(limit)
	return o.UploadMemory(), true
}

func objectOf(s Store) (*objectStore, bool) {
	switch v := s.(type) {
	case *objectStore:
		return v, true
	case *subStore:
		return objectOf(v.s)
	case readOnly:
		return objectOf(v.s)
	}
	return nil, false
}

// IsRemote reports whether s (or the store it is a view of) is an object
// store rather than the local disk.
func IsRemote(s Store) bool {
	_, ok := objectOf(s)
	return ok
}
