package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// DuckDBDir returns the directory holding node_modules/@duckdb/node-api
// named by SLUICE_DUCKDB_DIR (.ci/run installs it there with npm). A test
// calling it is skipped without it, unless SLUICE_REQUIRE_INTEROP=1, which
// makes its absence a failure.
func DuckDBDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SLUICE_DUCKDB_DIR")
	missing := ""
	switch {
	case dir == "":
		missing = "SLUICE_DUCKDB_DIR is not set"
	default:
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
			missing = "no node_modules/@duckdb/node-api in SLUICE_DUCKDB_DIR=" + dir
		} else if _, err := exec.LookPath("node"); err != nil {
			missing = "node is not on PATH"
		}
	}
	if missing != "" {
		if os.Getenv("SLUICE_REQUIRE_INTEROP") == "1" {
			t.Fatalf("DuckDB interop check required but unavailable: %s", missing)
		}
		t.Skipf("DuckDB interop check skipped: %s", missing)
	}
	return dir
}

// VerifyScript is the path of internal/sink/file/testdata/verify.mjs, the
// DuckDB reader of file sink and Delta tables (see its header for the
// arguments and output).
func VerifyScript() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "sink", "file", "testdata", "verify.mjs")
}

// RunVerify runs verify.mjs with args (flags, then the table directory)
// and returns its JSON output.
func RunVerify(t testing.TB, duckDir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("node", append([]string{VerifyScript()}, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_DUCKDB_DIR="+duckDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify.mjs: %v\n%s", err, stderr.String())
	}
	return out
}
