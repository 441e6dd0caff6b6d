package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sluice-stream/sluice"
)

// runExplain prints a pipeline file's logical plan and the physical plan it
// runs (stages, exchange, state stores), without connecting to anything.
func runExplain(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("explain", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice explain PIPELINE.yaml")
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("want one PIPELINE.yaml")}
	}
	s := sluice.NewSession(sluice.WithLogger(slog.New(slog.DiscardHandler)))
	w, err := s.PipelineFile(files[0])
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	out, err := w.Explain()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	_, err = io.WriteString(stdout, out)
	return err
}
