// Package warehouse is the pipeline's side of ClickHouse: it connects through
// clickhouse-go/v2 (to a server or to the embedded engine's HTTP interface),
// applies the schema, and writes events.
package warehouse

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/config"
)

// DefaultDSN reaches the embedded warehouse that ikd-dev hosts.
const DefaultDSN = "http://127.0.0.1:8123"

// Open connects to the ClickHouse named by dsn ("clickhouse://host:9000/db"
// for the native protocol, "http://host:8123" for HTTP) and checks that it
// answers.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (driver.Conn, error) {
	opt, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse IKD_CLICKHOUSE_DSN %q: %w", config.RedactDSN(dsn), err)
	}
	if logger != nil {
		opt.Logger = logger.With("component", "clickhouse-go")
	}
	if opt.DialTimeout == 0 || opt.DialTimeout == 30*time.Second {
		opt.DialTimeout = 5 * time.Second
	}
	conn, err := clickhouse.Open(opt)
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse at %s: %w", config.RedactDSN(dsn), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("reach ClickHouse at %s: %w; start bin/ikd-dev or set IKD_CLICKHOUSE_DSN", config.RedactDSN(dsn), err)
	}
	return conn, nil
}

// transientCodes are ClickHouse exceptions that a later attempt may not meet:
// overload, timeouts, resources and replication hiccups.
var transientCodes = map[int32]bool{
	3: true, 74: true, 75: true, 76: true, 159: true, 160: true, 202: true, 203: true,
	209: true, 210: true, 236: true, 241: true, 242: true, 243: true, 252: true, 285: true,
	319: true, 394: true, 425: true, 439: true, 999: true,
}

// Retryable says whether a warehouse error may go away by itself: the
// network, a server restarting or overloaded, a disk filling. Everything else
// (bad SQL, a row the table refuses) fails the same way every time.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return transientCodes[ex.Code]
	}
	var httpErr *clickhouse.HTTPError
	if errors.As(err, &httpErr) {
		return httpErr.StatusCode >= 500 || httpErr.StatusCode == 429
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, sqldriver.ErrBadConn) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout) ||
		strings.Contains(err.Error(), "connection refused")
}
