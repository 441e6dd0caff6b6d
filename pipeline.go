package sluice

import (
	"github.com/sluice-stream/sluice/internal/pipeline"
)

// PipelineFile builds the query described by a pipeline file (the YAML
// format of `sluice run`) and returns its writer, ready to Start. Every
// error names the file and line of the key at fault.
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
	for k, v := range f.Options {
		s.conf[k] = v
	}
	df := s.ReadStream().Format(f.Source.Format).Options(f.Source.Options).Load()
	if _, err := df.Schema(); err != nil {
		return nil, f.Errorf(f.Source.Line, "source: %v", err)
	}
	for _, st := range f.Transform {
		switch st.Kind {
		case pipeline.StepSelectExpr:
			df = df.SelectExpr(st.Exprs...)
		case pipeline.StepSelect:
			df = df.Select(st.Exprs...)
		case pipeline.StepWithColumn:
			df = df.WithColumn(st.Name, st.Expr)
		case pipeline.StepFilter:
			df = df.Filter(st.Expr)
		default:
			return nil, f.Errorf(st.Line, "unknown transform step %q", st.Kind)
		}
		if _, err := df.Schema(); err != nil {
			return nil, f.Errorf(st.Line, "%s: %v", st.Kind, err)
		}
	}
	w := df.WriteStream().Format(f.Sink.Format).Options(f.Sink.Options)
	if f.Sink.OutputMode != "" {
		w.OutputMode(f.Sink.OutputMode)
	}
	if f.CheckpointLocation != "" {
		if cur, ok := pipeline.Lookup(f.Sink.Options, "checkpointLocation"); ok && cur != f.CheckpointLocation {
			return nil, f.Errorf(f.Sink.Line, "checkpointLocation is set twice with different values (%q at top level, %q in sink options)", f.CheckpointLocation, cur)
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
	if _, err := newSink(f.Sink.Format, f.Sink.Options, sinkEnv{validateOnly: true}); err != nil {
		return nil, f.Errorf(f.Sink.Line, "sink: %v", err)
	}
	if f.DeadLetter != nil {
		if _, err := newSink(f.DeadLetter.Format, f.DeadLetter.Options, sinkEnv{validateOnly: true}); err != nil {
			return nil, f.Errorf(f.DeadLetter.Line, "deadLetter: %v", err)
		}
		w.DeadLetter(f.DeadLetter.Format, f.DeadLetter.Options)
	}
	return w, nil
}
