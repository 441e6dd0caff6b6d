package sluice

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/pipeline"
	"github.com/sluice-stream/sluice/internal/registry"
)

// PipelineFile builds the query described by a pipeline file (the YAML
// format of `sluice run`) and returns its writer, ready to Start. Every
// problem is reported at once, each with the file, line and column of the
// key at fault.
func (s *Session) PipelineFile(path string) (*DataStreamWriter, error) {
	f, err := pipeline.Load(path)
	if err != nil {
		return nil, err
	}
	return s.pipeline(f)
}

// Pipeline is PipelineFile for a file already in memory; name is used in
// error positions. ${VAR} references are expanded from env (nil: none set).
func (s *Session) Pipeline(name string, data []byte, env func(string) (string, bool)) (*DataStreamWriter, error) {
	f, err := pipeline.Parse(name, data, env)
	if err != nil {
		return nil, err
	}
	return s.pipeline(f)
}

func (s *Session) pipeline(f *pipeline.File) (*DataStreamWriter, error) {
	w, list := s.buildPipeline(f)
	if len(list) > 0 {
		return nil, list
	}
	return w, nil
}

// buildPipeline builds the writer a pipeline file describes and checks it
// (DataStreamWriter.check), returning every problem placed in the file.
func (s *Session) buildPipeline(f *pipeline.File) (*DataStreamWriter, pipeline.ErrorList) {
	var list pipeline.ErrorList
	// A file's options must be known settings (the Go API accepts any key).
	for _, err := range registry.SessionConf.Problems(f.Options) {
		var ue *options.UnknownError
		if errors.As(err, &ue) {
			line, col := optionPos(f.Options, f.OptionLines, f.OptionColumns, ue.Option)
			list = append(list, f.ErrorAt(line, col, fmt.Errorf("options: %w", err)))
		}
	}
	for k, v := range f.Options {
		s.conf[k] = v
	}
	df := s.ReadStream().Format(f.Source.Format).Options(f.Source.Options).Load()
	for _, st := range f.Transform {
		df = df.with(st.Op) // a step is the operation the DataFrame method adds
	}
	w := df.WriteStream().Format(f.Sink.Format).Options(f.Sink.Options)
	if f.Sink.OutputMode != "" {
		w.OutputMode(f.Sink.OutputMode)
	}
	if f.CheckpointLocation != "" {
		if cur, ok := pipeline.Lookup(f.Sink.Options, "checkpointLocation"); ok && cur != f.CheckpointLocation {
			list = append(list, f.ErrorAt(f.Sink.Line, f.Sink.Column,
				fmt.Errorf("checkpointLocation is set twice with different values (%q at top level, %q in sink options)", f.CheckpointLocation, cur)))
		}
		w.Option("checkpointLocation", f.CheckpointLocation)
	}
	name := f.Sink.QueryName
	if name == "" {
		name = f.Name
	}
	w.QueryName(name)
	switch f.Trigger.Kind {
	case pipeline.TriggerProcessingTime:
		w.Trigger(ProcessingTimeInterval(f.Trigger.Interval))
	case pipeline.TriggerAvailableNow:
		w.Trigger(AvailableNow())
	case pipeline.TriggerOnce:
		w.Trigger(Once())
	}
	if f.DeadLetter != nil {
		w.DeadLetter(f.DeadLetter.Format, f.DeadLetter.Options)
	}
	_, probs := w.check()
	for _, p := range probs {
		list = append(list, place(f, p))
	}
	slices.SortStableFunc(list, func(a, b *pipeline.Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return w, list
}

// optionPos finds an option's key (ignoring case) in a parsed option map.
func optionPos(opts map[string]string, lines, cols map[string]int, name string) (int, int) {
	if _, ok := opts[name]; ok {
		return lines[name], cols[name]
	}
	for k := range opts {
		if strings.EqualFold(k, name) {
			return lines[k], cols[k]
		}
	}
	return 0, 0
}

// place puts a query problem at the line and column of what it is about:
// the option's own key, the format's value, the step, the output mode.
func place(f *pipeline.File, p problem) *pipeline.Error {
	at := func(prefix string, line, col int, err error) *pipeline.Error {
		return f.ErrorAt(line, col, fmt.Errorf("%s: %w", prefix, err))
	}
	endpoint := func(prefix string, opts map[string]string, lines, cols map[string]int, keyLine, keyCol, fmtLine, fmtCol int, err error) *pipeline.Error {
		if p.format && fmtLine > 0 {
			return at(prefix, fmtLine, fmtCol, err)
		}
		if line, col := optionPos(opts, lines, cols, p.option); p.option != "" && line > 0 {
			return at(prefix, line, col, err)
		}
		return at(prefix, keyLine, keyCol, err)
	}
	switch p.part {
	case partTrigger:
		return at("trigger", f.Trigger.Line, f.Trigger.Column, p.err)
	case partOutputMode:
		if f.Sink.OutputModeLine > 0 {
			return at("sink.outputMode", f.Sink.OutputModeLine, f.Sink.OutputModeColumn, p.err)
		}
		return at("sink", f.Sink.Line, f.Sink.Column, p.err)
	case partSource:
		src := f.Source
		return endpoint("source", src.Options, src.OptionLines, src.OptionColumns, src.Line, src.Column, src.FormatLine, src.FormatColumn, p.err)
	case partTransform:
		if p.step < len(f.Transform) {
			st := f.Transform[p.step]
			return at(st.Kind.String(), st.Line, st.Column, p.err)
		}
	case partSink:
		snk := f.Sink
		if strings.EqualFold(p.option, "checkpointLocation") && f.CheckpointLine > 0 {
			if line, _ := optionPos(snk.Options, snk.OptionLines, snk.OptionColumns, p.option); line == 0 {
				return at("checkpointLocation", f.CheckpointLine, f.CheckpointColumn, p.err)
			}
		}
		return endpoint("sink", snk.Options, snk.OptionLines, snk.OptionColumns, snk.Line, snk.Column, snk.FormatLine, snk.FormatColumn, p.err)
	case partDeadLetter:
		if dl := f.DeadLetter; dl != nil {
			err := p.err
			if u := errors.Unwrap(err); u != nil { // "dead-letter sink: …" reads as deadLetter: … here
				err = u
			}
			return endpoint("deadLetter", dl.Options, dl.OptionLines, dl.OptionColumns, dl.Line, dl.Column, dl.FormatLine, dl.FormatColumn, err)
		}
	case partConf:
		line, col := optionPos(f.Options, f.OptionLines, f.OptionColumns, p.option)
		return at("options", line, col, p.err)
	}
	return f.ErrorAt(0, 0, p.err)
}

// Problem is one problem in a pipeline file, as LintPipeline and `sluice
// lint` report it.
type Problem struct {
	// File is the file's name as given.
	File string `json:"file"`
	// Line and Column (1-based) are the position of the key or value at
	// fault; 0 when the problem concerns the whole file.
	Line   int `json:"line"`
	Column int `json:"column"`
	// Message says what is wrong and what is allowed.
	Message string `json:"message"`
}

// String renders the problem as "file:line:col: message", the form
// editors and CI annotations understand.
func (p Problem) String() string {
	pos := p.File
	if p.Line > 0 {
		pos += ":" + strconv.Itoa(p.Line)
		if p.Column > 0 {
			pos += ":" + strconv.Itoa(p.Column)
		}
	}
	if pos == "" {
		return p.Message
	}
	return pos + ": " + p.Message
}

// LintPipeline checks a pipeline file as `sluice run` does before it starts
// the query — YAML structure, formats, options and their values,
// expressions, output mode, trigger — without connecting to anything or
// creating files, and returns every problem found, in file order (none
// when the file is fine). data is the file's content and name its name in
// positions; env expands ${VAR} references (nil: none set).
func LintPipeline(name string, data []byte, env func(string) (string, bool)) []Problem {
	f, err := pipeline.Parse(name, data, env)
	var list pipeline.ErrorList
	switch {
	case errors.As(err, &list):
	case err != nil:
		return []Problem{{File: name, Message: err.Error()}}
	default:
		s := NewSession(WithLogger(slog.New(slog.DiscardHandler)))
		_, list = s.buildPipeline(f)
	}
	out := make([]Problem, 0, len(list))
	for _, e := range list {
		out = append(out, Problem{File: name, Line: e.Line, Column: e.Column, Message: oneLine(e.Err)})
	}
	return out
}

// oneLine renders an error on one line: an expression error without its
// source echo and caret (the position stays in the text), other line
// breaks as spaces.
func oneLine(err error) string {
	msg := err.Error()
	var ee *expr.Error
	if errors.As(err, &ee) {
		msg = strings.Replace(msg, ee.Error(), ee.Short(), 1)
	}
	return strings.ReplaceAll(msg, "\n", " ")
}
