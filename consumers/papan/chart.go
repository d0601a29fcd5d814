package papan

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart is the geometry of a city's year as an SVG drawing: cumulative
// activations, last year's curve, and the line of the target's pace from
// nothing on 1 January to the target on 31 December. Coordinates are in the
// SVG's user units; the template only draws them.
type Chart struct {
	Width, Height            float64
	Left, Top, Right, Bottom float64 // the plot area
	Current, LastYear, Pace  string  // polyline points "x,y x,y ..."
	TargetY, AsOfX           float64
	XTicks, YTicks           []Tick
}

// Tick is an axis label at a position along its axis.
type Tick struct {
	Pos   float64
	Label string
}

var shortMonths = map[Lang][12]string{
	Indonesian: {"Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"},
	English:    {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
}

func daysIn(year int) int { return time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC).YearDay() }

// BuildChart lays out cur (this year's cumulative counts up to asOf) and
// last (last year's, may be empty) against target.
func BuildChart(cur, last []Point, target uint64, asOf time.Time, l Lang) Chart {
	c := Chart{Width: 720, Height: 320, Left: 64, Top: 16, Right: 704, Bottom: 288}
	year := asOf.Year()
	top := float64(target)
	for _, series := range [][]Point{cur, last} {
		for _, p := range series {
			top = max(top, float64(p.Count))
		}
	}
	step := niceStep(top / 4)
	yMax := step * math.Ceil(top*1.05/step)
	days := float64(daysIn(year))
	x := func(dayOfYear float64) float64 { return c.Left + (c.Right-c.Left)*dayOfYear/days }
	y := func(count float64) float64 { return c.Bottom - (c.Bottom-c.Top)*count/yMax }
	xLast := func(dayOfYear float64) float64 { return c.Left + (c.Right-c.Left)*dayOfYear/float64(daysIn(year-1)) }

	c.Current = curve(cur, float64(asOf.YearDay()), x, y)
	if len(last) > 0 {
		c.LastYear = curve(last, float64(daysIn(year-1)), xLast, y)
	}
	c.Pace = points([][2]float64{{x(0), y(0)}, {x(days), y(float64(target))}})
	c.TargetY = y(float64(target))
	c.AsOfX = x(float64(asOf.YearDay()))
	for m := range 12 {
		first := time.Date(year, time.Month(m+1), 1, 0, 0, 0, 0, time.UTC)
		c.XTicks = append(c.XTicks, Tick{Pos: x(float64(first.YearDay() - 1)), Label: shortMonths[l][m]})
	}
	for v := 0.0; v <= yMax+step/2; v += step {
		c.YTicks = append(c.YTicks, Tick{Pos: y(v), Label: FormatInt(int64(v), l)})
	}
	return c
}

// curve steps through the end-of-day counts: flat through days without
// activations, up on a day with some, flat again until end (a day of year).
func curve(series []Point, end float64, x, y func(float64) float64) string {
	pts := [][2]float64{{x(0), y(0)}}
	prev := 0.0
	for _, p := range series {
		d := float64(p.Day.YearDay())
		pts = append(pts, [2]float64{x(d - 1), y(prev)}, [2]float64{x(d), y(float64(p.Count))})
		prev = float64(p.Count)
	}
	return points(append(pts, [2]float64{x(end), y(prev)}))
}

func points(pts [][2]float64) string {
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(p[0], 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(p[1], 'f', 1, 64))
	}
	return b.String()
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten, so axis labels
// read 0, 20.000, 40.000 rather than 0, 16.950, 33.901.
func niceStep(raw float64) float64 {
	if raw <= 1 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}
