//go:build !amd64

package sparkjson

// markBlocks sets q[k] to the quote marks of the 64 bytes b[64k:64k+64]
// (bit i for b[64k+i] == '"') for every k < len(q), len(b) being 64
// len(q), and reports whether b has a backslash or a byte below 0x20.
func markBlocks(b []byte, q []uint64) (special bool) { return markSWAR(b, q) }
