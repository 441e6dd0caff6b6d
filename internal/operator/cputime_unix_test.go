//go:build unix

package operator

import (
	"syscall"
	"time"
)

// processCPU is the process's user + system CPU time: benchmarks report it
// per row beside wall time, which a machine shared with other work
// inflates.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
