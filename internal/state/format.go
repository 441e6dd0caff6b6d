package state

import (
	"path/filepath"

	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/sluice-stream/sluice/internal/storage"
	"hash"
	"hash/crc32"
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// File format of .delta and .snapshot files (see the package doc).
const (
	fileMagic     = "SLST"
	footerMagic   = "TSLS"
	formatVersion = 1
	headerLen     = 16
	footerLen     = 32

	kindDelta    byte = 1
	kindSnapshot byte = 2

	codecNone byte = 0
	codecLZ4  byte = 1

	opPut    byte = 1
	opRemove byte = 2

	// maxRecordField bounds one key or value; larger lengths mean damage.
	maxRecordField = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// fileWriter writes one delta or snapshot file's records.
type fileWriter struct {
	crc     hash.Hash32
	out     io.Writer // the file
	under   io.Writer // file + crc: header and payload go through it
	counter *countingWriter
	// lz compresses the payload; taken from lzPool when the first block
	// is full or at close, and returned by close. A small delta (the usual
	// one: a shuffle partition's share of a batch) holds no compressor
	// while its batch runs, only body, sized to what it wrote.
	lz *lz4.Writer
	// body is the encoded records not yet handed to lz (less than a
	// block).
	body    []byte
	raw     int64
	records uint64
	err     error
}

// lzBlock is the payload's lz4 block size.
const lzBlock = 256 << 10

// lzPool keeps lz4 writers (with their options applied) between files: a
// batch commits a delta per shuffle partition, and a writer's buffers are
// large beside a partition's share of a batch. The frames carry no content
// checksum (an xxHash-32 of every uncompressed byte): the footer's CRC-32C
// already covers the whole payload, and a reader still verifies the
// checksum of a frame written with one.
var lzPool = sync.Pool{New: func() any {
	w := lz4.NewWriter(nil)
	if err := w.Apply(lz4.BlockSizeOption(lz4.Block256Kb), lz4.ChecksumOption(false)); err != nil {
		panic(err) // a constant, valid option
	}
	return w
}}

// bodyPool keeps the payload buffers of closed writers.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// newFileWriter starts a state file. sizeHint, when positive, is the
// payload the caller expects to write (a delta: what this store's previous
// delta held); the buffer is made that large (at most a block) up front
// rather than doubled up to it record by record.
func newFileWriter(w io.Writer, kind byte, version int64, sizeHint int64) (*fileWriter, error) {
	fw := &fileWriter{crc: crc32.New(crcTable), out: w}
	fw.under = io.MultiWriter(w, fw.crc)
	var h [headerLen]byte
	copy(h[:4], fileMagic)
	h[4] = formatVersion
	h[5] = kind
	h[6] = codecLZ4
	binary.BigEndian.PutUint64(h[8:], uint64(version))
	if _, err := fw.under.Write(h[:]); err != nil {
		return nil, err
	}
	fw.counter = &countingWriter{w: fw.under}
	fw.body = (*bodyPool.Get().(*[]byte))[:0]
	if sizeHint > 0 {
		want := min(sizeHint+sizeHint/8, lzBlock+lzBlock/8)
		if int64(cap(fw.body)) < want {
			fw.body = make([]byte, 0, want)
		}
	}
	return fw, nil
}

// compress hands the buffered records to the compressor (taken from the
// pool on first use).
func (fw *fileWriter) compress() error {
	if fw.lz == nil {
		fw.lz = lzPool.Get().(*lz4.Writer)
		fw.lz.Reset(fw.counter)
	}
	_, err := fw.lz.Write(fw.body)
	fw.body = fw.body[:0]
	return err
}

func (fw *fileWriter) put(key, value []byte) {
	fw.record(opPut, key, value)
}

func (fw *fileWriter) remove(key []byte) {
	fw.record(opRemove, key, nil)
}

func (fw *fileWriter) record(op byte, key, value []byte) {
	if fw.err != nil {
		return
	}
	n := len(fw.body)
	b := append(fw.body, op)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	if op == opPut {
		b = binary.AppendUvarint(b, uint64(len(value)))
		b = append(b, value...)
	}
	fw.body = b
	fw.raw += int64(len(b) - n)
	fw.records++
	if len(b) >= lzBlock {
		fw.err = fw.compress()
	}
}

// close flushes the payload and writes the footer.
func (fw *fileWriter) close() error {
	if fw.err != nil {
		return fw.err
	}
	if err := fw.compress(); err != nil {
		fw.err = err
		return err
	}
	if err := fw.lz.Close(); err != nil {
		fw.err = err
		return err
	}
	// Both go back only after a clean close: a writer that failed may
	// still hold a compressed block.
	fw.lz.Reset(nil)
	lzPool.Put(fw.lz)
	fw.lz = nil
	if cap(fw.body) <= 2*lzBlock {
		body := fw.body[:0]
		bodyPool.Put(&body)
	}
	fw.body = nil
	var f [footerLen]byte
	binary.BigEndian.PutUint64(f[0:], uint64(fw.counter.n))
	binary.BigEndian.PutUint64(f[8:], uint64(fw.raw))
	binary.BigEndian.PutUint64(f[16:], fw.records)
	fw.crc.Write(f[:24])
	binary.BigEndian.PutUint32(f[24:], fw.crc.Sum32())
	copy(f[28:], footerMagic)
	// The footer goes to the file only: it carries the checksum.
	_, err := fw.out.Write(f[:])
	return err
}

// fileInfo is what a file's header and footer say.
type fileInfo struct {
	kind    byte
	version int64
	records uint64
	raw     uint64
}

// readStateFile reads a delta or snapshot file, calling fn for each record
// (value is nil for a removal). Key and value slices are freshly allocated
// and may be kept. fn's effects must be discarded unless readStateFile
// returns nil: the checksum is verified after the last record.
func readStateFile(st storage.Store, name string, wantKind byte, wantVersion int64, fn func(op byte, key, value []byte) error) (fileInfo, error) {
	path := storage.URI(st, name)
	if root, ok := storage.LocalRoot(st); ok {
		path = filepath.Join(root, filepath.FromSlash(name))
	}
	f, size, done, err := openAt(st, name)
	if err != nil {
		return fileInfo{}, err
	}
	defer done()
	info, err := decodeStateFile(f, size, fn)
	if err != nil {
		var ce *CorruptFileError
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return info, err
	}
	if info.kind != wantKind || info.version != wantVersion {
		return info, &CorruptFileError{Path: path, Reason: fmt.Sprintf("header says %s of version %d, expected %s of version %d",
			kindName(info.kind), info.version, kindName(wantKind), wantVersion)}
	}
	return info, nil
}

func kindName(k byte) string {
	switch k {
	case kindDelta:
		return "delta"
	case kindSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("kind %d", k)
}

func corrupt(format string, args ...any) error {
	return &CorruptFileError{Reason: fmt.Sprintf(format, args...)}
}

// decodeStateFile validates framing and checksum of a file of size bytes
// read from r (an io.ReaderAt is used for the footer when available).
func decodeStateFile(r io.ReaderAt, size int64, fn func(op byte, key, value []byte) error) (fileInfo, error) {
	var info fileInfo
	if size < headerLen+footerLen {
		return info, corrupt("truncated: %d bytes, shorter than header and footer", size)
	}
	var h [headerLen]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return info, corrupt("reading header: %v", err)
	}
	if string(h[:4]) != fileMagic {
		return info, corrupt("not a sluice state file (bad magic %q)", h[:4])
	}
	if h[4] != formatVersion {
		return info, corrupt("unsupported format version %d", h[4])
	}
	info.kind = h[5]
	info.version = int64(binary.BigEndian.Uint64(h[8:]))
	codec := h[6]
	if codec != codecLZ4 && codec != codecNone {
		return info, corrupt("unknown codec %d", codec)
	}
	var f [footerLen]byte
	if _, err := r.ReadAt(f[:], size-footerLen); err != nil {
		return info, corrupt("reading footer: %v", err)
	}
	if string(f[28:]) != footerMagic {
		return info, corrupt("no footer (torn write?)")
	}
	payload := binary.BigEndian.Uint64(f[0:])
	info.raw = binary.BigEndian.Uint64(f[8:])
	info.records = binary.BigEndian.Uint64(f[16:])
	if payload != uint64(size-headerLen-footerLen) {
		return info, corrupt("footer says %d payload bytes, file has %d", payload, size-headerLen-footerLen)
	}
	crc := crc32.New(crcTable)
	crc.Write(h[:])
	payloadReader := io.TeeReader(io.NewSectionReader(r, headerLen, int64(payload)), crc)
	var body io.Reader = payloadReader
	var lzr *lz4.Reader
	if codec == codecLZ4 {
		lzr = lz4.NewReader(payloadReader)
		body = lzr
	}
	cr := &countingReader{r: bufio.NewReaderSize(body, 64<<10)}
	var records uint64
	decodeErr := decodeRecords(cr, info.raw, func(op byte, k, v []byte) error {
		records++
		return fn(op, k, v)
	})
	// Consume what is left of the payload so the checksum covers it all.
	if _, err := io.Copy(io.Discard, payloadReader); err != nil && decodeErr == nil {
		decodeErr = corrupt("reading payload: %v", err)
	}
	crc.Write(f[:24])
	if got, want := crc.Sum32(), binary.BigEndian.Uint32(f[24:]); got != want {
		return info, corrupt("checksum mismatch (crc32c %08x, footer says %08x)", got, want)
	}
	if decodeErr != nil {
		var ce *CorruptFileError
		if errors.As(decodeErr, &ce) {
			return info, decodeErr
		}
		if _, ok := decodeErr.(callbackError); ok {
			return info, decodeErr.(callbackError).err
		}
		return info, corrupt("%v", decodeErr)
	}
	if uint64(cr.n) != info.raw || records != info.records {
		return info, corrupt("footer says %d records in %d bytes, read %d in %d", info.records, info.raw, records, cr.n)
	}
	return info, nil
}

type callbackError struct{ err error }

func (c callbackError) Error() string { return c.err.Error() }

type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// decodeRecords parses the uncompressed record stream, at most limit bytes
// (the footer's raw length). Errors from fn are wrapped in callbackError.
func decodeRecords(r interface {
	io.Reader
	io.ByteReader
}, limit uint64, fn func(op byte, key, value []byte) error) error {
	var read uint64
	readField := func(what string) ([]byte, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, corrupt("%s length: %v", what, noEOF(err))
		}
		read += uint64(uvarintLen(n))
		if n > maxRecordField || n > limit-min(read, limit) {
			return nil, corrupt("%s length %d past the end of the data", what, n)
		}
		buf, err := readN(r, int(n))
		if err != nil {
			return nil, corrupt("%s: %v", what, noEOF(err))
		}
		read += n
		return buf, nil
	}
	for {
		op, err := r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return corrupt("record: %v", err)
		}
		read++
		if read > limit {
			return corrupt("more data than the footer says (%d bytes)", limit)
		}
		if op != opPut && op != opRemove {
			return corrupt("unknown record type %d", op)
		}
		key, err := readField("key")
		if err != nil {
			return err
		}
		var value []byte
		if op == opPut {
			if value, err = readField("value"); err != nil {
				return err
			}
			if value == nil {
				value = []byte{}
			}
		}
		if err := fn(op, key, value); err != nil {
			return callbackError{err}
		}
	}
}

// readN reads exactly n bytes, growing the buffer with the data actually
// present so a damaged length cannot force a huge allocation.
func readN(r io.Reader, n int) ([]byte, error) {
	if n <= 1<<20 {
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	var b bytes.Buffer
	m, err := io.CopyN(&b, r, int64(n))
	if err == nil && m != int64(n) {
		err = io.ErrUnexpectedEOF
	}
	return b.Bytes(), err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}
