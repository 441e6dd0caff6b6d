package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Load reads only regular files, and at most MaxFileSize bytes of them.
// `sluice run /dev/zero` used to read until memory ran out (7.8 GB in 20 s),
// a FIFO blocked forever and a 50 MB file peaked at 1 GB before its error.
func TestLoadRefusesWhatIsNotASmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "load pipeline: /dev/zero is not a regular file (it is a device); a pipeline file must be a regular file"},
		{"/dev/null", "load pipeline: /dev/null is not a regular file (it is a device)"},
		{dir, "load pipeline: " + dir + " is not a regular file (it is a directory)"},
	} {
		_, err := Load(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%s): %v, want %q", c.path, err, c.want)
		}
	}

	big := filepath.Join(dir, "big.yaml")
	data := []byte(minimal + "# " + strings.Repeat("x", MaxFileSize) + "\n")
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("load pipeline: %s is %d bytes; a pipeline file may be at most 1 MiB (1048576 bytes)", big, len(data))
	if _, err := Load(big); err == nil || err.Error() != want {
		t.Errorf("Load(big): %v, want %q", err, want)
	}
	want = fmt.Sprintf("mem.yaml: the file is %d bytes; a pipeline file may be at most 1 MiB (1048576 bytes)", len(data))
	if _, err := Parse("mem.yaml", data, nil); err == nil || err.Error() != want {
		t.Errorf("Parse(big): %v, want %q", err, want)
	}

	// Exactly the limit is fine, and so is a symbolic link to a regular file.
	fits := filepath.Join(dir, "fits.yaml")
	data = []byte(minimal + "# ")
	data = append(data, strings.Repeat("x", MaxFileSize-len(data)-1)+"\n"...)
	if err := os.WriteFile(fits, data, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(fits, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fits, link} {
		if f, err := Load(p); err != nil || f.Source.Format != "rate" {
			t.Errorf("Load(%s) of %d bytes: %v", p, len(data), err)
		}
	}
}

// A YAML "billion laughs" document (nine levels of ten aliases, 10⁹ values
// once expanded, 1 KB on disk) is refused without being expanded: the YAML
// library keeps aliases as references, and the walk over the document never
// descends into a value of the wrong shape, so it visits a few hundred
// values (and is bounded by maxValues in any case, TestAliasBlowUpIsBounded).
func TestBillionLaughsIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "options:\n  a0: &a0 [\"lol\"]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("transform: *a9\ndeadLetter: {format: console, options: *a9}\n")
	p := &parser{file: "laughs.yaml", budget: maxValues}
	root, err := p.document([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	p.pipeline(root)
	if len(p.errs) == 0 {
		t.Fatal("the document was accepted")
	}
	if p.values > 1000 {
		t.Errorf("visited %d values, want the aliases left unexpanded", p.values)
	}
}
