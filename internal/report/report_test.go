package report

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"strings"
	"testing"
)

func TestChartSavePNGAndSVG(t *testing.T) {
	dir := t.TempDir()
	c := NewChart("batch duration", "seconds", "ms").
		Add(Series{Name: "batch", X: []float64{0, 1, 2, 3, math.NaN(), 5}, Y: []float64{100, 250, 900, 400, 1, 120}, Points: true}).
		Add(Series{Name: "rate", X: []float64{0, 5}, Y: []float64{10, 20}, Step: true, Dashed: true}).
		AddHLine(HLine{Name: "target", Y: 500, Dashed: true, Color: Red})
	c.Width, c.Height = 400, 200
	pngPath, svgPath, err := c.Save(dir, "c")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	// 400×200 points at gonum's default 96 dpi.
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
		t.Fatalf("PNG is %v, want at least 400×200", b)
	}
	if !hasColor(img, Red) {
		t.Error("PNG has no pixel of the target line's colour")
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "batch duration", "target", "</svg>"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func hasColor(img image.Image, c interface{ RGBA() (r, g, b, a uint32) }) bool {
	wr, wg, wb, _ := c.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r == wr && g == wg && bb == wb {
				return true
			}
		}
	}
	return false
}

func TestChartErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := NewChart("x", "", "").Add(Series{X: []float64{math.NaN()}, Y: []float64{1}}).Save(dir, "e"); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty chart: %v", err)
	}
	if _, _, err := NewChart("x", "", "").Add(Series{Name: "bad", X: []float64{1, 2}, Y: []float64{1}}).Save(dir, "m"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("mismatched series: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed charts wrote files: %v", entries)
	}
}

func TestTable(t *testing.T) {
	tb := &Table{Header: []string{"phase", "p95 ms", "verdict"}, Right: []int{1}}
	tb.AddRow("baseline", "120", "stable").AddRow("a|b", "4,100", "unstable")
	md := tb.Markdown()
	want := "| phase | p95 ms | verdict |\n|---|---:|---|\n| baseline | 120 | stable |\n| a\\|b | 4,100 | unstable |\n"
	if md != want {
		t.Fatalf("Markdown:\n%s\nwant\n%s", md, want)
	}
	txt := tb.Text()
	wantTxt := "phase     p95 ms  verdict\n--------  ------  --------\nbaseline     120  stable\na|b        4,100  unstable\n"
	if txt != wantTxt {
		t.Fatalf("Text:\n%q\nwant\n%q", txt, wantTxt)
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Number(0), "0"}, {Number(999), "999"}, {Number(1000), "1,000"}, {Number(-1234567), "-1,234,567"},
		{Float(math.NaN(), 1), "n/a"}, {Float(math.Inf(1), 1), "∞"}, {Float(1.25, 1), "1.2"},
		{Seconds(0.5), "0.50 s"}, {Seconds(12.34), "12.3 s"}, {Seconds(200), "3m20s"}, {Seconds(math.Inf(1)), "never"},
		{Bytes(-1), "n/a"}, {Bytes(512), "0.5 KiB"}, {Bytes(3 << 20), "3.0 MiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestDoc(t *testing.T) {
	var d Doc
	d.Heading(2, "Phase %d", 1)
	d.Para("stable: %s", "yes")
	d.Bullets("a", "b")
	d.Image("rates", "charts/r.png", "charts/r.svg")
	d.Code("yaml", "a: 1\n")
	want := "## Phase 1\n\nstable: yes\n\n- a\n- b\n\n![rates](charts/r.png)  \n[SVG](charts/r.svg)\n\n```yaml\na: 1\n```\n\n"
	if d.String() != want {
		t.Fatalf("doc:\n%q\nwant\n%q", d.String(), want)
	}
}
