package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// BatchMetadata is line 2 of an offsets file (Spark's OffsetSeqMetadata).
type BatchMetadata struct {
	// WatermarkMs is the event-time watermark the batch runs with.
	WatermarkMs int64
	// TimestampMs is the batch's processing time (drives current_timestamp()).
	TimestampMs int64
	// Conf holds the configuration pinned for the query's lifetime.
	Conf map[string]string
}

type batchMetadataJSON struct {
	BatchWatermarkMs int64             `json:"batchWatermarkMs"`
	BatchTimestampMs int64             `json:"batchTimestampMs"`
	Conf             map[string]string `json:"conf"`
}

type commitJSON struct {
	NextBatchWatermarkMs int64 `json:"nextBatchWatermarkMs"`
}

// noOffset is how an offsets file marks a source without an offset.
const noOffset = "-"

// marshalJSON encodes v compactly without HTML escaping (map keys sorted).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeOffsets renders an offsets file. A source offset of "" or "-" means
// the source has no offset; others must be JSON and are written compacted
// onto one line.
func encodeOffsets(meta BatchMetadata, sources []string) ([]byte, error) {
	conf := meta.Conf
	if conf == nil {
		conf = map[string]string{}
	}
	mj, err := marshalJSON(batchMetadataJSON{meta.WatermarkMs, meta.TimestampMs, conf})
	if err != nil {
		return nil, fmt.Errorf("encode batch metadata: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("v" + strconv.Itoa(logVersion) + "\n")
	b.Write(mj)
	for i, s := range sources {
		b.WriteByte('\n')
		if s == "" || s == noOffset {
			b.WriteString(noOffset)
			continue
		}
		if err := json.Compact(&b, []byte(s)); err != nil {
			return nil, fmt.Errorf("offset of source %d is not valid JSON: %w", i, err)
		}
	}
	return b.Bytes(), nil
}

// splitLines splits a log file into lines, tolerating one trailing newline.
func splitLines(data []byte) []string {
	s := strings.TrimSuffix(string(data), "\n")
	return strings.Split(s, "\n")
}

// checkVersion validates a log file's first line ("v1") as Spark's
// HDFSMetadataLog.validateVersion does, with its texts: a line that is not
// "v" and a positive number is malformed; a version above the one this
// build writes is refused, since the file's format is unknown.
func checkVersion(line string) error {
	line = strings.TrimSpace(line)
	v, err := strconv.Atoi(strings.TrimPrefix(line, "v"))
	if !strings.HasPrefix(line, "v") || err != nil || v <= 0 {
		return fmt.Errorf("line 1: Log file was malformed: failed to read correct log version from %q (want \"v%d\"; the file is not a checkpoint log or is damaged)", clip(line), logVersion)
	}
	if v > logVersion {
		return fmt.Errorf("line 1: UnsupportedLogVersion: maximum supported log version is v%d, but encountered v%d: the file was written by a newer version of Spark or sluice, which this build cannot read; upgrade sluice", logVersion, v)
	}
	return nil
}

// decodeOffsets parses an offsets file. A source with no offset comes back
// as "".
func decodeOffsets(data []byte) (BatchMetadata, []string, error) {
	var meta BatchMetadata
	if len(data) == 0 {
		return meta, nil, errors.New("file is empty")
	}
	lines := splitLines(data)
	if err := checkVersion(lines[0]); err != nil {
		return meta, nil, err
	}
	if len(lines) < 2 {
		return meta, nil, errors.New("incomplete file: missing batch metadata (line 2)")
	}
	if md := strings.TrimSpace(lines[1]); md != "" {
		var mj batchMetadataJSON
		if err := json.Unmarshal([]byte(md), &mj); err != nil {
			return meta, nil, fmt.Errorf("line 2: batch metadata is not valid JSON: %w", err)
		}
		meta = BatchMetadata{WatermarkMs: mj.BatchWatermarkMs, TimestampMs: mj.BatchTimestampMs, Conf: mj.Conf}
	}
	if meta.Conf == nil {
		meta.Conf = map[string]string{}
	}
	sources := make([]string, 0, len(lines)-2)
	for i, l := range lines[2:] {
		if l == noOffset {
			sources = append(sources, "")
			continue
		}
		if !json.Valid([]byte(l)) {
			return meta, nil, fmt.Errorf("line %d: offset of source %d is not valid JSON: %q", i+3, i, clip(l))
		}
		sources = append(sources, l)
	}
	return meta, sources, nil
}

func encodeCommit(nextWatermarkMs int64) []byte {
	b, _ := marshalJSON(commitJSON{nextWatermarkMs})
	return append([]byte("v"+strconv.Itoa(logVersion)+"\n"), b...)
}

func decodeCommit(data []byte) (int64, error) {
	if len(data) == 0 {
		return 0, errors.New("file is empty (Incomplete log file in the offset commit log)")
	}
	lines := splitLines(data)
	if err := checkVersion(lines[0]); err != nil {
		return 0, err
	}
	if len(lines) != 2 {
		return 0, fmt.Errorf("want 2 lines (version, commit metadata), got %d", len(lines))
	}
	var cj commitJSON
	if err := json.Unmarshal([]byte(lines[1]), &cj); err != nil {
		return 0, fmt.Errorf("line 2: commit metadata is not valid JSON: %w", err)
	}
	return cj.NextBatchWatermarkMs, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// WriteOffsets writes offsets/<id>: the write-ahead record of batch id,
// made before the batch runs. sources holds each source's offset JSON in
// plan order ("" or "-" for a source without an offset). Re-writing the
// same content is a no-op; different content wraps ErrConflict.
func (c *Checkpoint) WriteOffsets(id int64, meta BatchMetadata, sources []string) error {
	if _, err := batchFile(id); err != nil {
		return err
	}
	data, err := encodeOffsets(meta, sources)
	if err != nil {
		return fmt.Errorf("checkpoint: offsets/%d: %w", id, err)
	}
	return c.writeBatchFile(offsetsDir, id, data)
}

// writeBatchFile writes a batch file of a log (offsetsDir, commitsDir)
// once. The I/O runs without c.mu, so the two logs are written at the
// same time when their callers overlap (the engine's pipelined commit).
func (c *Checkpoint) writeBatchFile(sub string, id int64, data []byte) error {
	if err := c.beginWrite(); err != nil {
		return err
	}
	defer c.writes.RUnlock()
	if err := c.writeOnce(sub+"/"+strconv.FormatInt(id, 10), data); err != nil {
		return err
	}
	c.mu.Lock()
	c.wrote(sub, id)
	c.mu.Unlock()
	return nil
}

// ReadOffsets reads offsets/<id>. A source without an offset comes back as
// "". A missing file gives an error wrapping fs.ErrNotExist.
func (c *Checkpoint) ReadOffsets(id int64) (BatchMetadata, []string, error) {
	name, err := batchFile(id)
	if err != nil {
		return BatchMetadata{}, nil, err
	}
	if err := c.begin(); err != nil {
		return BatchMetadata{}, nil, err
	}
	defer c.mu.Unlock()
	path := c.path(offsetsDir + "/" + name)
	data, err := c.store.Get(ctx, offsetsDir+"/"+name)
	if err != nil {
		return BatchMetadata{}, nil, fmt.Errorf("checkpoint: read offsets of batch %d: %w", id, err)
	}
	meta, src, err := decodeOffsets(data)
	if err != nil {
		return BatchMetadata{}, nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return meta, src, nil
}

// LatestOffsets returns the highest batch id in the offsets log; ok is
// false when the log is empty.
func (c *Checkpoint) LatestOffsets() (id int64, ok bool, err error) {
	if err := c.begin(); err != nil {
		return 0, false, err
	}
	defer c.mu.Unlock()
	return c.latest(offsetsDir)
}

// WriteCommit writes commits/<id>, marking batch id complete. Re-writing
// the same content is a no-op; different content wraps ErrConflict.
func (c *Checkpoint) WriteCommit(id, nextWatermarkMs int64) error {
	if _, err := batchFile(id); err != nil {
		return err
	}
	return c.writeBatchFile(commitsDir, id, encodeCommit(nextWatermarkMs))
}

// ReadCommit reads commits/<id> and returns its next-batch watermark. A
// missing file gives an error wrapping fs.ErrNotExist.
func (c *Checkpoint) ReadCommit(id int64) (nextWatermarkMs int64, err error) {
	if _, err := batchFile(id); err != nil {
		return 0, err
	}
	if err := c.begin(); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	return c.readCommit(id)
}

// readCommit reads and validates commits/<id>; c.mu is held.
func (c *Checkpoint) readCommit(id int64) (int64, error) {
	name := commitsDir + "/" + strconv.FormatInt(id, 10)
	data, err := c.store.Get(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: read commit of batch %d: %w", id, err)
	}
	wm, err := decodeCommit(data)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %s (commit of batch %d): %w", c.path(name), id, err)
	}
	return wm, nil
}

// latestCommit returns the highest batch id in the commit log after
// checking that its file is a valid commit: the commit log is where a
// (re)started query learns what is done, so a damaged file there must not
// count as a commit. c.mu is held.
func (c *Checkpoint) latestCommit() (int64, bool, error) {
	id, ok, err := c.latest(commitsDir)
	if err != nil || !ok {
		return id, ok, err
	}
	if _, err := c.readCommit(id); err != nil {
		return 0, false, fmt.Errorf("%w; if batch %d did not finish, remove the file to run it again (sinks skip what they already have), or restore it from a backup", err, id)
	}
	return id, true, nil
}

// LatestCommit returns the highest batch id in the commit log; ok is false
// when the log is empty. The file of that batch must be a valid commit.
func (c *Checkpoint) LatestCommit() (id int64, ok bool, err error) {
	if err := c.begin(); err != nil {
		return 0, false, err
	}
	defer c.mu.Unlock()
	return c.latestCommit()
}

// HasCommit reports whether commits/<id> exists.
func (c *Checkpoint) HasCommit(id int64) bool {
	name, err := batchFile(id)
	if err != nil {
		return false
	}
	_, err = c.store.Get(ctx, commitsDir+"/"+name)
	return err == nil
}

// WriteSourceInitial writes sources/<i>/0 in the Kafka source's format: a
// zero byte, "v1\n", then json (compacted). It is write-once: an existing
// file with the same content is fine, different content wraps ErrConflict.
// Callers read first with ReadSourceInitial and write only when absent.
func (c *Checkpoint) WriteSourceInitial(i int, js string) error {
	if i < 0 {
		return fmt.Errorf("checkpoint: negative source index %d", i)
	}
	var b bytes.Buffer
	b.WriteByte(0)
	b.WriteString("v" + strconv.Itoa(logVersion) + "\n")
	if err := json.Compact(&b, []byte(js)); err != nil {
		return fmt.Errorf("checkpoint: initial offsets of source %d are not valid JSON: %w", i, err)
	}
	if err := c.begin(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return c.writeOnce(sourceInitialName(i), b.Bytes())
}

// ReadSourceInitial reads sources/<i>/0; ok is false when it does not
// exist. Besides the current format it accepts Spark 2.1's, which is the
// bare JSON without the zero byte and version line.
func (c *Checkpoint) ReadSourceInitial(i int) (js string, ok bool, err error) {
	if i < 0 {
		return "", false, fmt.Errorf("checkpoint: negative source index %d", i)
	}
	if err := c.begin(); err != nil {
		return "", false, err
	}
	defer c.mu.Unlock()
	path := c.path(sourcesDir + "/" + strconv.Itoa(i) + "/0")
	data, err := c.store.Get(ctx, sourceInitialName(i))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: read initial offsets of source %d: %w", i, err)
	}
	js, err = decodeSourceInitial(data)
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return js, true, nil
}

// sourceInitialName is the store name of source i's initial offsets.
func sourceInitialName(i int) string { return sourcesDir + "/" + strconv.Itoa(i) + "/0" }

func decodeSourceInitial(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("file is empty")
	}
	body := data
	if data[0] == 0 {
		rest := data[1:]
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return "", errors.New("incomplete file: no version line after the leading zero byte")
		}
		if err := checkVersion(string(rest[:nl])); err != nil {
			return "", err
		}
		body = rest[nl+1:]
	}
	if !json.Valid(body) {
		return "", fmt.Errorf("initial offsets are not valid JSON: %q", clip(string(body)))
	}
	return string(body), nil
}
