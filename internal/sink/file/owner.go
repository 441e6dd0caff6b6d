package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/storage"
)

// OptAllowNewQuery lets a query with a new checkpoint write to an output
// that another query wrote.
const OptAllowNewQuery = "sluice.sink.allowNewQuery"

// AllowNewQueryField is the option's spec, shared with the Delta sink.
var AllowNewQueryField = options.Field{Name: OptAllowNewQuery, Type: options.Bool, Default: "false",
	Doc: "Lets a query write to an output another query (another checkpoint) wrote; without it such a start is refused, naming both query ids. " +
		"The file sink then appends the new query's batches after the existing ones in `_spark_metadata` (Spark would skip them as already committed); Delta keys them by the new query id."}

// Writer records.
//
// A _spark_metadata batch file lists the files a batch added, not which
// query wrote it. A second query on the same path (a new checkpoint)
// therefore had its batches 0…N skipped as "already committed", as in
// Spark, and its rows never reached the output. The sink keeps one record
// per query and start of writing in the log directory:
//
//	_spark_metadata/sluice-writer-<first log batch, 20 digits>
//	{"queryId":"…","firstBatchId":3,"firstLogBatchId":6,"createdMs":…}
//
// From log batch firstLogBatchId on, the query's batch b is log batch
// b-firstBatchId+firstLogBatchId, up to the next record (of any query).
// Records are write-once (put-if-absent, so two queries cannot claim one
// log batch); the newest record says which query owns the log now. Spark's
// readers ignore the files: their names are not batch numbers.
const writerPrefix = "sluice-writer-"

// writerRecord is one writer record.
type writerRecord struct {
	QueryID         string `json:"queryId"`
	FirstBatchID    int64  `json:"firstBatchId"`
	FirstLogBatchID int64  `json:"firstLogBatchId"`
	CreatedMs       int64  `json:"createdMs"`
}

// logID maps the query's batch b to its log batch.
func (r writerRecord) logID(b int64) int64 { return b - r.FirstBatchID + r.FirstLogBatchID }

func writerName(firstLogBatchID int64) string {
	return fmt.Sprintf("%s%020d", writerPrefix, firstLogBatchID)
}

// writers returns the log's writer records, oldest first.
func (m metaLog) writers() ([]writerRecord, error) {
	ents, err := m.st.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing metadata log: %w", err)
	}
	var out []writerRecord
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name, writerPrefix)
		if !ok || e.IsDir {
			continue
		}
		first, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			continue // not ours
		}
		data, err := m.st.Get(ctx, e.Name)
		if err != nil {
			return nil, fmt.Errorf("reading writer record %s: %w", m.logPath(e.Name), err)
		}
		var r writerRecord
		if err := json.Unmarshal(data, &r); err != nil || r.QueryID == "" || r.FirstLogBatchID != first {
			return nil, fmt.Errorf("writer record %s is damaged (want {\"queryId\":…,\"firstLogBatchId\":%d,…})", m.logPath(e.Name), first)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b writerRecord) int { return int(a.FirstLogBatchID - b.FirstLogBatchID) })
	return out, nil
}

// putWriter creates r's record unless its name is taken (ok false).
func (m metaLog) putWriter(r writerRecord) (bool, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	err = m.st.PutIfAbsent(ctx, writerName(r.FirstLogBatchID), data)
	if errors.Is(err, storage.ErrExist) {
		return false, nil
	}
	return err == nil, err
}

// owner is who the sink writes for: the query and what it may do.
type owner struct {
	queryID  string // "" writes anonymously: log batch = batch id (New)
	resumed  bool   // the query's checkpoint has batches of an earlier run
	allowNew bool   // sluice.sink.allowNewQuery
}

// slot returns the log batch of the query's batch b under its records:
// owned is false when the query has no record that covers b (it has not
// written yet, or another query took the log over after it).
func (o owner) slot(recs []writerRecord, b int64) (logID int64, owned bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.QueryID != o.queryID || r.FirstBatchID > b {
			continue
		}
		l := r.logID(b)
		if i+1 < len(recs) && l >= recs[i+1].FirstLogBatchID {
			return 0, false
		}
		return l, true
	}
	return 0, false
}

// checkStart refuses a query that would write to a log another query
// owns, unless it opted in; it runs when the sink opens, before any data
// is read.
func (o owner) checkStart(path string, recs []writerRecord, latest int64) error {
	if o.queryID == "" || (latest < 0 && len(recs) == 0) || o.allowNew {
		return nil
	}
	if len(recs) == 0 {
		if o.resumed {
			return nil // a log from before writer records: adopted (see claim)
		}
		return fmt.Errorf("file sink: path %s holds batches 0 to %d of a query sluice has no record of (written by Spark or an older sluice); "+
			"this query (id %s) has a new checkpoint, and its batches 0 to %d would be skipped as already committed. "+
			"Restart the query that wrote the path with its own checkpoint, write to another path, or set %s=true to append this query's batches after the existing ones",
			path, latest, o.queryID, latest, OptAllowNewQuery)
	}
	newest := recs[len(recs)-1]
	if newest.QueryID == o.queryID {
		return nil
	}
	took := ""
	for _, r := range recs {
		if r.QueryID == o.queryID {
			took = fmt.Sprintf(" (it took the path over from this query at log batch %d)", newest.FirstLogBatchID)
		}
	}
	return fmt.Errorf("file sink: path %s was written by query %s%s, which owns its _spark_metadata log (batches up to %d); this query's id is %s (a new checkpoint?). "+
		"Restart query %s with its own checkpoint, write to another path, or set %s=true to append this query's batches after the existing ones",
		path, newest.QueryID, took, latest, o.queryID, newest.QueryID, OptAllowNewQuery)
}

// claim returns the record that makes the query's batch b a log batch,
// when the query has none covering b: a log from before writer records is
// adopted by the query resuming it (its batch ids are the log's), anything
// else continues after the latest log batch. It fails when another query
// took the log over while this one ran without the opt-in.
func (o owner) claim(path string, recs []writerRecord, latest, b int64) (writerRecord, error) {
	r := writerRecord{QueryID: o.queryID, FirstBatchID: b, FirstLogBatchID: latest + 1, CreatedMs: time.Now().UnixMilli()}
	if len(recs) == 0 && latest >= 0 && o.resumed && !o.allowNew {
		r.FirstBatchID, r.FirstLogBatchID = 0, 0
	}
	if len(recs) > 0 && !o.allowNew {
		newest := recs[len(recs)-1]
		return r, fmt.Errorf("file sink: query %s took over path %s at log batch %d while this query (id %s) was writing it; set %s=true to append after it",
			newest.QueryID, path, newest.FirstLogBatchID, o.queryID, OptAllowNewQuery)
	}
	return r, nil
}
