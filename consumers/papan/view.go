package papan

import (
	"strings"
	"time"
)

// page is what a template draws; every figure is already written in the
// page's language.
type page struct {
	Lang        Lang
	L           map[string]string
	Title       string
	Path        string
	Home        string // the national page, date and language kept
	Sort        string
	Date        string // the as-of day, YYYY-MM-DD, for the date input
	Today       string // its maximum
	DayText     string
	IsToday     bool
	OtherLang   string // the same page in the other language
	Crumbs      []crumb
	Headline    *figures
	Board       *board
	Chart       *Chart
	HasLastYear bool
	Year        int // the as-of day's year, and the one before
	LastYear    int
	ShowAlerts  bool
	Alerts      []alertRow
	Health      *health
	Problem     string
}

type crumb struct{ Name, Href string }

type health struct{ Status, Text, Newest string }

// figures are one region's numbers as shown.
type figures struct {
	Name, Code                                  string
	Activated, Target, Attainment, Expected     string
	Gap, GapWord, Pace, PaceClass, Alert, Level string
	Enrolled, LastActivation                    string
	Bar, PaceMark                               float64 // percent widths for the progress bar
}

type board struct {
	Title   string
	Hint    string
	Columns []column
	Rows    []row
}

type column struct {
	Key, Title, Href, Arrow string
	Numeric                 bool
}

type row struct {
	figures
	Href   string
	Behind bool
	// CitiesFiring, on the nation's board, says how many of a province's
	// cities have an alert firing ("+3 kab/kota"), empty when none.
	CitiesFiring string
}

type alertRow struct {
	When, Rule, Severity, SeverityKey, State, StateKey, Message string
}

func newPage(req request, path string) *page {
	p := &page{
		Lang: req.lang, L: labels[req.lang], Path: path,
		Date: req.day.Format(time.DateOnly), Today: req.today.Format(time.DateOnly),
		DayText: FormatDate(req.day, req.lang), IsToday: req.day.Equal(req.today),
	}
	other := req
	other.lang = English
	if req.lang == English {
		other.lang = Indonesian
	}
	p.OtherLang = other.link(path, req.sort)
	p.Home, p.Sort = req.link("/", ""), req.sort
	p.Year, p.LastYear = req.day.Year(), req.day.Year()-1
	return p
}

// figures writes r's numbers in the page's language.
func (p *page) figures(r Region, detailed bool) *figures {
	l := p.L
	f := &figures{
		Name: r.Name, Code: r.Code,
		Activated:  FormatInt(int64(r.Activated), p.Lang),
		Target:     FormatInt(int64(r.Target), p.Lang),
		Attainment: FormatPct(r.AttainmentPct, p.Lang),
		Expected:   FormatPct(r.ExpectedPct, p.Lang),
		Alert:      l["none"],
		Bar:        min(r.AttainmentPct, 100),
		PaceMark:   min(r.ExpectedPct, 100),
	}
	gap := r.PaceGap()
	switch {
	case r.Target == 0:
		f.Gap, f.Pace, f.PaceClass = l["none"], l["no_target"], "none"
	case gap > 0:
		f.Gap, f.GapWord = FormatInt(gap, p.Lang), l["short"]
	default:
		f.Gap, f.GapWord = FormatInt(-gap, p.Lang), l["ahead"]
	}
	if r.Target > 0 {
		f.Pace, f.PaceClass = l["on_pace"], "ok"
		if r.BehindPace {
			f.Pace, f.PaceClass = l["behind"], "behind"
		}
	}
	if r.Alert != "" {
		f.Alert, f.Level = l[r.Alert], r.Alert
	}
	if detailed {
		f.Enrolled = FormatInt(int64(r.Enrolled), p.Lang)
		f.LastActivation = FormatTime(r.LastActivation, p.Lang)
	}
	return f
}

// board sorts regions as the request asks and writes them, each linking to
// linkBase+code.
func (p *page) board(req request, title, linkBase string, regions []Region, firing map[string]string) *board {
	for i := range regions {
		regions[i].Alert = firing[regions[i].Code]
	}
	key, desc := ParseSort(req.sort)
	SortRegions(regions, key, desc)
	b := &board{Title: title, Hint: p.L["sort_hint"]}
	for _, c := range []struct {
		key, label string
		numeric    bool
	}{
		{SortName, "region", false}, {SortActivated, "activated", true}, {SortTarget, "target", true},
		{SortAttainment, "attainment", true}, {SortExpected, "expected", true}, {SortGap, "gap", true},
		{SortPace, "pace", false}, {SortAlert, "alert", false},
	} {
		col := column{Key: c.key, Title: p.L[c.label], Href: req.link(p.Path, NextSort(req.sort, c.key)), Numeric: c.numeric}
		if c.key == key {
			col.Arrow = "▲"
			if desc {
				col.Arrow = "▼"
			}
		}
		b.Columns = append(b.Columns, col)
	}
	for _, r := range regions {
		rw := row{figures: *p.figures(r, false), Href: req.link(linkBase+r.Code, ""), Behind: r.BehindPace}
		if n := CitiesFiring(firing, r.Code); n > 0 && provinceCode.MatchString(r.Code) {
			rw.CitiesFiring = "+" + FormatInt(int64(n), p.Lang) + " " + p.L["cities_short"]
		}
		b.Rows = append(b.Rows, rw)
	}
	return b
}

// CitiesFiring counts the cities of province among the regions firing.
func CitiesFiring(firing map[string]string, province string) int {
	n := 0
	for code := range firing {
		if strings.HasPrefix(code, province+".") {
			n++
		}
	}
	return n
}

func (p *page) alertRows(alerts []AlertEvent) []alertRow {
	var out []alertRow
	for _, a := range alerts {
		out = append(out, alertRow{
			When: FormatTime(a.At, p.Lang), Rule: orKey(p.L, a.Rule), Severity: orKey(p.L, a.Severity), SeverityKey: a.Severity,
			State: orKey(p.L, a.State), StateKey: a.State, Message: a.Message,
		})
	}
	return out
}

// orKey is the label of key, or key itself for one the page does not know
// (a rule added to the alerter later, say).
func orKey(l map[string]string, key string) string {
	if v, ok := l[key]; ok {
		return v
	}
	return key
}
