package warehouse_test

// The conformance suite for the warehouse front: what the pipeline asks of
// ClickHouse, asked through clickhouse-go/v2. It runs against the embedded
// engine, and against a real server when IKD_CLICKHOUSE_DSN names one.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func connect(t *testing.T) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := warehouse.Open(ctx, testenv.WarehouseDSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func exec(t *testing.T, conn driver.Conn, sql string) {
	t.Helper()
	if err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// freshTable creates a table of every column type the project uses.
func freshTable(t *testing.T, conn driver.Conn, name string) string {
	exec(t, conn, "CREATE DATABASE IF NOT EXISTS conformance")
	table := "conformance." + name
	exec(t, conn, "DROP TABLE IF EXISTS "+table)
	exec(t, conn, `CREATE TABLE `+table+` (
		id UInt64, u8 UInt8, u16 UInt16, u32 UInt32, i64 Int64, f64 Float64, ok Bool,
		s String, lc LowCardinality(String), fs FixedString(4), d Date, dt DateTime('UTC'),
		ts DateTime64(3, 'UTC'), uid UUID, tags Array(String), note Nullable(String)
	) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100`)
	return table
}

type row struct {
	ID   uint64
	U8   uint8
	U16  uint16
	U32  uint32
	I64  int64
	F64  float64
	OK   bool
	S    string
	LC   string
	FS   string
	D    time.Time
	DT   time.Time
	TS   time.Time
	UID  uuid.UUID
	Tags []string
	Note *string
}

func rowFor(i int) row {
	base := time.Date(2023, 2, 13, 2, 30, 0, 0, time.UTC)
	var note *string
	if i%3 == 0 {
		n := fmt.Sprintf("note %d, with 'quotes' and\ttabs", i)
		note = &n
	}
	return row{
		ID: uint64(i), U8: uint8(i), U16: uint16(i), U32: uint32(i), I64: -int64(i) * 1_000_000_007,
		F64: float64(i) / 7, OK: i%2 == 0, S: fmt.Sprintf("resident-%08d-ü", i), LC: []string{"counter", "outreach"}[i%2],
		FS: fmt.Sprintf("%04d", i%10000), D: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%365),
		DT: base.Add(time.Duration(i) * time.Second), TS: base.Add(time.Duration(i) * time.Millisecond),
		UID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint(i))), Tags: []string{"a", fmt.Sprint(i)}[:1+i%2], Note: note,
	}
}

func insertRows(t *testing.T, ctx context.Context, conn driver.Conn, table string, from, n int) {
	t.Helper()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		r := rowFor(i)
		if err := batch.Append(r.ID, r.U8, r.U16, r.U32, r.I64, r.F64, r.OK, r.S, r.LC, r.FS, r.D, r.DT, r.TS, r.UID, r.Tags, r.Note); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send %d rows: %v", n, err)
	}
}

func TestBatchesOfEveryColumnTypeReadBackEqual(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	for _, n := range []int{1, 2, 1000, 100_000, 1_000_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			table := freshTable(t, conn, fmt.Sprintf("types_%d", n))
			insertRows(t, ctx, conn, table, 0, n)
			var count uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != uint64(n) {
				t.Fatalf("count: got %d want %d", count, n)
			}
			rows, err := conn.Query(ctx, "SELECT * FROM "+table+" ORDER BY id")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			i := 0
			for rows.Next() {
				var got row
				if err := rows.Scan(&got.ID, &got.U8, &got.U16, &got.U32, &got.I64, &got.F64, &got.OK, &got.S, &got.LC, &got.FS, &got.D, &got.DT, &got.TS, &got.UID, &got.Tags, &got.Note); err != nil {
					t.Fatal(err)
				}
				if want := rowFor(i); !equalRows(got, want) {
					t.Fatalf("row %d:\n got %+v\nwant %+v", i, got, want)
				}
				i++
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if i != n {
				t.Fatalf("read %d rows, want %d", i, n)
			}
		})
	}
}

