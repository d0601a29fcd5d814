package papan_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ikd-pipeline/ikd/consumers/papan"
)

// browser starts a headless Chromium for one test. Without one the test
// fails in CI (CI=true) and is skipped elsewhere with the command that
// installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium on this machine: `make deps` installs Debian's chromium package")
		}
		t.Skip("no Chromium on this machine: run `make deps` (Debian's chromium package) to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// artefacts is where screenshots go: $IKD_ARTIFACTS, else a directory kept
// after the test, logged either way.
func artefacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("IKD_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ikd-papan-screenshots-"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// open loads url and waits for the page to be drawn.
func open(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("footer")))
}

// shot saves the whole page at desktop (1280 px) and phone (390 px, mobile)
// widths as name-desktop.png and name-phone.png.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	for _, v := range []struct {
		suffix string
		width  int64
		height int64
		opts   []chromedp.EmulateViewportOption
	}{
		{"desktop", 1280, 900, nil},
		{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait}},
	} {
		do(t, ctx, chromedp.EmulateViewport(v.width, v.height, v.opts...), chromedp.WaitVisible(chromedp.CSS("footer")))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name+"-"+v.suffix+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", file)
	}
	do(t, ctx, chromedp.EmulateViewport(1280, 900))
}

// shown is a board's rows as the browser displays them: code, then the text
// of each cell by column.
type shown struct {
	Code  string            `json:"code"`
	Cells map[string]string `json:"cells"`
}

func board(t *testing.T, ctx context.Context) []shown {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll('#board tbody tr')].map(tr => ({
		code: tr.dataset.code,
		cells: Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.col, td.innerText.trim()])),
	})))`))
	if err != nil {
		t.Fatal(err)
	}
	var rows []shown
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById(`+strconv.Quote(id)+`) || {innerText: ""}).innerText.trim()`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// number reads an Indonesian integer as displayed: 12.393.
func number(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.ReplaceAll(s, ".", ""), 10, 64)
	if err != nil {
		t.Fatalf("displayed number %q: %v", s, err)
	}
	return n
}

// percent reads an Indonesian percentage as displayed: 18,28 %.
func percent(t *testing.T, s string) float64 {
	t.Helper()
	v := strings.ReplaceAll(strings.TrimSuffix(s, " %"), ".", "")
	x, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
	if err != nil {
		t.Fatalf("displayed percentage %q: %v", s, err)
	}
	return x
}

// checkBoard compares every displayed row with the view's row for its code,
// and the order with the default one: the worst behind pace first.
func checkBoard(t *testing.T, rows []shown, want map[string]papan.Region, alerts map[string]string) {
	t.Helper()
	if len(rows) != len(want) {
		t.Fatalf("%d rows displayed, the view has %d", len(rows), len(want))
	}
	var order []papan.Region
	for _, r := range rows {
		w, ok := want[r.Code]
		if !ok {
			t.Errorf("row %s is not in the view", r.Code)
			continue
		}
		order = append(order, w)
		if got := number(t, r.Cells["activated"]); got != w.Activated {
			t.Errorf("%s activated: shown %d, view %d", r.Code, got, w.Activated)
		}
		if got := number(t, r.Cells["target"]); got != w.Target {
			t.Errorf("%s target: shown %d, view %d", r.Code, got, w.Target)
		}
		if got := percent(t, r.Cells["attainment"]); got != w.AttainmentPct {
			t.Errorf("%s attainment: shown %v, view %v", r.Code, got, w.AttainmentPct)
		}
		if got := percent(t, r.Cells["expected"]); got != w.ExpectedPct {
			t.Errorf("%s expected: shown %v, view %v", r.Code, got, w.ExpectedPct)
		}
		if w.Target > 0 {
			gap := w.PaceGap()
			word := "kurang"
			if gap <= 0 {
				gap, word = -gap, "lebih"
			}
			if want := papan.FormatInt(gap, papan.Indonesian) + " " + word; r.Cells["gap"] != want {
				t.Errorf("%s gap: shown %q, want %q", r.Code, r.Cells["gap"], want)
			}
		}
		wantAlert := map[string]string{"": "–", "warning": "peringatan", "critical": "kritis"}[alerts[r.Code]]
		if n := papan.CitiesFiring(alerts, r.Code); n > 0 && len(r.Code) == 2 {
			wantAlert += " +" + strconv.Itoa(n) + " kab/kota"
		}
		if r.Cells["alert"] != wantAlert {
			t.Errorf("%s alert: shown %q, want %q", r.Code, r.Cells["alert"], wantAlert)
		}
	}
	sorted := append([]papan.Region(nil), order...)
	papan.SortRegions(sorted, papan.SortPace, false)
	for i := range order {
		if order[i].Code != sorted[i].Code {
			t.Fatalf("row %d is %s, want %s: not the worst behind pace first", i, order[i].Code, sorted[i].Code)
		}
	}
	if d := sorted[0].PaceDelta(); sorted[0].Target > 0 && d > sorted[len(sorted)-1].PaceDelta() && sorted[len(sorted)-1].Target > 0 {
		t.Errorf("first row is ahead of the last")
	}
}

func regions(t *testing.T, rows map[string]viewRow) map[string]papan.Region {
	t.Helper()
	out := map[string]papan.Region{}
	for code, r := range rows {
		out[code] = papan.Region{Code: code, Activated: r.Activated, Target: r.Target, AttainmentPct: r.AttainmentPct, ExpectedPct: r.Expected, BehindPace: r.Behind}
	}
	return out
}

