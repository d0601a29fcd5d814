package chhttp

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/ikd-pipeline/ikd/internal/engine"
)

// The real engine, one per process, shared by this package's tests.
var eng *engine.Engine

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chhttp-test-")
	if err != nil {
		panic(err)
	}
	eng, err = engine.Open(dir, os.Getenv("IKD_CHDB_LIB"))
	if err != nil {
		// Fail, not skip: these tests exist to exercise the real engine.
		os.Stderr.WriteString("chhttp tests need the engine: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	eng.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func serve(t *testing.T, cfg Config, req *http.Request) (*http.Response, string) {
	t.Helper()
	cfg.TempDir = t.TempDir()
	s, err := newServer(eng, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.closeParsers()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

func TestCredentialsAreRequiredWhenConfigured(t *testing.T) {
	cfg := Config{User: "analyst", Password: "s3cret"}
	for _, tc := range []struct {
		name   string
		auth   func(*http.Request)
		status int
	}{
		{"none", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("analyst", "nope") }, http.StatusUnauthorized},
		{"basic auth", func(r *http.Request) { r.SetBasicAuth("analyst", "s3cret") }, http.StatusOK},
		{"headers", func(r *http.Request) {
			r.Header.Set("X-ClickHouse-User", "analyst")
			r.Header.Set("X-ClickHouse-Key", "s3cret")
		}, http.StatusOK},
		{"url parameters", func(r *http.Request) {
			r.URL.RawQuery += "&user=analyst&password=s3cret"
		}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/?query=SELECT+1", nil)
			tc.auth(req)
			resp, body := serve(t, cfg, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusUnauthorized && resp.Header.Get("X-ClickHouse-Exception-Code") != "516" {
				t.Errorf("exception code %q, want 516", resp.Header.Get("X-ClickHouse-Exception-Code"))
			}
			if tc.status == http.StatusOK && body != "1\n" {
				t.Errorf("body %q", body)
			}
		})
	}
}

func TestURLParametersBecomeSettingsQueryParametersAndDatabase(t *testing.T) {
	_, _ = serve(t, Config{}, httptest.NewRequest("POST", "/", strings.NewReader("CREATE DATABASE IF NOT EXISTS ikd_params")))
	req := httptest.NewRequest("POST", "/?database=ikd_params&param_city=17.71&max_threads=3&client_protocol_version=54460&query_id=q1",
		strings.NewReader("SELECT {city:String}, getSetting('max_threads'), currentDatabase()"))
	resp, body := serve(t, Config{}, req)
	if resp.StatusCode != 200 || body != "17.71\t3\tikd_params\n" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-ClickHouse-Query-Id") != "q1" || resp.Header.Get("X-ClickHouse-Format") != "TabSeparated" {
		t.Errorf("headers %v", resp.Header)
	}
}

func TestInsertBodiesLandWhateverTheirFraming(t *testing.T) {
	_, _ = serve(t, Config{}, httptest.NewRequest("POST", "/", strings.NewReader(
		"CREATE OR REPLACE TABLE default.framing (a UInt32, s String) ENGINE = MergeTree ORDER BY a")))
	for _, req := range []*http.Request{
		httptest.NewRequest("POST", "/?query=INSERT+INTO+default.framing+FORMAT+CSV", strings.NewReader("1,one\n2,two\n")),
		httptest.NewRequest("POST", "/", strings.NewReader("INSERT INTO default.framing FORMAT TSV\n3\tthree\n")),
		httptest.NewRequest("POST", "/?query=INSERT+INTO+default.framing+VALUES", strings.NewReader("(4, 'four')")),
		httptest.NewRequest("POST", "/?query=INSERT+INTO+default.framing+FORMAT+CSVWithNames", strings.NewReader("s,a\nfive,5\n")),
	} {
		if resp, body := serve(t, Config{}, req); resp.StatusCode != 200 {
			t.Fatalf("%s: status %d %s", req.URL, resp.StatusCode, body)
		}
	}
	_, body := serve(t, Config{}, httptest.NewRequest("GET", "/?query=SELECT+groupArray(s)+FROM+(SELECT+s+FROM+default.framing+ORDER+BY+a)", nil))
	if body != "['one','two','three','four','five']\n" {
		t.Fatalf("got %q", body)
	}
}

func TestEngineErrorsAnswerAsClickHouseDoes(t *testing.T) {
	for _, tc := range []struct {
		query  string
		code   string
		status int
	}{
		{"SELECT+*+FROM+nowhere.nothing", "81", 404},
		{"SELEC+1", "62", 400},
		{"SELECT+throwIf(1)", "395", 500},
	} {
		resp, body := serve(t, Config{}, httptest.NewRequest("GET", "/?query="+tc.query, nil))
		if resp.StatusCode != tc.status || resp.Header.Get("X-ClickHouse-Exception-Code") != tc.code ||
			!strings.HasPrefix(body, "Code: "+tc.code+". DB::Exception: ") || !strings.Contains(body, "(version 26.5") {
			t.Errorf("%s: status %d code %q body %q", tc.query, resp.StatusCode, resp.Header.Get("X-ClickHouse-Exception-Code"), body)
		}
	}
}

func TestPingAnswersOk(t *testing.T) {
	for _, target := range []string{"/", "/ping"} {
		if _, body := serve(t, Config{}, httptest.NewRequest("GET", target, nil)); body != "Ok.\n" {
			t.Errorf("%s: %q", target, body)
		}
	}
}

func TestHelloBlockIsReencodedAtTheClientRevision(t *testing.T) {
	const clientRevision = 54460
	resp, body := serve(t, Config{}, httptest.NewRequest("POST",
		"/?default_format=Native&client_protocol_version=54460", strings.NewReader(helloQuery)))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var block proto.Block
	if err := block.Decode(chproto.NewReader(bytes.NewReader([]byte(body))), clientRevision); err != nil {
		t.Fatalf("the client cannot decode the hello at its revision: %v", err)
	}
	if block.Rows() != 1 || block.Columns[1].Row(0, false) != eng.Version() || block.Columns[2].Row(0, false) != uint32(0) {
		t.Fatalf("hello: version %v revision %v", block.Columns[1].Row(0, false), block.Columns[2].Row(0, false))
	}
}
