package procstat

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// smapsSample is the shape of /proc/PID/smaps of an externally linked
// binary (fields trimmed): code, read-only data, the RELRO page the
// dynamic loader wrote (anonymous), data, a heap and libc.
const smapsSample = `00400000-00402000 r--p 00000000 fd:00 4242 /tmp/sluice
Size:                  8 kB
Rss:                   8 kB
Anonymous:             0 kB
00402000-01848000 r-xp 00002000 fd:00 4242 /tmp/sluice
Size:              20760 kB
Rss:               20088 kB
FilePmdMapped:     16384 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
01848000-02d14000 r--p 01448000 fd:00 4242 /tmp/sluice
Rss:               20000 kB
Anonymous:             0 kB
02d14000-02d15000 r--p 02914000 fd:00 4242 /tmp/sluice
Rss:                   4 kB
Anonymous:             4 kB
02d15000-03319000 rw-p 02915000 fd:00 4242 /tmp/sluice
Rss:                6064 kB
Anonymous:           120 kB
03319000-0536b000 rw-p 00000000 00:00 0 
Rss:                 136 kB
Anonymous:           136 kB
05400000-05500000 r--p 00000000 fd:00 4242 /tmp/sluice
Rss:                   0 kB
Anonymous:             0 kB
7f90f6cd1000-7f90f6e27000 r-xp 00028000 fd:00 777 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 828 kB
Anonymous:             0 kB
7f90f6e30000-7f90f6e40000 r-xp 00000000 00:2a 99 /usr/local/bin/sluice (deleted)
Rss:                  64 kB
Anonymous:             0 kB
7f90f6e40000-7f90f6e50000 r--s 00000000 00:2a 100 /usr/local/bin/sluice (deleted)
Rss:                  64 kB
Anonymous:             0 kB
`

func TestReleasable(t *testing.T) {
	ms, err := parseSmaps([]byte(smapsSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 10 {
		t.Fatalf("%d mappings, want 10", len(ms))
	}
	if m := ms[1]; m.start != 0x402000 || m.end != 0x1848000 || m.perms != "r-xp" || m.inode != 4242 ||
		m.path != "/tmp/sluice" || m.rss != 20088<<10 || m.anon != 0 {
		t.Fatalf("code mapping parsed as %+v", m)
	}
	if ms[5].path != "" || ms[5].anon != 136<<10 {
		t.Fatalf("anonymous mapping parsed as %+v", ms[5])
	}
	spans := func(ms []mapping) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.perms+" "+m.path)
		}
		return strings.Join(s, ", ")
	}
	// By inode: the ELF header page, the code and the read-only data;
	// not the RELRO page (written by the loader), the data, the heap,
	// libc, a mapping with nothing resident.
	if got, want := spans(releasable(ms, 4242, "")), "r--p /tmp/sluice, r-xp /tmp/sluice, r--p /tmp/sluice"; got != want {
		t.Errorf("by inode: %s, want %s", got, want)
	}
	if got := releasable(ms, 4242, ""); got[1].start != 0x402000 || got[2].start != 0x1848000 {
		t.Errorf("released %+v", got)
	}
	// By path (overlayfs shows another inode; the executable was
	// replaced on disk): only the private read-only mapping.
	if got, want := spans(releasable(ms, 1, "/usr/local/bin/sluice (deleted)")), "r-xp /usr/local/bin/sluice (deleted)"; got != want {
		t.Errorf("by path: %s, want %s", got, want)
	}
	if got := releasable(ms, 0, ""); len(got) != 0 {
		t.Errorf("no executable known: released %s", spans(got))
	}
	for _, bad := range []string{
		"Rss: 4 kB\n",                                                // a field before any mapping
		"00400000 r--p 00000000 fd:00 1\n",                           // no range
		"00400000-00402000 r--p 00000000 fd:00 x /a\n",               // inode
		"00400000-00402000 r--p 00000000 fd:00 1 /a\nRss: x kB\n",    // value
		"00400000-00402000 r--p 00000000 fd:00 1 /a\nAnonymous: 4\n", // unit
		"00402000-00400000 r--p 00000000 fd:00 1 /a\n",               // end before start
		"00400000-00402000 rw 00000000 fd:00 1 /a\n",                 // perms
		"00400000-00402000 r--p 00000000 fd:00\n",                    // too short
	} {
		if _, err := parseSmaps([]byte(bad)); err == nil {
			t.Errorf("parseSmaps(%q) succeeded", bad)
		}
	}
}

// TestReleaseStartupPages releases this test binary's start-up pages: the
// file-backed resident set shrinks, and the process goes on running code
// and reading data that were unmapped.
func TestReleaseStartupPages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc and madvise")
	}
	before, err := FileResident(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	released, err := ReleaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after, err := FileResident(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file-backed resident %d KiB → %d KiB; %d KiB released", before>>10, after>>10, released>>10)
	if released <= 0 || after >= before {
		t.Fatalf("released %d bytes; file-backed resident %d → %d: want fewer", released, before, after)
	}
	// Code and read-only data come back on use: parse the sample again,
	// format, and release a second time.
	if ms, err := parseSmaps([]byte(smapsSample)); err != nil || len(ms) != 10 {
		t.Fatalf("after the release: %d mappings, %v", len(ms), err)
	}
	if _, err := ReleaseStartupPages(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Memory(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
