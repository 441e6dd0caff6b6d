package sluice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/options"
)

// sluice.vacuumOnStart deletes, when the query starts, the data files no
// log lists that are older than sluice.vacuumRetention.
func TestVacuumOnStart(t *testing.T) {
	for _, format := range []string{"parquet", "delta"} {
		t.Run(format, func(t *testing.T) {
			path, chk := filepath.Join(t.TempDir(), "out"), t.TempDir()
			if _, err := runRateOnce(t, format, path, chk, 10, nil); err != nil {
				t.Fatal(err)
			}
			old, young := filepath.Join(path, "part-00000-killed.c000.snappy.parquet"), filepath.Join(path, "part-00001-writing.c000.snappy.parquet")
			for _, f := range []string{old, young} {
				if err := os.WriteFile(f, []byte("not committed"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			twoHours := time.Now().Add(-2 * time.Hour)
			os.Chtimes(old, twoHours, twoHours)

			_, err := runRateOnce(t, format, path, chk, 10, map[string]string{"sluice.vacuumOnStart": "true", "sluice.vacuumRetention": "10 minutes"})
			if options.OptionOf(err) != "sluice.vacuumRetention" || !strings.Contains(err.Error(), "at least 1 hour") {
				t.Errorf("short retention: err = %v", err)
			}
			if _, err := runRateOnce(t, format, path, chk, 10, map[string]string{"sluice.vacuumOnStart": "true", "sluice.vacuumRetention": "1 hour"}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(old); err == nil {
				t.Error("the old unlisted file survived the start-up vacuum")
			}
			if _, err := os.Stat(young); err != nil {
				t.Errorf("the young unlisted file was deleted: %v", err)
			}
			if got := committedRows(t, format, path); got != 20 {
				t.Errorf("%d rows, want 20", got)
			}
		})
	}
}
