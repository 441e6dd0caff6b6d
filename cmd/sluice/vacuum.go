package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

func runVacuum(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vacuum", stderr)
	retention := fs.String("retention", "", "delete unlisted files older than this (default: the Delta table's delta.deletedFileRetentionDuration, else 168h)")
	dryRun := fs.Bool("dry-run", false, "list the files that would be deleted, delete nothing")
	force := fs.Bool("force", false, "allow a retention below the safe minimum (only when no writer or reader of the output can be running)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New("vacuum: want one PATH, the output directory of a file or Delta sink")}
	}
	path := fs.Arg(0)
	root, err := filesink.ResolveRoot(path)
	if err != nil {
		return err
	}
	kind, err := outputKind(ctx, root, path)
	if err != nil {
		return err
	}
	o := vacuum.Options{DryRun: *dryRun, Force: *force, Retention: vacuum.DefaultRetention}
	if kind == "delta" {
		if o.Retention, err = delta.Retention(root); err != nil {
			return err
		}
	}
	if *retention != "" {
		if o.Retention, err = options.ParseInterval(*retention); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("vacuum: --retention: %w", err)}
		}
	}
	var res vacuum.Result
	switch kind {
	case "delta":
		res, err = delta.Vacuum(ctx, root, o)
	default:
		res, err = filesink.Vacuum(ctx, root, o)
	}
	if err != nil {
		return err
	}
	verb := "deleted"
	if o.DryRun {
		verb = "would delete"
		for _, n := range res.Deleted {
			fmt.Fprintln(stdout, n)
		}
	}
	fmt.Fprintf(stderr, "vacuum %s (%s, retention %s): %s %s\n", path, kind, o.Retention, verb, res)
	return nil
}

// outputKind tells a Delta table from a file sink's output by its log
// directory.
func outputKind(ctx context.Context, root storage.Store, path string) (string, error) {
	ents, err := root.List(ctx, "")
	if err != nil {
		return "", fmt.Errorf("vacuum: %w", err)
	}
	for _, k := range []struct{ dir, kind string }{{delta.LogDir, "delta"}, {filesink.MetadataDir, "file sink"}} {
		for _, e := range ents {
			if e.IsDir && e.Name == k.dir {
				return k.kind, nil
			}
		}
	}
	return "", fmt.Errorf("vacuum: %s holds neither %s nor %s: not the output of a Delta or file sink, nothing to vacuum", path, delta.LogDir, filesink.MetadataDir)
}
