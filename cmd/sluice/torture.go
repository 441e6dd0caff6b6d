package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
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
	pipelines := fs.String("pipeline", "copy,window", "pipelines to torture, comma-separated: copy (every record once) or window (a windowed count with a watermark in append mode: every window once, with its exact count)")
	store := fs.String("store", "local", "where the output and the checkpoint live: "+strings.Join(torture.Stores, ", ")+" (azurite needs SLUICE_AZURITE_DIR or azurite-blob on PATH; s3 runs an in-process emulator)")
	kills := fs.Int("kills", 50, "SIGKILLs per sink (with --members: 30)")
	records := fs.Int("records", 20000, "records produced per sink while killing")
	minUp := fs.Duration("min-up", 200*time.Millisecond, "shortest run before a kill (with --members: 3s, the time between kills)")
	maxUp := fs.Duration("max-up", 1500*time.Millisecond, "longest run before a kill (with --members: 9s)")
	seed := fs.Uint64("seed", 0, "random seed of the kill timing (0 = a new one, printed)")
	dir := fs.String("dir", "", "work directory (default: a temporary one, removed afterwards)")
	members := fs.Int("members", 0, "group mode: run this many members (sluice run children) of one pipeline (source option sluice.group) on a --partitions topic; SIGKILL a random member at each kill and start a new one, add a member a third of the way through, stop one with SIGTERM two thirds of the way; the copy pipeline into the Kafka sink unless --sink says otherwise")
	partitions := fs.Int("partitions", 12, "with --members: partitions of the input and output topics")
	names := fs.String("member-names", torture.NamesSlot, "with --members: slot (a killed member restarts under its name, sluice.group.member, as a StatefulSet pod or a restarted container) or fresh (every process gets the default HOSTNAME-PID, as a Deployment's replacement pod)")
	async := fs.Bool("async-progress", false, "run the query with asyncProgressTrackingEnabled (a 300 ms interval) and check its promise, at-least-once: every record in the output, duplicates allowed (the copy pipeline into kafka on the local store; give --sink kafka --pipeline copy)")
	vac := fs.Bool("vacuum", false, "after the check, vacuum a file or Delta sink's output (the query has stopped: zero retention) and count what a plain glob reads (local store only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *members < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--members %d: must be at least 1 (or 0 for one process)", *members)}
	}
	for _, name := range []string{"partitions", "member-names"} {
		if set[name] && *members == 0 {
			return &exitError{code: 2, err: fmt.Errorf("--%s is only used with --members", name)}
		}
	}
	if *names != torture.NamesSlot && *names != torture.NamesFresh {
		return &exitError{code: 2, err: fmt.Errorf("--member-names %q: allowed: %s, %s", *names, torture.NamesSlot, torture.NamesFresh)}
	}
	if *async && (*members > 0 || strings.TrimSpace(*sinks) != "kafka" || strings.TrimSpace(*pipelines) != "copy" || *store != "local") {
		return &exitError{code: 2, err: errors.New("--async-progress tortures the copy pipeline into kafka on the local store, in one process: give --sink kafka --pipeline copy, without --members or --store")}
	}
	if *members > 0 {
		for _, name := range []string{"vacuum", "store"} {
			if set[name] {
				return &exitError{code: 2, err: fmt.Errorf("--%s is not used with --members (group mode is tortured on the local store)", name)}
			}
		}
		if set["pipeline"] && strings.TrimSpace(*pipelines) != "copy" {
			return &exitError{code: 2, err: fmt.Errorf("--pipeline %q: with --members only the copy pipeline is tortured", *pipelines)}
		}
		if *partitions < 1 {
			return &exitError{code: 2, err: fmt.Errorf("--partitions %d: must be at least 1", *partitions)}
		}
		sk := "kafka"
		if set["sink"] {
			sk = *sinks
		}
		if !set["min-up"] {
			*minUp = torture.DefaultMemberMinUp
		}
		if !set["max-up"] {
			*maxUp = torture.DefaultMemberMaxUp
		}
		if !set["kills"] {
			*kills = 30
		}
		if *seed == 0 {
			*seed = uint64(time.Now().UnixNano())
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		failed := 0
		for _, one := range strings.Split(sk, ",") {
			if err := tortureMembers(ctx, stdout, self, strings.TrimSpace(one), *members, *partitions, *names,
				tortureFlags{kills: *kills, records: *records, minUp: *minUp, maxUp: *maxUp, seed: *seed, dir: *dir}, &failed); err != nil {
				return err
			}
		}
		if failed > 0 {
			return &exitError{code: 1, err: fmt.Errorf("%d group-mode run(s) failed: records lost or duplicated, members that exited on their own, or graceful stops that did not exit 0", failed)}
		}
		return nil
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
	var pls []string
	for _, pl := range strings.Split(*pipelines, ",") {
		pl = strings.TrimSpace(pl)
		if !slices.Contains(torture.Pipelines, pl) {
			return &exitError{code: 2, err: fmt.Errorf("--pipeline %q: %q is not a pipeline (allowed: %s)", *pipelines, pl, strings.Join(torture.Pipelines, ", "))}
		}
		pls = append(pls, pl)
	}
	failed := 0
	for _, pl := range pls {
		for _, sk := range strings.Split(*sinks, ",") {
			sk = strings.TrimSpace(sk)
			if err := tortureOne(ctx, stdout, self, pl, sk, tortureFlags{store: *store, kills: *kills, records: *records,
				minUp: *minUp, maxUp: *maxUp, seed: *seed, dir: *dir, vacuum: *vac, async: *async}, &failed); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d run(s) lost or duplicated output", failed)}
	}
	return nil
}

// tortureFlags are the flags of `sluice torture` one run uses.
type tortureFlags struct {
	store          string
	kills, records int
	minUp, maxUp   time.Duration
	seed           uint64
	dir            string
	vacuum         bool
	async          bool // asyncProgressTrackingEnabled: at-least-once
}

// tortureOne runs one pipeline into one sink and prints its verdict,
// counting a failed check in failed.
func tortureOne(ctx context.Context, stdout io.Writer, self, pl, sk string, f tortureFlags, failed *int) error {
	work := f.dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "sluice-torture-"+pl+"-"+sk+"-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else {
		work = work + "/" + pl + "-" + sk
		if err := os.MkdirAll(work, 0o755); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "== %s pipeline into %s on %s: %d kills, %d records, seed %d\n", pl, sk, f.store, f.kills, f.records, f.seed)
	start := time.Now()
	cfg := torture.Config{
		Command: func(ctx context.Context, args ...string) *exec.Cmd { return exec.CommandContext(ctx, self, args...) },
		Sink:    sk, Pipeline: pl, Kills: f.kills, Records: f.records, MinUp: f.minUp, MaxUp: f.maxUp,
		Dir: work, Seed: f.seed, Out: stdout, Store: f.store, AsyncProgress: f.async,
	}
	res, err := torture.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%s into %s: %w", pl, sk, err)
	}
	if f.vacuum && sk != "kafka" {
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
			*failed++
		}
	}
	verdict := "EXACTLY ONCE"
	if f.async {
		verdict = "AT LEAST ONCE"
	}
	if !res.OK() {
		verdict = "FAILED"
		*failed++
	}
	fmt.Fprintf(stdout, "%s into %s on %s: %s — %s (%s)\n", pl, sk, f.store, res, verdict, time.Since(start).Round(time.Second))
	return nil
}

