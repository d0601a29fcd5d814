package papan_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ikd-pipeline/ikd/consumers/papan"
)

func papanParams(day time.Time) context.Context {
	return clickhouse.Context(context.Background(), clickhouse.WithParameters(map[string]string{
		"day": day.Format(time.DateOnly), "year": strconv.Itoa(day.Year()),
	}))
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestPagesAnswerAndRefuseWhatIsNotARegionOrADate(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/", 200, "Bengkulu"},
		{"/?lang=en", 200, "Provinces"},
		{"/provinsi/17", 200, "Kota Bengkulu"},
		{"/kota/17.71", 200, "Riwayat peringatan"},
		{"/kota/17.71?lang=en&date=" + f.lastDay.Format(time.DateOnly), 200, "Alert history"},
		{"/provinsi/99", 404, "Wilayah tidak ditemukan"},
		{"/kota/17.99", 404, "Wilayah tidak ditemukan"},
		{"/kota/17.71'%20OR%201=1", 404, "Wilayah tidak ditemukan"},
		{"/provinsi/17?date=13-02-2023", 400, "Tanggal tidak sah"},
		{"/?date=2999-01-01", 200, "hari ini"},
	} {
		status, body := get(t, f.url+tc.path)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want %d with %q:\n%.2000s", tc.path, status, tc.status, tc.want, body)
		}
	}
}

// shownFigure is the text of the element with id in a page's HTML.
func shownFigure(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the page", id)
	}
	return strings.TrimSpace(m[1])
}

func TestAProvincesOwnFiguresAreTheProvinceViews(t *testing.T) {
	f := newFixture(t)
	provinces := f.view(t, "province", f.today, "")
	// 17 has its own target row, 18 none (25 % of the year's enrolments,
	// baseline 0), 31 none and no enrolments.
	for _, code := range []string{"17", "18", "31"} {
		_, body := get(t, f.url+"/provinsi/"+code)
		want := provinces[code]
		for id, value := range map[string]string{
			"headline-activated":  papan.FormatInt(int64(want.Activated), papan.Indonesian),
			"headline-target":     papan.FormatInt(int64(want.Target), papan.Indonesian),
			"headline-attainment": papan.FormatPct(want.AttainmentPct, papan.Indonesian),
			"headline-expected":   papan.FormatPct(want.Expected, papan.Indonesian),
		} {
			if got := shownFigure(t, body, id); got != value {
				t.Errorf("province %s %s: shown %q, the view gives %q", code, id, got, value)
			}
		}
	}
}
