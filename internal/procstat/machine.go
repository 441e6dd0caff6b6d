package procstat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MachineCPU is the machine-wide CPU time from the first line of
// /proc/stat, in clock ticks (USER_HZ) summed over all CPUs.
type MachineCPU struct {
	// Busy is user + nice + system + irq + softirq + steal; Total adds
	// idle and iowait.
	Busy, Total int64
}

// ReadMachineCPU reads the machine's CPU counters from /proc/stat.
func ReadMachineCPU() (MachineCPU, error) { return readMachineCPU("/proc/stat") }

func readMachineCPU(file string) (MachineCPU, error) {
	f, err := os.Open(file)
	if err != nil {
		return MachineCPU{}, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return MachineCPU{}, fmt.Errorf("procstat: read %s: %w", file, err)
	}
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return MachineCPU{}, fmt.Errorf("procstat: %s does not start with the cpu line: %q", file, line)
	}
	var v [8]int64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if i+1 >= len(fields) {
			break // steal is missing on old kernels
		}
		n, err := strconv.ParseInt(fields[i+1], 10, 64)
		if err != nil {
			return MachineCPU{}, fmt.Errorf("procstat: %s cpu field %d: %w", file, i+1, err)
		}
		v[i] = n
	}
	busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return MachineCPU{Busy: busy, Total: busy + v[3] + v[4]}, nil
}

// BusyFraction is the share of the machine's CPU time that was busy between
// m (earlier) and later: 1 means every core worked the whole time. It is 0
// when no time passed.
func (m MachineCPU) BusyFraction(later MachineCPU) float64 {
	total := later.Total - m.Total
	if total <= 0 {
		return 0
	}
	return float64(later.Busy-m.Busy) / float64(total)
}