func equalRows(a, b row) bool {
	if (a.Note == nil) != (b.Note == nil) || (a.Note != nil && *a.Note != *b.Note) {
		return false
	}
	return a.ID == b.ID && a.U8 == b.U8 && a.U16 == b.U16 && a.U32 == b.U32 && a.I64 == b.I64 &&
		a.F64 == b.F64 && a.OK == b.OK && a.S == b.S && a.LC == b.LC && a.FS == b.FS &&
		a.D.Equal(b.D) && a.DT.Equal(b.DT) && a.TS.Equal(b.TS) && a.UID == b.UID &&
		strings.Join(a.Tags, ",") == strings.Join(b.Tags, ",")
}

func TestQueryParametersAreBound(t *testing.T) {
	conn := connect(t)
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{
		"city": "17.71", "n": "41", "day": "2023-02-13",
	}))
	var city string
	var n uint64
	var day time.Time
	if err := conn.QueryRow(ctx, "SELECT {city:String}, {n:UInt64} + 1, {day:Date}").Scan(&city, &n, &day); err != nil {
		t.Fatal(err)
	}
	if city != "17.71" || n != 42 || day.Format(time.DateOnly) != "2023-02-13" {
		t.Fatalf("got %q %d %v", city, n, day)
	}
}

func TestPerQuerySettingsApplyToThatQueryOnly(t *testing.T) {
	conn := connect(t)
	withSetting := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"max_block_size": 1234}))
	var got string
	if err := conn.QueryRow(withSetting, "SELECT toString(getSetting('max_block_size'))").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "1234" {
		t.Fatalf("with setting: got %s", got)
	}
	if err := conn.QueryRow(context.Background(), "SELECT toString(getSetting('max_block_size'))").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got == "1234" {
		t.Fatal("setting leaked into a later query")
	}
}

func TestInsertDeduplicationTokenDropsAnIdenticalRetry(t *testing.T) {
	conn := connect(t)
	table := freshTable(t, conn, "dedup")
	ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": "batch-1-100"}))
	insertRows(t, ctx, conn, table, 0, 100)
	insertRows(t, ctx, conn, table, 0, 100)
	other := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": "batch-101-110"}))
	insertRows(t, other, conn, table, 100, 10)
	var count uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+table).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 110 {
		t.Fatalf("count: got %d want 110", count)
	}
}

func TestConcurrentClientsAllLand(t *testing.T) {
	conn := connect(t)
	table := freshTable(t, conn, "concurrent")
	const clients, each = 8, 5000
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own, err := warehouse.Open(context.Background(), testenv.WarehouseDSN(t), nil)
			if err != nil {
				errs <- err
				return
			}
			defer own.Close()
			batch, err := own.PrepareBatch(context.Background(), "INSERT INTO "+table)
			if err != nil {
				errs <- err
				return
			}
			for i := c * each; i < (c+1)*each; i++ {
				r := rowFor(i)
				if err := batch.Append(r.ID, r.U8, r.U16, r.U32, r.I64, r.F64, r.OK, r.S, r.LC, r.FS, r.D, r.DT, r.TS, r.UID, r.Tags, r.Note); err != nil {
					errs <- err
					return
				}
			}
			var sum uint64
			if err := own.QueryRow(context.Background(), "SELECT sum(number) FROM numbers(1000)").Scan(&sum); err != nil {
				errs <- err
				return
			}
			errs <- batch.Send()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var count, distinct uint64
	if err := conn.QueryRow(context.Background(), "SELECT count(), uniqExact(id) FROM "+table).Scan(&count, &distinct); err != nil {
		t.Fatal(err)
	}
	if count != clients*each || distinct != clients*each {
		t.Fatalf("got %d rows, %d distinct; want %d", count, distinct, clients*each)
	}
}