var pidRE = regexp.MustCompile(`\(pid \d+\)`)

// tortureMembers runs the group-mode torture into one sink and prints its
// verdict, counting a failed check in failed.
func tortureMembers(ctx context.Context, stdout io.Writer, self, sk string, members, partitions int, names string, f tortureFlags, failed *int) error {
	work := f.dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "sluice-torture-members-"+sk+"-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else {
		work = work + "/members-" + sk
		if err := os.MkdirAll(work, 0o755); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "== group mode: %d members into %s, %d partitions, %s member names: %d kills, %d records, seed %d\n", members, sk, partitions, names, f.kills, f.records, f.seed)
	start := time.Now()
	res, err := torture.RunMembers(ctx, torture.MembersConfig{
		Config: torture.Config{
			Command: func(ctx context.Context, args ...string) *exec.Cmd { return exec.CommandContext(ctx, self, args...) },
			Sink:    sk, Kills: f.kills, Records: f.records, MinUp: f.minUp, MaxUp: f.maxUp, Dir: work, Seed: f.seed, Out: stdout,
		},
		Members: members, Partitions: partitions, Names: names, MemberLogLevel: "debug",
	})
	if err != nil {
		return fmt.Errorf("group mode into %s: %w", sk, err)
	}
	verdict := "EXACTLY ONCE"
	switch {
	case !res.ExactlyOnce():
		verdict = "FAILED: not exactly once"
	case res.Crashes > 0 || res.StopFailed > 0:
		verdict = fmt.Sprintf("FAILED: exactly once, but %d member(s) exited on their own and %d graceful stop(s) failed", res.Crashes, res.StopFailed)
	}
	if !res.OK() {
		*failed++
	}
	fmt.Fprintf(stdout, "group mode into %s: %s — %s (%s)\n", sk, res, verdict, time.Since(start).Round(time.Second))
	// The same failure repeats when a member crash-loops: each message
	// once, with how often it came (the pid left out).
	seen := map[string]int{}
	var order []string
	for _, e := range res.CrashErrors {
		key := pidRE.ReplaceAllString(e, "(pid …)")
		if seen[key] == 0 {
			order = append(order, key)
		}
		seen[key]++
	}
	for _, e := range order {
		fmt.Fprintf(stdout, "  crash ×%d: %s\n", seen[e], e)
	}
	return nil
}
