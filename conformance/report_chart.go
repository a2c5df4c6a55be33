package conformance

import (
	"fmt"
	"strconv"
	"strings"
)

// Line charts of a check's measurements, drawn as SVG by the HTML report:
// LEAK's readings round after round against the baseline, and CONC-2's
// connections over time.

type chart struct {
	Title                  string
	Width, Height          int
	Left, Right, Top, Base int // the plot area
	Series                 []chartSeries
	XTicks, YTicks         []chartTick
	XLabel                 string
}

type chartSeries struct {
	Name, Class string
	Points      string // polyline
	Dots        []chartTick
	BaseY       int // the series' baseline (dashed), when HasBase
	HasBase     bool
	LegendY     int
}

type chartTick struct {
	Pos, Y int
	Label  string
}

const (
	chartW, chartH = 460, 200
	chartLeft      = 44
	chartRight     = chartW - 110 // the legend is right of the plot
	chartTop       = 24
	chartBase      = chartH - 30
)

type chartData struct {
	name, class string
	ys          []float64
	baseline    bool // draw ys[0] as a dashed line across
}

// lineChart scales xs and every series to the plot area, y from 0.
func lineChart(title, xLabel string, xs []float64, xTicks []chartTick, data []chartData) chart {
	c := chart{Title: title, Width: chartW, Height: chartH, Left: chartLeft, Right: chartRight, Top: chartTop, Base: chartBase, XLabel: xLabel}
	xmin, xmax := xs[0], xs[len(xs)-1]
	if xmax <= xmin {
		xmax = xmin + 1
	}
	ymax := 1.0
	for _, d := range data {
		for _, y := range d.ys {
			ymax = max(ymax, y)
		}
	}
	ymax = niceCeil(ymax)
	px := func(x float64) int { return chartLeft + int((x-xmin)/(xmax-xmin)*float64(chartRight-chartLeft)+0.5) }
	py := func(y float64) int { return chartBase - int(y/ymax*float64(chartBase-chartTop)+0.5) }
	for _, t := range xTicks {
		c.XTicks = append(c.XTicks, chartTick{Pos: px(float64(t.Pos)), Label: t.Label})
	}
	if xTicks == nil {
		for _, x := range []float64{xmin, (xmin + xmax) / 2, xmax} {
			c.XTicks = append(c.XTicks, chartTick{Pos: px(x), Label: strconv.FormatFloat(x, 'f', 2, 64)})
		}
	}
	for _, y := range []float64{0, ymax / 2, ymax} {
		c.YTicks = append(c.YTicks, chartTick{Pos: py(y), Label: strconv.FormatFloat(y, 'f', -1, 64)})
	}
	for i, d := range data {
		s := chartSeries{Name: d.name, Class: d.class, LegendY: chartTop + 6 + i*16}
		var pts []string
		for j, y := range d.ys {
			pts = append(pts, fmt.Sprintf("%d,%d", px(xs[j]), py(y)))
			if len(d.ys) <= 16 {
				s.Dots = append(s.Dots, chartTick{Pos: px(xs[j]), Y: py(y), Label: fmt.Sprintf("%s: %v", d.name, y)})
			}
		}
		s.Points = strings.Join(pts, " ")
		if d.baseline && len(d.ys) > 0 {
			s.HasBase, s.BaseY = true, py(d.ys[0])
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// roundsChart draws LEAK's readings: at rest before the rounds (the dashed
// baselines), then after each round.
func roundsChart(rs []Reading) chart {
	xs := make([]float64, len(rs))
	var ticks []chartTick
	series := []chartData{{name: "descriptors", class: "s0", baseline: true}, {name: "threads", class: "s1", baseline: true},
		{name: "children", class: "s2", baseline: true}, {name: "zombies", class: "s3", baseline: true}}
	goroutines := chartData{name: "goroutines", class: "s4", baseline: true}
	anyGoroutines := false
	for i, r := range rs {
		xs[i] = float64(i)
		label := strconv.Itoa(r.Connections)
		if i == 0 {
			label = "before"
		}
		ticks = append(ticks, chartTick{Pos: i, Label: label})
		for j, v := range []int{r.FDs, r.Threads, r.Children, r.Zombies} {
			series[j].ys = append(series[j].ys, float64(v))
		}
		goroutines.ys = append(goroutines.ys, float64(r.Goroutines))
		anyGoroutines = anyGoroutines || r.Goroutines > 0
	}
	if anyGoroutines {
		series = append(series, goroutines)
	}
	return lineChart("the server at rest, round after round (dashed: before the rounds)", "connections served", xs, ticks, series)
}

// concurrencyChart draws CONC-2: connections opened, accepted and served
// over the check's time.
func concurrencyChart(ss []ConcSample) chart {
	xs := make([]float64, len(ss))
	series := []chartData{{name: "open", class: "s0"}, {name: "accepted", class: "s1"}, {name: "served", class: "s2"}}
	for i, s := range ss {
		xs[i] = s.At.Seconds()
		for j, v := range []int{s.Open, s.Accepted, s.Served} {
			series[j].ys = append(series[j].ys, float64(v))
		}
	}
	return lineChart("connections held open at once, over time", "seconds since the check started", xs, nil, series)
}