func TestTheBrowserShowsTheViewsFiguresForTheNationAProvinceAndACityAsOfAnyDay(t *testing.T) {
	f := newFixture(t)
	ctx := browser(t)
	dir := artefacts(t)

	// The nation: the headline against its own target, then 38 provinces.
	open(t, ctx, f.url+"/")
	provinces := regions(t, f.view(t, "province", f.today, ""))
	if len(provinces) != 38 {
		t.Fatalf("the view has %d provinces", len(provinces))
	}
	var activated uint64
	for _, p := range provinces {
		activated += p.Activated
	}
	if got := number(t, text(t, ctx, "headline-activated")); got != activated {
		t.Errorf("national activated: shown %d, the provinces' sum %d", got, activated)
	}
	if got := number(t, text(t, ctx, "headline-target")); got != 5000 {
		t.Errorf("national target: shown %d, the nation's own row says 5000", got)
	}
	if got, want := percent(t, text(t, ctx, "headline-attainment")), papan.AttainmentPct(activated, 5000); got != want {
		t.Errorf("national attainment: shown %v, want %v", got, want)
	}
	checkBoard(t, board(t, ctx), provinces, map[string]string{"17": "critical", "17.71": "warning"})
	if got := text(t, ctx, "health-status"); got != "sehat" {
		t.Errorf("pipeline health %q, want sehat (events counted a moment ago)", got)
	}
	shot(t, ctx, dir, "national")

	// A column title sorts by it, in the address too.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`th[data-col="activated"] a`))); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/?sort=activated") {
		t.Errorf("sorted by activated at %s", loc)
	}
	var previous uint64
	for i, r := range board(t, ctx) {
		if n := number(t, r.Cells["activated"]); i > 0 && n < previous {
			t.Fatalf("row %d (%s) has %d activated after %d: not sorted by activated", i, r.Code, n, previous)
		} else {
			previous = n
		}
	}

	// A province, reached by its link: its cities.
	do(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-code="17"] a`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-code="17.71"]`)))
	cities := regions(t, f.view(t, "city", f.today, "AND province_code = '17'"))
	checkBoard(t, board(t, ctx), cities, map[string]string{"17.71": "warning"})
	if got, want := number(t, text(t, ctx, "headline-target")), provinces["17"].Target; got != want {
		t.Errorf("Bengkulu's target: shown %d, view %d", got, want)
	}
	shot(t, ctx, dir, "province")

	// A city: its figures, its chart, its alerts.
	do(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-code="17.71"] a`)), chromedp.WaitVisible(chromedp.CSS("#chart-current")))
	checkCity(t, ctx, f.view(t, "city", f.today, "AND city_code = '17.71'")["17.71"], 1)
	if got := text(t, ctx, "headline-alert"); got != "peringatan" {
		t.Errorf("city alert %q, want peringatan (projection firing)", got)
	}
	shot(t, ctx, dir, "city")

	// The date picker: the city as it stood on the last day of last year.
	do(t, ctx, chromedp.SetValue(chromedp.ID("date"), f.lastDay.Format(time.DateOnly)))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("show"))); err != nil {
		t.Fatal(err)
	}
	loc, err = chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loc, "/kota/17.71?date="+f.lastDay.Format(time.DateOnly)) {
		t.Errorf("after the date picker the address is %s: the date must be in it, to share", loc)
	}
	if got, want := text(t, ctx, "as-of-day"), papan.FormatDate(f.lastDay, papan.Indonesian); got != want {
		t.Errorf("as-of day shown %q, want %q", got, want)
	}
	past := f.view(t, "city", f.lastDay, "AND city_code = '17.71'")["17.71"]
	if past.Activated != 40 || past.Expected != 100 {
		t.Fatalf("fixture: last year's view %+v", past)
	}
	checkCity(t, ctx, past, 3)
	shot(t, ctx, dir, "city-last-year")

	// The nation on that day, in English, from the shared link.
	open(t, ctx, f.url+"/?lang=en&date="+f.lastDay.Format(time.DateOnly))
	if got := text(t, ctx, "headline-activated"); got != papan.FormatInt(65, papan.English) {
		t.Errorf("the nation on %s in English: activated %q, want 65", f.lastDay.Format(time.DateOnly), got)
	}
	if got := text(t, ctx, "headline-expected"); got != "100.00 %" {
		t.Errorf("expected pace of a past year %q, want 100.00 %%", got)
	}
}

// checkCity compares the city page with the view's row and counts its alert
// transitions up to the day.
func checkCity(t *testing.T, ctx context.Context, want viewRow, alerts int) {
	t.Helper()
	if got := number(t, text(t, ctx, "headline-activated")); got != want.Activated {
		t.Errorf("city activated: shown %d, view %d", got, want.Activated)
	}
	if got := number(t, text(t, ctx, "headline-target")); got != want.Target {
		t.Errorf("city target: shown %d, view %d", got, want.Target)
	}
	if got := percent(t, text(t, ctx, "headline-attainment")); got != want.AttainmentPct {
		t.Errorf("city attainment: shown %v, view %v", got, want.AttainmentPct)
	}
	if got := percent(t, text(t, ctx, "headline-expected")); got != want.Expected {
		t.Errorf("city expected: shown %v, view %v", got, want.Expected)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#alerts tbody tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	if n != alerts {
		t.Errorf("%d alert transitions shown, want %d", n, alerts)
	}
	pts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById('chart-current').points.length`))
	if err != nil {
		t.Fatal(err)
	}
	if want.Activated > 0 && pts < 3 {
		t.Errorf("the chart's curve has %d points for %d activations", pts, want.Activated)
	}
}
