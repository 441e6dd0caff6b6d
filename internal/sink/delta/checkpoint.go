package delta

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
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

// writeCheckpoint writes the checkpoint of s (at s.version) into dir and
// then points _last_checkpoint at it. Both files are written to temporary
// names and renamed; a checkpoint holds the same content whoever writes
// it, so replacing one is harmless.
func writeCheckpoint(dir string, s *state, now time.Time) error {
	if s.protocol == nil || s.meta == nil {
		return errors.New("delta checkpoint: table has no protocol or metaData")
	}
	rows := checkpointRows(s, now)
	name := checkpointName(s.version)
	size, err := writeFileAtomic(dir, name, func(w io.Writer) error {
		pw := parquet.NewGenericWriter[cpRow](w, parquet.Compression(&snappy.Codec{}))
		if _, err := pw.Write(rows); err != nil {
			return err
		}
		return pw.Close()
	})
	if err != nil {
		return fmt.Errorf("delta checkpoint %d: %w", s.version, err)
	}
	nFiles := int64(len(s.files))
	lc, err := json.Marshal(lastCheckpoint{Version: s.version, Size: int64(len(rows)), SizeInBytes: &size, NumOfAddFiles: &nFiles})
	if err != nil {
		return err
	}
	if _, err := writeFileAtomic(dir, lastCheckpointFile, func(w io.Writer) error {
		_, err := w.Write(lc)
		return err
	}); err != nil {
		return fmt.Errorf("delta checkpoint %d: %w", s.version, err)
	}
	return nil
}

// writeFileAtomic writes dir/name through a hidden temporary file that is
// fsynced and renamed over the name; it returns the file size.
func writeFileAtomic(dir, name string, write func(io.Writer) error) (int64, error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 64<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = tmp.Stat(); err == nil {
			size = st.Size()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		return 0, err
	}
	return size, nil
}

// readCheckpoint loads a classic single-file checkpoint.
func readCheckpoint(path string) (*state, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading delta checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading delta checkpoint: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("reading delta checkpoint %s: %w", filepath.Base(path), err)
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
			return nil, fmt.Errorf("reading delta checkpoint %s: %w", filepath.Base(path), err)
		}
	}
	if s.protocol == nil || s.meta == nil {
		return nil, fmt.Errorf("delta checkpoint %s has no protocol or metaData", filepath.Base(path))
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
