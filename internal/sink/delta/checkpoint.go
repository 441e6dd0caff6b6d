package delta

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/sluice-stream/sluice/internal/storage"
)

// Rows of a classic (V1) checkpoint: one action per row in struct
// columns, in the column order of PROTOCOL.md's checkpoint schema. Fields
// Delta always sets are required; the rest are optional.

type cpFormat struct {
	Provider string            `parquet:"provider"`
	Options  map[string]string `parquet:"options"`
}

type cpMetaData struct {
	ID               string            `parquet:"id"`
	Name             *string           `parquet:"name,optional"`
	Description      *string           `parquet:"description,optional"`
	Format           cpFormat          `parquet:"format"`
	SchemaString     string            `parquet:"schemaString"`
	PartitionColumns []string          `parquet:"partitionColumns,list"`
	CreatedTime      *int64            `parquet:"createdTime,optional"`
	Configuration    map[string]string `parquet:"configuration"`
}

type cpProtocol struct {
	MinReaderVersion int32    `parquet:"minReaderVersion"`
	MinWriterVersion int32    `parquet:"minWriterVersion"`
	ReaderFeatures   []string `parquet:"readerFeatures,optional,list"`
	WriterFeatures   []string `parquet:"writerFeatures,optional,list"`
}

type cpTxn struct {
	AppID       string `parquet:"appId"`
	Version     int64  `parquet:"version"`
	LastUpdated *int64 `parquet:"lastUpdated,optional"`
}

type cpAdd struct {
	Path             string             `parquet:"path"`
	PartitionValues  map[string]*string `parquet:"partitionValues"`
	Size             int64              `parquet:"size"`
	ModificationTime int64              `parquet:"modificationTime"`
	DataChange       bool               `parquet:"dataChange"`
	Stats            *string            `parquet:"stats,optional"`
	Tags             map[string]string  `parquet:"tags,optional"`
}

type cpRemove struct {
	Path              string `parquet:"path"`
	DeletionTimestamp *int64 `parquet:"deletionTimestamp,optional"`
	DataChange        bool   `parquet:"dataChange"`
}

type cpRow struct {
	MetaData *cpMetaData `parquet:"metaData,optional"`
	Protocol *cpProtocol `parquet:"protocol,optional"`
	Txn      *cpTxn      `parquet:"txn,optional"`
	Add      *cpAdd      `parquet:"add,optional"`
	Remove   *cpRemove   `parquet:"remove,optional"`
}

