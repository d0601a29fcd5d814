package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/consumers/papan"
)

// pageLatency serves the attainment board from conn, as ikd-papan does, and
// times its three kinds of page as of day over HTTP, one warm-up each.
func pageLatency(ctx context.Context, conn driver.Conn, day string, runs int) ([]Row, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := papan.New(papan.DefaultConfig(), conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = srv.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()
	var rows []Row
	for _, p := range []struct{ name, path string }{
		{"national", "/?date=" + day},
		{"province", "/provinsi/17?date=" + day},
		{"city", "/kota/17.71?date=" + day},
	} {
		var lat []time.Duration
		for i := range runs + 1 {
			t0 := time.Now()
			if err := getPage(ctx, base+p.path); err != nil {
				return rows, err
			}
			if i > 0 {
				lat = append(lat, time.Since(t0))
			}
		}
		p95 := percentile(lat, 0.95)
		rows = append(rows,
			Row{Step: "6 page p50: " + p.name + " " + p.path, Figure: ms(percentile(lat, 0.5)), Unit: "ms", Goal: "-", Met: "-",
				Note: fmt.Sprintf("%d loads after one warm-up, the whole page over HTTP", len(lat))},
			Row{Step: "6 page p95: " + p.name, Figure: ms(p95), Unit: "ms", Goal: "< 1000 ms", Met: yesNo(p95 < time.Second)})
		log.Printf("step 6: page %s p50 %s p95 %s", p.path, percentile(lat, 0.5), p95)
	}
	return rows, nil
}

func getPage(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("page %s: %w", url, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("page %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("page %s: %s", url, resp.Status)
	}
	return nil
}