func TestServerErrorArrivesAsTypedException(t *testing.T) {
	conn := connect(t)
	err := conn.Exec(context.Background(), "SELECT * FROM system.no_such_table")
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		t.Fatalf("want *clickhouse.Exception, got %T: %v", err, err)
	}
	if ex.Code != 60 {
		t.Fatalf("code: got %d want 60 (UNKNOWN_TABLE): %v", ex.Code, ex)
	}
	if f := warehouse.Classify(err); f != warehouse.Setup {
		t.Errorf("an unknown table is the setup's fault, not the rows': classified %v", f)
	}
	err = conn.Exec(context.Background(), "SELEC 1")
	if !errors.As(err, &ex) || ex.Code != 62 {
		t.Fatalf("syntax error: got %v", err)
	}
}

func TestLargeResultsStreamBack(t *testing.T) {
	conn := connect(t)
	rows, err := conn.Query(context.Background(), "SELECT number, toString(number) FROM numbers(2000000)")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n, sum uint64
	for rows.Next() {
		var v uint64
		var s string
		if err := rows.Scan(&v, &s); err != nil {
			t.Fatal(err)
		}
		if s != fmt.Sprint(v) {
			t.Fatalf("row %d: %q", v, s)
		}
		n++
		sum += v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 2_000_000 || sum != 2_000_000*1_999_999/2 {
		t.Fatalf("got %d rows summing %d", n, sum)
	}
}

func TestUnreachableWarehouseIsPassingTrouble(t *testing.T) {
	_, err := warehouse.Open(context.Background(), "http://127.0.0.1:1", nil)
	if f := warehouse.Classify(err); f != warehouse.Passing {
		t.Fatalf("want passing trouble, got %v: %v", f, err)
	}
	if !strings.Contains(err.Error(), "IKD_CLICKHOUSE_DSN") {
		t.Errorf("error should say how to point at a warehouse: %v", err)
	}
}

// The HTTP interface is also what analysts use with curl.
func TestHTTPInterfaceAnswersAnalystsAsClickHouseDoes(t *testing.T) {
	if !testenv.Embedded() {
		t.Skip("checks the embedded front's HTTP interface; IKD_CLICKHOUSE_DSN points elsewhere")
	}
	base := testenv.WarehouseDSN(t)
	get := func(query string, extra string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + "/?query=" + query + extra)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	if _, body := get("SELECT+1,'a'", ""); body != "1\ta\n" {
		t.Errorf("TabSeparated by default: got %q", body)
	}
	if _, body := get("SELECT+1+AS+x", "&default_format=JSONEachRow"); body != "{\"x\":1}\n" {
		t.Errorf("default_format: got %q", body)
	}
	if _, body := get("SELECT+2+AS+y+FORMAT+CSVWithNames", "&default_format=JSONEachRow"); body != "\"y\"\n2\n" {
		t.Errorf("FORMAT clause: got %q", body)
	}
	resp, body := get("SELECT+*+FROM+nowhere.nothing", "")
	if resp.StatusCode != 404 && resp.StatusCode != 500 || resp.Header.Get("X-ClickHouse-Exception-Code") == "" || !strings.HasPrefix(body, "Code: ") {
		t.Errorf("error: status %d code %q body %q", resp.StatusCode, resp.Header.Get("X-ClickHouse-Exception-Code"), body)
	}
	conn := connect(t)
	exec(t, conn, "CREATE DATABASE IF NOT EXISTS conformance")
	exec(t, conn, "DROP TABLE IF EXISTS conformance.targets_csv")
	exec(t, conn, "CREATE TABLE conformance.targets_csv (year UInt16, region_code String, value Float64) ENGINE = MergeTree ORDER BY year")
	post, err := http.Post(base+"/?query=INSERT+INTO+conformance.targets_csv+FORMAT+CSVWithNames", "text/csv",
		strings.NewReader("year,region_code,value\n2023,17.71,67802\n2023,18,25\n"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != 200 {
		t.Fatalf("insert CSVWithNames: status %d", post.StatusCode)
	}
	if _, body := get("SELECT+sum(value)+FROM+conformance.targets_csv", ""); body != "67827\n" {
		t.Errorf("after CSV insert: got %q", body)
	}
}
