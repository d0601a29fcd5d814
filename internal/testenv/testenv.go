// Package testenv starts the real servers that integration tests talk to: the
// embedded ClickHouse engine behind its HTTP interface (or a ClickHouse server
// named by IKD_CLICKHOUSE_DSN) and an embedded NATS JetStream broker.
//
// Missing pieces fail the tests rather than skip them, so that CI cannot pass
// without having exercised them.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/chhttp"
	"github.com/ikd-pipeline/ikd/internal/engine"
)

// embedded is the process's one embedded engine (chDB allows one per
// process), started by the first test that asks and stopped by Run.
var embedded struct {
	once   sync.Once
	dsn    string
	err    error
	dir    string
	eng    *engine.Engine
	server *chhttp.Server
}

// Run wraps testing.M.Run and stops the embedded warehouse afterwards. Use it
// as `func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }`.
func Run(m *testing.M) int {
	code := m.Run()
	programDirs.removeAll()
	if embedded.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = embedded.server.Close(ctx)
		cancel()
	}
	if embedded.eng != nil {
		_ = embedded.eng.Close()
	}
	if embedded.dir != "" {
		_ = os.RemoveAll(embedded.dir)
	}
	return code
}

// WarehouseDSN is a clickhouse-go DSN for the warehouse under test:
// IKD_CLICKHOUSE_DSN when set, else the embedded engine.
func WarehouseDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("IKD_CLICKHOUSE_DSN"); dsn != "" {
		return dsn
	}
	embedded.once.Do(startWarehouse)
	if embedded.err != nil {
		t.Fatalf("embedded warehouse: %v", embedded.err)
	}
	return embedded.dsn
}

// Embedded reports whether tests run against the embedded engine.
func Embedded() bool { return os.Getenv("IKD_CLICKHOUSE_DSN") == "" }

func startWarehouse() {
	dir, err := os.MkdirTemp("", "ikd-test-warehouse-")
	if err != nil {
		embedded.err = err
		return
	}
	embedded.dir = dir
	eng, err := engine.Open(filepath.Join(dir, "clickhouse"), os.Getenv("IKD_CHDB_LIB"))
	if err != nil {
		embedded.err = err
		return
	}
	embedded.eng = eng
	// Reads are not niced here: nice is machine-wide, and test suites share
	// the machine with others, where a niced read would yield to all of them
	// while its test waits by the clock. chhttp's own tests cover the nice.
	srv, err := chhttp.Listen(eng, chhttp.Config{Addr: "127.0.0.1:0", TempDir: filepath.Join(dir, "tmp"), UserFiles: filepath.Join(dir, "user_files"), ReadNice: -1})
	if err != nil {
		embedded.err = err
		return
	}
	embedded.server = srv
	embedded.dsn = fmt.Sprintf("http://%s", srv.Addr())
}
