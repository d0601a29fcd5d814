package papan_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
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
