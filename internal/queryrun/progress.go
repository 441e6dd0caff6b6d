package queryrun

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/sluice-stream/sluice/progress"
)

// ReadProgress reads a progress JSON-lines file (`sluice run
// --progress-file`). A missing file means no batch ran: no progress, no
// error.
func ReadProgress(path string) ([]*progress.Progress, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no batch ran
	}
	if err != nil {
		return nil, fmt.Errorf("queryrun: %w", err)
	}
	defer f.Close()
	var out []*progress.Progress
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var p progress.Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("queryrun: %s:%d: %w", path, n, err)
		}
		out = append(out, &p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("queryrun: read %s: %w", path, err)
	}
	return out, nil
}
