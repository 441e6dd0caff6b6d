package state

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// TestLZ4ContentChecksum: state files are written without the lz4 frame's
// content checksum (the footer's CRC-32C covers the payload), and a file
// whose frame has one — every file written before — still loads, with the
// checksum verified.
func TestLZ4ContentChecksum(t *testing.T) {
	// A file as this version writes it: the frame descriptor's content
	// checksum flag (FLG bit 2, the byte after the 4-byte frame magic) is off.
	var buf bytes.Buffer
	fw, err := newFileWriter(&buf, kindDelta, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	fw.put([]byte("k"), []byte("v"))
	if err := fw.close(); err != nil {
		t.Fatal(err)
	}
	if flg := buf.Bytes()[headerLen+4]; flg&0x04 != 0 {
		t.Fatalf("frame descriptor FLG %#x has the content checksum flag", flg)
	}

	// A file whose frame carries the checksum, built by hand.
	withChecksum := func(corruptChecksum bool) []byte {
		var h [headerLen]byte
		copy(h[:4], fileMagic)
		h[4], h[5], h[6] = formatVersion, kindDelta, codecLZ4
		binary.BigEndian.PutUint64(h[8:], 7)
		var raw []byte
		for i := range 1000 {
			raw = append(raw, opPut, 2, 'k', byte(i), 3, 'v', 'a', byte(i>>8))
		}
		var payload bytes.Buffer
		w := lz4.NewWriter(&payload)
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block256Kb), lz4.ChecksumOption(true)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		p := payload.Bytes()
		if p[4]&0x04 == 0 {
			t.Fatalf("hand-built frame has no content checksum (FLG %#x)", p[4])
		}
		if corruptChecksum {
			p[len(p)-1] ^= 0xFF // the content checksum is the frame's last 4 bytes
		}
		var f [footerLen]byte
		binary.BigEndian.PutUint64(f[0:], uint64(len(p)))
		binary.BigEndian.PutUint64(f[8:], uint64(len(raw)))
		binary.BigEndian.PutUint64(f[16:], 1000)
		crc := crc32.New(crcTable)
		crc.Write(h[:])
		crc.Write(p)
		crc.Write(f[:24])
		binary.BigEndian.PutUint32(f[24:], crc.Sum32())
		copy(f[28:], footerMagic)
		return append(append(h[:], p...), f[:]...)
	}
	file := withChecksum(false)
	n := 0
	info, err := decodeStateFile(bytes.NewReader(file), int64(len(file)), func(op byte, k, v []byte) error {
		if op != opPut || len(k) != 2 || len(v) != 3 {
			t.Fatalf("record %d: op %d key %q value %q", n, op, k, v)
		}
		n++
		return nil
	})
	if err != nil || n != 1000 || info.records != 1000 {
		t.Fatalf("file with a content checksum: %d records, %v", n, err)
	}
	// The frame's checksum is verified: a wrong one (with a footer CRC
	// that matches the damaged bytes) fails the load.
	bad := withChecksum(true)
	if _, err := decodeStateFile(bytes.NewReader(bad), int64(len(bad)), func(byte, []byte, []byte) error { return nil }); err == nil {
		t.Fatal("a frame with a wrong content checksum loaded")
	}
}
