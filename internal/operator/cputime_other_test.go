//go:build !unix

package operator

import "time"

func processCPU() time.Duration { return 0 }
