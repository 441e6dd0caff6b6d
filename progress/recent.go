package progress

import "sync"

// DefaultRecent is the default number of reports Recent keeps, Spark's
// spark.sql.streaming.numRecentProgressUpdates.
const DefaultRecent = 100

// Recent keeps the last N progress reports (Spark's recentProgress). It is
// safe for concurrent use.
//
// Spark's queue evicts while its length is >= the setting, so with the
// default 100 it really holds 99 reports; Recent holds exactly N.
type Recent struct {
	mu   sync.Mutex
	buf  []*Progress // ring, len == capacity once full
	next int         // where the next report goes once full
	n    int         // capacity
}

// NewRecent returns a Recent holding up to n reports; n <= 0 means
// DefaultRecent.
func NewRecent(n int) *Recent {
	if n <= 0 {
		n = DefaultRecent
	}
	return &Recent{n: n, buf: make([]*Progress, 0, min(n, DefaultRecent))}
}

// Add appends p, evicting the oldest report when full. p must not be
// modified afterwards.
func (r *Recent) Add(p *Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < r.n {
		r.buf = append(r.buf, p)
		return
	}
	r.buf[r.next] = p
	r.next = (r.next + 1) % r.n
}

// Last returns the newest report, or nil if there is none.
func (r *Recent) Last() *Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return nil
	}
	if len(r.buf) < r.n {
		return r.buf[len(r.buf)-1]
	}
	return r.buf[(r.next+r.n-1)%r.n]
}

// All returns the reports oldest first, in a new slice.
func (r *Recent) All() []*Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Progress, 0, len(r.buf))
	if len(r.buf) < r.n {
		return append(out, r.buf...)
	}
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// Len returns how many reports are held.
func (r *Recent) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buf)
}
