package papan

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestAxisStepsAreOneTwoOrFiveTimesAPowerOfTen(t *testing.T) {
	for raw, want := range map[float64]float64{0: 1, 0.5: 1, 1: 1, 3: 5, 7: 10, 12: 20, 16950: 20000, 25000: 50000, 60000: 100000} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}

func TestTheChartsPaceLineRunsFromNothingToTheTargetAtYearEnd(t *testing.T) {
	c := BuildChart(nil, nil, 1000, day(2023, 7, 1), Indonesian)
	want := "64.0,288.0 704.0," + strings.Split(c.Pace, ",")[2]
	if c.Pace != want {
		t.Fatalf("pace %q, want %q", c.Pace, want)
	}
	if c.TargetY <= c.Top || c.TargetY >= c.Bottom {
		t.Errorf("target at y %v, outside the plot %v..%v", c.TargetY, c.Top, c.Bottom)
	}
	if c.AsOfX <= (c.Left+c.Right)/2-5 || c.AsOfX >= (c.Left+c.Right)/2+5 {
		t.Errorf("1 July at x %v, want about the middle %v", c.AsOfX, (c.Left+c.Right)/2)
	}
	if c.Current != "64.0,288.0 "+formatX(c.AsOfX)+",288.0" {
		t.Errorf("no activations: curve %q, want flat zero up to the day", c.Current)
	}
	if c.LastYear != "" {
		t.Errorf("no last year, but a curve %q", c.LastYear)
	}
}

func formatX(x float64) string { return strings.Split(points([][2]float64{{x, 0}}), ",")[0] }

func TestTheCurveStepsUpOnDaysWithActivationsAndHoldsUntilTheDay(t *testing.T) {
	cur := []Point{{day(2023, 1, 10), 100}, {day(2023, 2, 1), 400}}
	c := BuildChart(cur, []Point{{day(2022, 6, 1), 900}}, 1000, day(2023, 3, 1), English)
	pts := strings.Fields(c.Current)
	if len(pts) != 6 {
		t.Fatalf("curve %q: want origin, two steps of two points, and the hold", c.Current)
	}
	var ys []float64
	for _, p := range pts {
		ys = append(ys, parseY(t, p))
	}
	if !slices.IsSortedFunc(ys, func(a, b float64) int { return int(b - a) }) {
		t.Errorf("cumulative curve goes down: y %v", ys)
	}
	if ys[5] != ys[4] || pts[5] != formatX(c.AsOfX)+","+strings.Split(pts[4], ",")[1] {
		t.Errorf("curve does not hold its last count until the day: %q", c.Current)
	}
	if c.LastYear == "" || !strings.HasSuffix(c.LastYear, "704.0,"+strings.Split(strings.Fields(c.LastYear)[2], ",")[1]) {
		t.Errorf("last year's curve %q does not hold to its year's end", c.LastYear)
	}
	if got := c.XTicks[4].Label; got != "May" {
		t.Errorf("fifth month %q, want May", got)
	}
	labels := []string{}
	for _, tk := range c.YTicks {
		labels = append(labels, tk.Label)
	}
	if !slices.Equal(labels, []string{"0", "500", "1,000", "1,500"}) {
		t.Errorf("y labels %v", labels)
	}
}

func parseY(t *testing.T, p string) float64 {
	t.Helper()
	_, ys, _ := strings.Cut(p, ",")
	var y float64
	for _, ch := range ys {
		if ch == '.' {
			break
		}
		y = y*10 + float64(ch-'0')
	}
	return y
}
