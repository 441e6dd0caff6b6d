package progress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// TimeLayout is Spark's progress timestamp format (yyyy-MM-dd'T'HH:mm:ss.SSS'Z', UTC).
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime formats t in UTC with TimeLayout, as progress timestamps and
// eventTime values are written.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses a timestamp written by FormatTime.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("progress: parse timestamp %q: %w", s, err)
	}
	return t, nil
}

// Keys of Progress.DurationMs (Spark's durationMs), in milliseconds.
const (
	DurLatestOffset     = "latestOffset"     // asking the sources for their latest offsets
	DurGetOffset        = "getOffset"        // Spark's V1 sources only; kept for parsing
	DurWALCommit        = "walCommit"        // writing offsets/N (+ committing the previous batch to sources)
	DurGetBatch         = "getBatch"         // building the per-source input of the batch
	DurQueryPlanning    = "queryPlanning"    // planning the batch
	DurAddBatch         = "addBatch"         // running the tasks and the sink write: the real work
	DurCommitOffsets    = "commitOffsets"    // writing commits/N
	DurTriggerExecution = "triggerExecution" // the whole trigger, including all of the above
)

// Keys of Progress.EventTime.
const (
	EventTimeAvg       = "avg"
	EventTimeMax       = "max"
	EventTimeMin       = "min"
	EventTimeWatermark = "watermark"
)

// Progress is one progress report: Spark's StreamingQueryProgress plus the
// "sluice" object. Fields are declared in Spark's JSON order. Once a
// Progress has been handed to a Bus or a Recent it must not be modified.
type Progress struct {
	// ID is stable across restarts (from the checkpoint's metadata).
	ID string `json:"id"`
	// RunID is new for every start of the query.
	RunID string `json:"runId"`
	// Name is the query name; nil is written as null.
	Name *string `json:"name"`
	// Timestamp is the trigger start, formatted with FormatTime.
	Timestamp string `json:"timestamp"`
	// BatchID is the batch this trigger executed; for an idle report, the
	// last executed batch.
	BatchID int64 `json:"batchId"`
	// BatchDuration is trigger end − trigger start, in ms.
	BatchDuration int64 `json:"batchDuration"`
	// NumInputRows, InputRowsPerSecond and ProcessedRowsPerSecond are sums
	// over Sources (see SumSources).
	NumInputRows           int64  `json:"numInputRows"`
	InputRowsPerSecond     Double `json:"inputRowsPerSecond,omitzero"`
	ProcessedRowsPerSecond Double `json:"processedRowsPerSecond,omitzero"`
	// DurationMs maps the Dur* keys to milliseconds.
	DurationMs map[string]int64 `json:"durationMs,omitempty"`
	// EventTime holds the EventTime* keys (ISO timestamps) when the query
	// has a watermark.
	EventTime       map[string]string          `json:"eventTime,omitempty"`
	StateOperators  []StateOperatorProgress    `json:"stateOperators"`
	Sources         []SourceProgress           `json:"sources"`
	Sink            SinkProgress               `json:"sink"`
	ObservedMetrics map[string]json.RawMessage `json:"observedMetrics,omitempty"`
	// Sluice holds sluice's additions; nil omits the key.
	Sluice *Sluice `json:"sluice,omitempty"`
}

// StateOperatorProgress is Spark's StateOperatorProgress: one stateful
// operator's state store figures for the batch.
type StateOperatorProgress struct {
	OperatorName              string           `json:"operatorName"`
	NumRowsTotal              int64            `json:"numRowsTotal"`
	NumRowsUpdated            int64            `json:"numRowsUpdated"`
	AllUpdatesTimeMs          int64            `json:"allUpdatesTimeMs"`
	NumRowsRemoved            int64            `json:"numRowsRemoved"`
	AllRemovalsTimeMs         int64            `json:"allRemovalsTimeMs"`
	CommitTimeMs              int64            `json:"commitTimeMs"`
	MemoryUsedBytes           int64            `json:"memoryUsedBytes"`
	NumRowsDroppedByWatermark int64            `json:"numRowsDroppedByWatermark"`
	NumShufflePartitions      int64            `json:"numShufflePartitions"`
	NumStateStoreInstances    int64            `json:"numStateStoreInstances"`
	CustomMetrics             map[string]int64 `json:"customMetrics,omitempty"`
}