// checkpointRows renders s as checkpoint rows: protocol, metaData, txns by
// app id, live files by path, and tombstones younger than the retention.
func checkpointRows(s *state, now time.Time) []cpRow {
	rows := make([]cpRow, 0, 2+len(s.txns)+len(s.files)+len(s.tombstones))
	p := s.protocol
	rows = append(rows, cpRow{Protocol: &cpProtocol{
		MinReaderVersion: int32(p.MinReaderVersion), MinWriterVersion: int32(p.MinWriterVersion),
		ReaderFeatures: p.ReaderFeatures, WriterFeatures: p.WriterFeatures,
	}})
	m := s.meta
	rows = append(rows, cpRow{MetaData: &cpMetaData{
		ID: m.ID, Name: m.Name, Description: m.Description,
		Format:       cpFormat{Provider: m.Format.Provider, Options: m.Format.Options},
		SchemaString: m.SchemaString, PartitionColumns: m.PartitionColumns,
		CreatedTime: m.CreatedTime, Configuration: m.Configuration,
	}})
	for _, id := range sortedKeys(s.txns) {
		t := s.txns[id]
		rows = append(rows, cpRow{Txn: &cpTxn{AppID: t.AppID, Version: t.Version, LastUpdated: t.LastUpdated}})
	}
	for _, path := range sortedKeys(s.files) {
		a := s.files[path]
		row := &cpAdd{Path: a.Path, PartitionValues: a.PartitionValues, Size: a.Size, ModificationTime: a.ModificationTime, DataChange: false, Tags: a.Tags}
		if row.PartitionValues == nil {
			row.PartitionValues = map[string]*string{}
		}
		if a.Stats != "" {
			st := a.Stats
			row.Stats = &st
		}
		rows = append(rows, cpRow{Add: row})
	}
	cutoff := now.Add(-tombstoneRetention).UnixMilli()
	for _, path := range sortedKeys(s.tombstones) {
		r := s.tombstones[path]
		if r.DeletionTimestamp != nil && *r.DeletionTimestamp < cutoff {
			continue
		}
		rows = append(rows, cpRow{Remove: &cpRemove{Path: r.Path, DeletionTimestamp: r.DeletionTimestamp, DataChange: false}})
	}
	return rows
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeCheckpoint writes the checkpoint of s (at s.version) into the log
// and then points _last_checkpoint at it. Both are replaced atomically: a
// checkpoint holds the same content whoever writes it, so replacing one
// is harmless.
func (lg deltaLog) writeCheckpoint(s *state, now time.Time) error {
	if s.protocol == nil || s.meta == nil {
		return errors.New("delta checkpoint: table has no protocol or metaData")
	}
	rows := checkpointRows(s, now)
	w, err := lg.st.Create(ctx, checkpointName(s.version), storage.Replace)
	if err != nil {
		return fmt.Errorf("delta checkpoint %d: %w", s.version, err)
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	pw := parquet.NewGenericWriter[cpRow](bw, parquet.Compression(&snappy.Codec{}))
	_, err = pw.Write(rows)
	if err == nil {
		err = pw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		w.Abort()
		return fmt.Errorf("delta checkpoint %d: %w", s.version, err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("delta checkpoint %d: %w", s.version, err)
	}
	size, nFiles := cw.n, int64(len(s.files))
	lc, err := json.Marshal(lastCheckpoint{Version: s.version, Size: int64(len(rows)), SizeInBytes: &size, NumOfAddFiles: &nFiles})
	if err != nil {
		return err
	}
	if err := lg.st.Put(ctx, lastCheckpointFile, lc); err != nil {
		return fmt.Errorf("delta checkpoint %d: %w", s.version, err)
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readCheckpointFile loads a classic single-file checkpoint.
func (lg deltaLog) readCheckpointFile(name string) (*state, error) {
	data, err := lg.st.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading delta checkpoint: %w", err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("reading delta checkpoint %s: %w", name, err)
	}
	r := parquet.NewGenericReader[cpRow](pf)
	defer r.Close()
	s := newState()
	buf := make([]cpRow, 256)
	for {
		n, err := r.Read(buf)
		for _, row := range buf[:n] {
			s.apply(row.action())
		}
		clear(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading delta checkpoint %s: %w", name, err)
		}
	}
	if s.protocol == nil || s.meta == nil {
		return nil, fmt.Errorf("delta checkpoint %s has no protocol or metaData", name)
	}
	return s, nil
}

// action converts a checkpoint row back to a log action.
func (r cpRow) action() actionIn {
	var a actionIn
	switch {
	case r.Protocol != nil:
		p := r.Protocol
		a.Protocol = &protocolAction{MinReaderVersion: int(p.MinReaderVersion), MinWriterVersion: int(p.MinWriterVersion), ReaderFeatures: p.ReaderFeatures, WriterFeatures: p.WriterFeatures}
	case r.MetaData != nil:
		m := r.MetaData
		a.MetaData = &metaDataAction{
			ID: m.ID, Name: m.Name, Description: m.Description,
			Format:       formatSpec{Provider: m.Format.Provider, Options: orEmpty(m.Format.Options)},
			SchemaString: m.SchemaString, PartitionColumns: m.PartitionColumns,
			Configuration: orEmpty(m.Configuration), CreatedTime: m.CreatedTime,
		}
		if a.MetaData.PartitionColumns == nil {
			a.MetaData.PartitionColumns = []string{}
		}
	case r.Txn != nil:
		a.Txn = &txnAction{AppID: r.Txn.AppID, Version: r.Txn.Version, LastUpdated: r.Txn.LastUpdated}
	case r.Add != nil:
		ad := r.Add
		a.Add = &addAction{Path: ad.Path, PartitionValues: ad.PartitionValues, Size: ad.Size, ModificationTime: ad.ModificationTime, DataChange: ad.DataChange, Tags: ad.Tags}
		if ad.Stats != nil {
			a.Add.Stats = *ad.Stats
		}
		if a.Add.PartitionValues == nil {
			a.Add.PartitionValues = map[string]*string{}
		}
	case r.Remove != nil:
		a.Remove = &removeAction{Path: r.Remove.Path, DeletionTimestamp: r.Remove.DeletionTimestamp, DataChange: r.Remove.DataChange}
	}
	return a
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
