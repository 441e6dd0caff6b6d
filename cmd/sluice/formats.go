package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/registry"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source"
)

// optionSets are the query-level option specs `sluice options` shows by
// these names, besides the formats.
var optionSets = []struct {
	name, title string
	spec        *options.Spec
}{
	{"query", "query options (given with the sink's options; a pipeline file's sink options)", registry.QueryOptions},
	{"admission", "admission options (given with the source's options; applied by the engine)", registry.AdmissionOptions},
	{"session", "session configuration (Session.SetConf, WithConf; a pipeline file's top-level options)", registry.SessionConf},
}

// runOptions lists the formats, or one format's (or option set's) options.
func runOptions(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("options", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice options [FORMAT|query|admission|session]")
		printFlags(stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch fs.NArg() {
	case 0:
		fmt.Fprintln(tw, "FORMAT\tKIND\tSUMMARY")
		for _, f := range registry.Sources() {
			fmt.Fprintf(tw, "%s\tsource\t%s\n", f.Name, f.Summary)
		}
		for _, f := range registry.Sinks() {
			fmt.Fprintf(tw, "%s\tsink\t%s\n", f.Name, f.Summary)
		}
		fmt.Fprintln(tw, "\t\t")
		for _, o := range optionSets {
			fmt.Fprintf(tw, "%s\toptions\t%s\n", o.name, o.title)
		}
		fmt.Fprintln(tw, "\nRun 'sluice options NAME' for the options of one; docs/reference.md has them all.")
		return nil
	case 1:
	default:
		return &exitError{code: 2, err: fmt.Errorf("one format expected, got %q", fs.Args())}
	}
	name := fs.Arg(0)
	for _, o := range optionSets {
		if strings.EqualFold(o.name, name) {
			fmt.Fprintf(tw, "%s: %s\n\n", o.name, o.title)
			optionTable(tw, o.spec)
			return nil
		}
	}
	src, snk, err := registry.Format(name)
	if err != nil {
		return err
	}
	if src != nil {
		describeSource(tw, *src)
	}
	if src != nil && snk != nil {
		fmt.Fprintln(tw)
	}
	if snk != nil {
		describeSink(tw, *snk)
	}
	return nil
}

func describeSource(w io.Writer, f source.Format) {
	fmt.Fprintf(w, "source %s: %s\n", f.Name, f.Summary)
	fmt.Fprintf(w, "schema: %s\n", strings.ReplaceAll(f.SchemaDoc, "`", ""))
	fmt.Fprintf(w, "replayable: %s\n\n", yesNo(f.Replayable))
	optionTable(w, f.Options)
	fmt.Fprintln(w, "\nThe admission options (sluice options admission) are accepted too.")
}

func describeSink(w io.Writer, f sink.Format) {
	fmt.Fprintf(w, "sink %s: %s\n", f.Name, f.Summary)
	fmt.Fprintf(w, "output modes: %s\n", strings.Join(f.OutputModes, ", "))
	fmt.Fprintf(w, "idempotent (exactly-once with a replayable source): %s; needs checkpointLocation: %s\n", yesNo(f.Idempotent), yesNo(f.NeedsCheckpoint))
	if f.APIOnly {
		fmt.Fprintln(w, "Go API only (DataStreamWriter.ForeachBatch); not usable in pipeline files")
	}
	fmt.Fprintln(w)
	optionTable(w, f.Options)
	fmt.Fprintln(w, "\nThe query options (sluice options query) are accepted too.")
}

// optionTable prints a spec as NAME TYPE DEFAULT ALLOWED DESCRIPTION.
func optionTable(w io.Writer, spec *options.Spec) {
	if len(spec.Fields) == 0 && len(spec.Prefixes) == 0 {
		fmt.Fprintln(w, "(no options of its own)")
		return
	}
	fmt.Fprintln(w, "OPTION\tTYPE\tDEFAULT\tALLOWED\tDESCRIPTION")
	for _, f := range spec.Fields {
		if f.Unsupported != "" {
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", f.Name, typeText(f), defaultText(f), allowedText(f), strings.ReplaceAll(f.Doc, "`", ""))
	}
	for _, p := range spec.Prefixes {
		kind := "-"
		if p.Secret {
			kind = "secret"
		}
		fmt.Fprintf(w, "%s*\t%s\t-\t-\t%s\n", p.Prefix, kind, p.Doc)
	}
	var unsupported []string
	for _, f := range spec.Fields {
		if f.Unsupported != "" {
			unsupported = append(unsupported, f.Name)
		}
	}
	if len(unsupported) > 0 {
		fmt.Fprintf(w, "\nRejected (as in Spark, or because the engine owns them): %s\n", strings.Join(unsupported, ", "))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// typeText is the type column: the type, "secret" for secrets.
func typeText(f options.Field) string {
	t := f.Type.String()
	if f.Secret {
		t += ", secret"
	}
	return t
}

// defaultText is the default column: "required", the default, or "-".
func defaultText(f options.Field) string {
	switch {
	case f.Required:
		return "required"
	case f.DefaultText() != "":
		return f.DefaultText()
	}
	return "-"
}

// allowedText is the allowed-values column.
func allowedText(f options.Field) string {
	switch {
	case f.Hint != "" && len(f.Allowed) == 0 && f.Type != options.Bool:
		return strings.TrimPrefix(f.Hint, "allowed: ")
	case len(f.Allowed) > 0:
		vals := make([]string, len(f.Allowed))
		for i, a := range f.Allowed {
			if a == "" {
				a = `""`
			}
			vals[i] = a
		}
		return strings.Join(vals, ", ")
	case f.Type == options.Int || f.Type == options.Double:
		return fmt.Sprintf("≥ %d", f.Min)
	}
	return "-"
}

// runFunctions lists the SQL functions of the expression engine.
func runFunctions(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("functions", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tDESCRIPTION")
	for _, f := range expr.Functions() {
		fmt.Fprintf(tw, "%s\t%s\n", f.Signature, f.Description)
	}
	fmt.Fprintln(tw, "\nBesides functions: CAST(expr AS type), TRY_CAST, CASE WHEN … THEN … ELSE … END, IS [NOT] NULL, IN, BETWEEN, LIKE, ILIKE, arithmetic, comparison and AND/OR/NOT, as in Spark SQL.")
	return tw.Flush()
}