// SourceProgress is Spark's SourceProgress. The offsets are raw JSON: use
// OffsetJSON to build them from a source's offset string (valid JSON is kept
// as JSON, anything else becomes a JSON string, "" becomes null).
type SourceProgress struct {
	Description            string            `json:"description"`
	StartOffset            json.RawMessage   `json:"startOffset"`
	EndOffset              json.RawMessage   `json:"endOffset"`
	LatestOffset           json.RawMessage   `json:"latestOffset"`
	NumInputRows           int64             `json:"numInputRows"`
	InputRowsPerSecond     Double            `json:"inputRowsPerSecond,omitzero"`
	ProcessedRowsPerSecond Double            `json:"processedRowsPerSecond,omitzero"`
	Metrics                map[string]string `json:"metrics,omitempty"`
}

// SinkProgress is Spark's SinkProgress. NumOutputRows is -1 when the sink
// cannot count its output.
type SinkProgress struct {
	Description   string            `json:"description"`
	NumOutputRows int64             `json:"numOutputRows"`
	Metrics       map[string]string `json:"metrics,omitempty"`
}

// OffsetJSON turns an offset as a source writes it into the value of
// startOffset/endOffset/latestOffset: valid JSON is kept as is, other text
// becomes a JSON string, and "" becomes nil (written as null).
func OffsetJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return b
}

// OffsetString is the inverse of OffsetJSON: a JSON string yields its
// content, other JSON its text, null or nil yields "".
func OffsetString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// SumSources sets NumInputRows, InputRowsPerSecond and
// ProcessedRowsPerSecond to the sums over p.Sources, as Spark does. Sources
// whose rate is not finite are skipped; with no finite rate the sum is 0.
func (p *Progress) SumSources() {
	var rows int64
	var in, proc float64
	for _, s := range p.Sources {
		rows += s.NumInputRows
		if !s.InputRowsPerSecond.IsZero() {
			in += float64(s.InputRowsPerSecond)
		}
		if !s.ProcessedRowsPerSecond.IsZero() {
			proc += float64(s.ProcessedRowsPerSecond)
		}
	}
	p.NumInputRows, p.InputRowsPerSecond, p.ProcessedRowsPerSecond = rows, Double(in), Double(proc)
}

type progressJSON Progress

// MarshalJSON writes p as compact JSON with Spark's field order and rules;
// nil StateOperators and Sources are written as [] as Spark does.
func (p Progress) MarshalJSON() ([]byte, error) {
	if p.StateOperators == nil {
		p.StateOperators = []StateOperatorProgress{}
	}
	if p.Sources == nil {
		p.Sources = []SourceProgress{}
	}
	b, err := json.Marshal(progressJSON(p))
	if err != nil {
		return nil, fmt.Errorf("progress: marshal batch %d: %w", p.BatchID, err)
	}
	return b, nil
}

// UnmarshalJSON reads what MarshalJSON (or Spark) wrote. Absent doubles
// read as NaN so that a report round-trips exactly.
func (p *Progress) UnmarshalJSON(b []byte) error {
	v := progressJSON{InputRowsPerSecond: NaN(), ProcessedRowsPerSecond: NaN()}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("progress: unmarshal progress: %w", err)
	}
	for k, m := range v.ObservedMetrics {
		v.ObservedMetrics[k] = compactRaw(m)
	}
	*p = Progress(v)
	return nil
}

type sourceJSON SourceProgress

// UnmarshalJSON reads a source entry; absent doubles read as NaN.
func (s *SourceProgress) UnmarshalJSON(b []byte) error {
	v := sourceJSON{InputRowsPerSecond: NaN(), ProcessedRowsPerSecond: NaN()}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("progress: unmarshal source: %w", err)
	}
	v.StartOffset, v.EndOffset, v.LatestOffset = compactRaw(v.StartOffset), compactRaw(v.EndOffset), compactRaw(v.LatestOffset)
	*s = SourceProgress(v)
	return nil
}

// compactRaw drops insignificant whitespace from a decoded raw value and
// turns null into nil.
func compactRaw(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw // cannot happen: the decoder validated it
	}
	return b.Bytes()
}

// JSON returns the compact JSON of p (Spark's json), or "" if p holds
// invalid raw JSON.
func (p *Progress) JSON() string {
	b, err := p.MarshalJSON() // compact and escaped as json.Marshal(p) is
	if err != nil {
		return ""
	}
	return string(b)
}

// PrettyJSON returns p indented by two spaces (Spark's prettyJson, with Go's
// "key": value spacing), or "" if p holds invalid raw JSON.
func (p *Progress) PrettyJSON() string {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}
