//go:build !unix

package checkpoint

import (
	"fmt"
	"sync"
)

// On platforms without flock(2) the lock only guards against a second Open
// in the same process.
var (
	heldMu sync.Mutex
	held   = map[string]bool{}
)

type fileLock struct{ path string }

func acquireLock(path string) (*fileLock, error) {
	heldMu.Lock()
	defer heldMu.Unlock()
	if held[path] {
		return nil, fmt.Errorf("%w: lock %s is taken; two queries cannot share a checkpoint location", ErrLocked, path)
	}
	held[path] = true
	return &fileLock{path: path}, nil
}

func (l *fileLock) release() error {
	heldMu.Lock()
	defer heldMu.Unlock()
	delete(held, l.path)
	return nil
}
