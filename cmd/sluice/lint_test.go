package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice"
)

// TestLintExamples: every shipped example is lint-clean (exit 0, no
// output), with an empty environment so the examples' ${VAR:-default}s
// are what is checked.
func TestLintExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if probs := sluice.LintPipeline(f, data, func(string) (string, bool) { return "", false }); len(probs) > 0 {
			t.Errorf("%s: %v", f, probs)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := realMain(append([]string{"lint"}, files...), &stdout, &stderr); code != 0 || stdout.Len() > 0 {
		t.Errorf("sluice lint examples: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// TestLintBrokenFiles: each broken file under testdata/lint gives exactly
// the lines of its .txt file — one per problem, at the offending key's line
// and column — and exit code 1.
func TestLintBrokenFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/lint/*.yaml")
	if len(files) < 3 {
		t.Fatalf("want at least 3 broken files, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := realMain([]string{"lint", f}, &stdout, &stderr)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if got := stdout.String(); got != string(want) {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			lines := strings.Split(strings.TrimSpace(string(want)), "\n")
			if !strings.Contains(stderr.String(), "sluice lint: "+strconv.Itoa(len(lines))+" problem(s)") {
				t.Errorf("stderr = %q", stderr.String())
			}
		})
	}
	// The options file's problems each sit on the option's own key.
	var stdout bytes.Buffer
	realMain([]string{"lint", "testdata/lint/options.yaml"}, &stdout, new(bytes.Buffer))
	for _, want := range []string{
		`options.yaml:5:3: options: unknown session configuration option "sluice.wrokers"; did you mean "sluice.workers"?`,
		`options.yaml:12:5: source: unknown kafka source option "maxOffsetsPerTriger"; did you mean "maxOffsetsPerTrigger"?`,
		`options.yaml:13:5: source: option "failOnDataLoss": invalid value "maybe"; allowed: true, false`,
		`options.yaml:16:5: source: unknown kafka source option "kafka.sasl.pasword"; did you mean "kafka.sasl.password"?`,
		`options.yaml:15:5: source: option "kafka.auto.offset.reset": Kafka option 'auto.offset.reset' is not supported. Instead set the source option 'startingoffsets'`,
		`options.yaml:21:15: sink.outputMode: [STREAMING_OUTPUT_MODE.UNSUPPORTED_DATASOURCE] Invalid streaming output mode: update. This output mode is not supported in Data Source parquet. ` +
			`(the parquet sink does not support output mode "update"; allowed: append)`,
		`options.yaml:24:5: sink: option "compression": invalid value "brotli"`,
		`options.yaml:30:5: deadLetter: unknown delta sink option "pth"; did you mean "path"?`,
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestLintJSON: --format json prints an array of problems (empty for clean
// files) with the same positions.
func TestLintJSON(t *testing.T) {
	var stdout bytes.Buffer
	code := realMain([]string{"lint", "--format", "json", "testdata/lint/structure.yaml", "../../examples/orders-console.yaml"}, &stdout, new(bytes.Buffer))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var probs []sluice.Problem
	if err := json.Unmarshal(stdout.Bytes(), &probs); err != nil {
		t.Fatalf("%v in %s", err, stdout.String())
	}
	if len(probs) != 5 || probs[1].Line != 5 || probs[1].Column != 3 || !strings.Contains(probs[1].Message, `unknown key "fromat"`) ||
		probs[1].File != "testdata/lint/structure.yaml" {
		t.Errorf("problems = %+v", probs)
	}
	stdout.Reset()
	if code := realMain([]string{"lint", "../../examples/orders-console.yaml", "--format=json"}, &stdout, new(bytes.Buffer)); code != 0 || strings.TrimSpace(stdout.String()) != "[]" {
		t.Errorf("clean file: exit %d, output %q", code, stdout.String())
	}
	if code := realMain([]string{"lint", "--format", "xml", "x.yaml"}, new(bytes.Buffer), new(bytes.Buffer)); code != 2 {
		t.Errorf("bad --format: exit %d, want 2", code)
	}
	if code := realMain([]string{"lint", "does-not-exist.yaml"}, &stdout, new(bytes.Buffer)); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

// TestCompletionScripts: the generated scripts are valid shell (bash -n,
// zsh -n when zsh is installed) and offer every command and their flags.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		t.Run(shell, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := realMain([]string{"completion", shell}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			script := stdout.String()
			for _, c := range commands {
				if !strings.Contains(script, c.name) {
					t.Errorf("script lacks command %q", c.name)
				}
			}
			for _, want := range []string{"--log-format", "--progress-file", "kafka", "parquet"} {
				if !strings.Contains(script, want) {
					t.Errorf("script lacks %q", want)
				}
			}
			path, err := exec.LookPath(shell)
			if err != nil {
				if shell == "bash" || os.Getenv("SLUICE_REQUIRE_INTEROP") == "1" {
					t.Fatalf("%s not found (.ci/run installs it)", shell)
				}
				t.Skipf("%s not installed", shell)
			}
			f := filepath.Join(t.TempDir(), "completion."+shell)
			os.WriteFile(f, stdout.Bytes(), 0o644)
			if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
	if code := realMain([]string{"completion", "fish"}, new(bytes.Buffer), new(bytes.Buffer)); code != 2 {
		t.Errorf("fish: exit %d, want 2", code)
	}
}

// TestBashCompletionCompletes runs the bash function as bash would.
func TestBashCompletionCompletes(t *testing.T) {
	var script bytes.Buffer
	realMain([]string{"completion", "bash"}, &script, new(bytes.Buffer))
	for _, tc := range []struct {
		line string // words typed so far; the last is being completed
		want string
	}{
		{"sluice li", "lint"},
		{"sluice run --log-f", "--log-format"},
		{"sluice options kaf", "kafka"},
		{"sluice completion z", "zsh"},
	} {
		words := strings.Fields(tc.line)
		prog := script.String() + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
			"\n_sluice\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command("bash", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.line, err, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%q completes to %q, want %q among them", tc.line, out, tc.want)
		}
	}
}

// TestEveryCommandDescribesItsFlags: every command stops at --help before
// doing anything, so completion and the reference can list its flags.
func TestEveryCommandDescribesItsFlags(t *testing.T) {
	for _, c := range commands {
		flags := flagsOf(c) // panics if the command does not stop at --help
		logs := map[string]bool{"demo": true, "broker": true, "run": true, "loadgen": true, "rehearse": true, "bench": true}
		has := false
		for _, f := range flags {
			has = has || f.Name == "log-format"
		}
		if logs[c.name] != has {
			t.Errorf("sluice %s: --log-format %v, want %v (every command that logs takes it)", c.name, has, logs[c.name])
		}
	}
}

// TestReferenceUpToDate regenerates docs/reference.md and fails when the
// committed file differs: run `go generate ./cmd/sluice` after changing a
// format, an option, a command or a function.
func TestReferenceUpToDate(t *testing.T) {
	want := reference()
	got, err := os.ReadFile("../../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/reference.md is stale: run `go generate ./cmd/sluice` and commit the result")
	}
	for _, must := range []string{"### source: eventhubs", "`kafka.sasl.jaas.config` | string, **secret**", "`kafka.ssl.ca.location`",
		"`sluice.commitGroup`", "`sluice.metrics.partitionLabels`", "### sink: foreachBatch", "### sluice lint", "`--log-format`", "`substring(str, pos[, len])`"} {
		if !strings.Contains(want, must) {
			t.Errorf("reference lacks %q", must)
		}
	}
}

// TestOptionsAndFunctions: the terminal listings come from the same specs.
func TestOptionsAndFunctions(t *testing.T) {
	var out bytes.Buffer
	if code := realMain([]string{"options"}, &out, new(bytes.Buffer)); code != 0 || !strings.Contains(out.String(), "eventhubs") || !strings.Contains(out.String(), "foreachBatch") {
		t.Errorf("options: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := realMain([]string{"options", "kafka"}, &out, new(bytes.Buffer)); code != 0 {
		t.Fatalf("options kafka: exit %d", code)
	}
	for _, want := range []string{"source kafka:", "sink kafka:", "kafka.sasl.password", "string, secret", "maxOffsetsPerTrigger", "output modes: append, update, complete"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("options kafka lacks %q", want)
		}
	}
	out.Reset()
	var stderr bytes.Buffer
	if code := realMain([]string{"options", "parqet"}, &out, &stderr); code != 1 || !strings.Contains(stderr.String(), `did you mean "parquet"?`) {
		t.Errorf("options parqet: exit %d, %s", code, stderr.String())
	}
	out.Reset()
	if code := realMain([]string{"options", "query"}, &out, new(bytes.Buffer)); code != 0 || !strings.Contains(out.String(), "checkpointLocation") {
		t.Errorf("options query: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := realMain([]string{"functions"}, &out, new(bytes.Buffer)); code != 0 || !strings.Contains(out.String(), "current_timestamp()") ||
		!strings.Contains(out.String(), "concat_ws(sep, str, ...)") {
		t.Errorf("functions: exit %d\n%s", code, out.String())
	}
}

// TestLogFormatJSON: --log-format json makes the logs JSON objects (slog's
// JSON handler), one a line; text stays key=value; anything else is refused.
func TestLogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte("name: logs\nsource:\n  format: rate-micro-batch\n  options: {rowsPerBatch: 5, numPartitions: 1}\nsink:\n  format: noop\ntrigger:\n  once: true\n"), 0o644)
	for _, tc := range []struct{ format, want string }{
		{"json", `"level":"WARN"`},
		{"text", "level=WARN"},
	} {
		var stdout, stderr bytes.Buffer
		code := realMain([]string{"run", p, "--quiet", "--ui-addr", "off", "--log-format", tc.format}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", tc.format, code, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) == 0 || !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "temporary checkpoint") {
			t.Fatalf("%s logs:\n%s", tc.format, stderr.String())
		}
		if tc.format == "json" {
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["time"] == nil {
					t.Errorf("not a JSON log line: %q (%v)", l, err)
				}
			}
		}
	}
	var stderr bytes.Buffer
	if code := realMain([]string{"run", p, "--log-format", "yaml"}, new(bytes.Buffer), &stderr); code == 0 || !strings.Contains(stderr.String(), "allowed: text, json") {
		t.Errorf("bad --log-format: exit %d, %s", code, stderr.String())
	}
}
