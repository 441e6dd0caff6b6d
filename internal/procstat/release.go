package procstat

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The executable's pages after start-up.
//
// A Go binary's packages initialise before main runs, and every init
// function, the tables it reads and the code and data around them get
// mapped: the kernel maps a file page at least 64 KiB at a time (fault-
// around) and a large folio of the page cache whole — on Linux 6.x a
// freshly written file is often cached in folios of up to 2 MiB — so
// with some 350 package inits spread over 40 MiB of code and read-only
// data, most of the executable is resident once main starts (RssFile).
// Most of it is never used again: the object-store SDKs' endpoint tables,
// the chart fonts and the plotting code, the option parsers and the
// command-line code run once. ReleaseStartupPages unmaps those pages so
// that what stays resident is what the running query touches.

// mapping is one mapping of /proc/PID/smaps.
type mapping struct {
	start, end uint64
	perms      string
	inode      uint64
	path       string
	rss, anon  int64 // bytes
}

// parseSmaps reads the mappings of a /proc/PID/smaps file: each begins
// with a line "start-end perms offset dev inode [path]", followed by
// "Field: value [kB]" lines.
func parseSmaps(data []byte) ([]mapping, error) {
	var ms []mapping
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if strings.HasSuffix(f[0], ":") { // a field of the current mapping
			if len(ms) == 0 {
				return nil, fmt.Errorf("procstat: smaps field %q before any mapping", line)
			}
			m := &ms[len(ms)-1]
			var dst *int64
			switch f[0] {
			case "Rss:":
				dst = &m.rss
			case "Anonymous:":
				dst = &m.anon
			default:
				continue
			}
			if len(f) < 3 || f[2] != "kB" {
				return nil, fmt.Errorf("procstat: malformed smaps line %q", line)
			}
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("procstat: smaps line %q: %w", line, err)
			}
			*dst = kb << 10
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("procstat: malformed smaps mapping line %q", line)
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		inode, err3 := strconv.ParseUint(f[4], 10, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil || end < start || len(f[1]) != 4 {
			return nil, fmt.Errorf("procstat: malformed smaps mapping line %q", line)
		}
		m := mapping{start: start, end: end, perms: f[1], inode: inode}
		if len(f) > 5 {
			m.path = strings.Join(f[5:], " ")
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// releasable picks the mappings of the executable — the file with inode
// exe, or at path exePath (under overlayfs the mapping may show the
// underlying file's inode) — whose pages can
// be unmapped without changing what the process sees: read-only (nothing
// can write them between this look and the unmapping), private, and
// holding no anonymous page — a page of a private mapping that was
// written (relocations the dynamic loader applied before it made the
// segment read-only, a debugger's breakpoint) is the only copy of its
// contents, while a clean file page comes back from the page cache, as it
// was, on the next access.
func releasable(ms []mapping, exe uint64, exePath string) []mapping {
	var out []mapping
	for _, m := range ms {
		ours := (m.inode == exe && exe != 0) || (m.path == exePath && exePath != "")
		if !ours || m.inode == 0 || m.perms[0] != 'r' || m.perms[1] != '-' || m.perms[3] != 'p' ||
			m.anon != 0 || m.rss == 0 {
			continue
		}
		out = append(out, m)
	}
	return out
}
