package sluice

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/plan"
	"github.com/sluice-stream/sluice/internal/registry"
)

// SourceFormats returns the names of the source formats sluice knows, for
// DataStreamReader.Format. docs/reference.md (and `sluice options FORMAT`)
// describes each one's options.
func SourceFormats() []string { return registry.SourceNames() }

// SinkFormats returns the names of the sink formats sluice knows, for
// DataStreamWriter.Format ("foreachBatch" is set by
// DataStreamWriter.ForeachBatch).
func SinkFormats() []string { return registry.SinkNames() }

// OutputModes returns the output modes Spark defines: "append", "update"
// and "complete".
func OutputModes() []string { return registry.OutputModes() }

// validateOutputMode checks a mode against the sink and the query's shape,
// as Spark's UnsupportedOperationChecker does for the cases sluice has:
// without a streaming aggregation, complete mode has nothing to output.
func validateOutputMode(mode, sinkFormat string, hasAggregation bool) error {
	mode = strings.ToLower(mode)
	if !containsFold(OutputModes(), mode) {
		return &options.Error{Option: "outputMode", Value: mode, Allowed: "allowed: " + strings.Join(OutputModes(), ", "),
			Spark: fmt.Sprintf("[STREAMING_OUTPUT_MODE.INVALID] Invalid streaming output mode: %s. Accepted output modes are 'Append', 'Complete', 'Update'.", mode)}
	}
	if mode == "complete" && !hasAggregation {
		return plan.ErrCompleteWithoutAggregation
	}
	if sf, err := registry.Sink(sinkFormat); err == nil && !containsFold(sf.OutputModes, mode) {
		return fmt.Errorf("[STREAMING_OUTPUT_MODE.UNSUPPORTED_DATASOURCE] Invalid streaming output mode: %s. This output mode is not supported in Data Source %s. "+
			"(the %s sink does not support output mode %q; allowed: %s)", mode, sinkFormat, sinkFormat, mode, strings.Join(sf.OutputModes, ", "))
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
