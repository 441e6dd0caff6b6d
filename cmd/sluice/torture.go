package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/torture"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

func runTorture(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("torture", stderr)
	sinks := fs.String("sink", "parquet,delta,kafka", "sinks to torture, comma-separated ("+strings.Join(torture.Sinks, ", ")+")")
	store := fs.String("store", "local", "where the output and the checkpoint live: "+strings.Join(torture.Stores, ", ")+" (azurite needs SLUICE_AZURITE_DIR or azurite-blob on PATH; s3 runs an in-process emulator)")
	kills := fs.Int("kills", 50, "SIGKILLs per sink")
	records := fs.Int("records", 20000, "records produced per sink while killing")
	minUp := fs.Duration("min-up", 200*time.Millisecond, "shortest run before a kill")
	maxUp := fs.Duration("max-up", 1500*time.Millisecond, "longest run before a kill")
	seed := fs.Uint64("seed", 0, "random seed of the kill timing (0 = a new one, printed)")
	dir := fs.String("dir", "", "work directory (default: a temporary one, removed afterwards)")
	vac := fs.Bool("vacuum", false, "after the check, vacuum a file or Delta sink's output (the query has stopped: zero retention) and count what a plain glob reads (local store only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *vac && *store != "local" {
		return &exitError{code: 2, err: errors.New("--vacuum works with --store local only (the emulators stop with the run)")}
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	failed := 0
	for _, sk := range strings.Split(*sinks, ",") {
		sk = strings.TrimSpace(sk)
		work := *dir
		if work == "" {
			if work, err = os.MkdirTemp("", "sluice-torture-"+sk+"-"); err != nil {
				return err
			}
			defer os.RemoveAll(work)
		} else {
			work = work + "/" + sk
			if err := os.MkdirAll(work, 0o755); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "== %s on %s: %d kills, %d records, seed %d\n", sk, *store, *kills, *records, *seed)
		cfg := torture.Config{
			Command: func(ctx context.Context, args ...string) *exec.Cmd { return exec.CommandContext(ctx, self, args...) },
			Sink:    sk, Kills: *kills, Records: *records, MinUp: *minUp, MaxUp: *maxUp,
			Dir: work, Seed: *seed, Out: stdout, Store: *store,
		}
		res, err := torture.Run(ctx, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", sk, err)
		}
		if *vac && sk != "kafka" {
			run := filesink.Vacuum
			if sk == "delta" {
				run = delta.Vacuum
			}
			root, err := storage.NewLocal(torture.OutputDir(cfg))
			if err != nil {
				return err
			}
			vr, err := run(ctx, root, vacuum.Options{Retention: 0, Force: true})
			if err != nil {
				return fmt.Errorf("%s: vacuum: %w", sk, err)
			}
			glob, err := torture.GlobRows(ctx, root, sk)
			if err != nil {
				return fmt.Errorf("%s: %w", sk, err)
			}
			fmt.Fprintf(stdout, "%s: vacuum deleted %s; a glob now reads %d rows (committed %d)\n", sk, vr, glob, res.Output)
			if glob != res.Output {
				fmt.Fprintf(stdout, "%s: FAILED — files no log lists remain after the vacuum\n", sk)
				failed++
			}
		}
		verdict := "EXACTLY ONCE"
		if !res.OK() {
			verdict = "FAILED"
			failed++
		}
		fmt.Fprintf(stdout, "%s on %s: %s — %s\n", sk, *store, res, verdict)
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d sink(s) lost or duplicated records", failed)}
	}
	return nil
}
