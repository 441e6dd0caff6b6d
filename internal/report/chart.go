// Package report renders what sluice's rehearsals and benchmarks measured
// for people: line charts as PNG and SVG (gonum.org/v1/plot), and Markdown
// or plain-text documents with tables.
package report

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is one line of a chart. X and Y have the same length; points
// whose X or Y is NaN are left out (the line is broken there).
type Series struct {
	Name string
	X, Y []float64
	// Style: Dashed draws a dashed line, Step a staircase (the value holds
	// until the next point), Points adds a dot at every point.
	Dashed, Step, Points bool
	// Color overrides the palette colour (nil: by position).
	Color color.Color
}

// HLine is a horizontal reference line, e.g. a target or a budget.
type HLine struct {
	Name   string
	Y      float64
	Dashed bool
	Color  color.Color
}

// Chart is a line chart.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	HLines                []HLine
	// YMin and YMax fix the Y range when set (not NaN); by default the
	// range starts at 0 and fits the data.
	YMin, YMax float64
	// Width and Height in points (defaults 720×320).
	Width, Height float64
}

// Palette is the colour cycle of series without a Color: colour-blind
// friendly (Okabe–Ito).
var Palette = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{0, 158, 115, 255},   // bluish green
	color.RGBA{204, 121, 167, 255}, // reddish purple
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{86, 180, 233, 255},  // sky blue
	color.RGBA{240, 228, 66, 255},  // yellow
	color.RGBA{0, 0, 0, 255},       // black
}

// Reference-line colours.
var (
	Grey = color.RGBA{110, 110, 110, 255}
	Red  = color.RGBA{200, 30, 30, 255}
)

// NewChart returns a chart with the Y range fitting the data from 0.
func NewChart(title, xLabel, yLabel string) *Chart {
	return &Chart{Title: title, XLabel: xLabel, YLabel: yLabel, YMin: 0, YMax: math.NaN()}
}

// Add appends a series and returns the chart.
func (c *Chart) Add(s Series) *Chart {
	c.Series = append(c.Series, s)
	return c
}

// AddHLine appends a reference line and returns the chart.
func (c *Chart) AddHLine(h HLine) *Chart {
	c.HLines = append(c.HLines, h)
	return c
}

// ErrEmpty is returned when a chart has no point to draw.
var ErrEmpty = errors.New("report: chart has no data")

// build makes the gonum plot.
func (c *Chart) build() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymax := math.Inf(-1)
	points := 0
	for i, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("report: series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		col := s.Color
		if col == nil {
			col = Palette[i%len(Palette)]
		}
		first := true
		for _, seg := range segments(s.X, s.Y) {
			points += len(seg)
			for _, pt := range seg {
				xmin, xmax, ymax = min(xmin, pt.X), max(xmax, pt.X), max(ymax, pt.Y)
			}
			l, err := plotter.NewLine(seg)
			if err != nil {
				return nil, fmt.Errorf("report: series %q: %w", s.Name, err)
			}
			l.Color = col
			l.Width = vg.Points(1.5)
			if s.Dashed {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			}
			if s.Step {
				l.StepStyle = plotter.PostStep
			}
			p.Add(l)
			if s.Points {
				sc, err := plotter.NewScatter(seg)
				if err != nil {
					return nil, fmt.Errorf("report: series %q: %w", s.Name, err)
				}
				sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
				p.Add(sc)
			}
			if first && s.Name != "" {
				p.Legend.Add(s.Name, l)
				first = false
			}
		}
	}
	if points == 0 {
		return nil, ErrEmpty
	}
	if xmin == xmax {
		xmin, xmax = xmin-1, xmax+1
	}
	for _, h := range c.HLines {
		if math.IsNaN(h.Y) || math.IsInf(h.Y, 0) {
			continue
		}
		ymax = max(ymax, h.Y)
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: h.Y}, {X: xmax, Y: h.Y}})
		if err != nil {
			return nil, err
		}
		l.Color = h.Color
		if l.Color == nil {
			l.Color = Grey
		}
		l.Width = vg.Points(1)
		if h.Dashed {
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		}
		p.Add(l)
		if h.Name != "" {
			p.Legend.Add(h.Name, l)
		}
	}
	p.X.Min, p.X.Max = xmin, xmax
	if !math.IsNaN(c.YMin) {
		p.Y.Min = c.YMin
	}
	switch {
	case !math.IsNaN(c.YMax):
		p.Y.Max = c.YMax
	case ymax > p.Y.Min:
		p.Y.Max = ymax * 1.08 // room for the legend
	default:
		p.Y.Max = p.Y.Min + 1
	}
	return p, nil
}

// segments splits a series into runs without NaN.
func segments(x, y []float64) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for i := range x {
		if math.IsNaN(x[i]) || math.IsNaN(y[i]) || math.IsInf(x[i], 0) || math.IsInf(y[i], 0) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: x[i], Y: y[i]})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Save writes the chart as dir/base.png and dir/base.svg and returns the two
// paths. A chart without data returns ErrEmpty and writes nothing.
func (c *Chart) Save(dir, base string) (png, svg string, err error) {
	p, err := c.build()
	if err != nil {
		return "", "", err
	}
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 720
	}
	if h <= 0 {
		h = 320
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("report: %w", err)
	}
	png = filepath.Join(dir, base+".png")
	svg = filepath.Join(dir, base+".svg")
	for _, f := range []string{png, svg} {
		if err := p.Save(vg.Points(w), vg.Points(h), f); err != nil {
			return "", "", fmt.Errorf("report: save chart %s: %w", f, err)
		}
	}
	return png, svg, nil
}
