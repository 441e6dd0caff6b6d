//go:build !linux

package state

import "errors"

// platformFSSync: batch durability needs Linux's syncfs(2); elsewhere every
// file is fsynced on its own.
func platformFSSync(string) (func() error, func(), error) {
	return nil, nil, errors.New("syncfs(2) is Linux only")
}
