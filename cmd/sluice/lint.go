package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/pipeline"
)

// runLint checks pipeline files without connecting to anything: the same
// checks `sluice run` makes before it starts a query. It prints one line per
// problem, "file:line:col: message" (or a JSON array with --format json),
// and exits 1 when there is any.
func runLint(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lint", stderr)
	format := fs.String("format", "text", `output: text ("file:line:col: message" per problem) or json (an array of {file, line, column, message})`)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice lint [--format text|json] PIPELINE.yaml…")
		printFlags(stderr, fs)
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return &exitError{code: 2, err: fmt.Errorf("--format %q: allowed: text, json", *format)}
	}
	if len(files) == 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("missing PIPELINE.yaml")}
	}
	problems := []sluice.Problem{}
	for _, f := range files {
		data, err := pipeline.ReadFile(f) // a regular file of bounded size, as sluice run reads it
		if err != nil {
			problems = append(problems, sluice.Problem{File: f, Message: fmt.Sprintf("cannot read the file: %v", err)})
			continue
		}
		problems = append(problems, sluice.LintPipeline(f, data, os.LookupEnv)...)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(problems); err != nil {
			return err
		}
	} else {
		for _, p := range problems {
			fmt.Fprintln(stdout, p)
		}
	}
	if len(problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %d file(s)", len(problems), len(files))}
	}
	return nil
}

// parseInterspersed parses fs from args, accepting flags before and after
// the positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}
