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

// Fault names what a failed warehouse call blames, which decides what a
// writer does next: wait, call an operator, or set the rows aside.
type Fault int

const (
	// NoFault is the fault of a nil error.
	NoFault Fault = iota
	// Passing trouble goes away by itself: the network, a server restarting
	// or overloaded, a disk filling.
	Passing
	// Setup trouble refuses every row alike until an operator acts: wrong
	// credentials, a missing database, table or column, a read-only user.
	// The rows are not at fault, so they must be held, not set aside.
	Setup
	// Data trouble is the rows' own: the same rows are refused the same way
	// every time (a type mismatch, a violated constraint, anything unknown).
	Data
)

func (f Fault) String() string {
	switch f {
	case NoFault:
		return "none"
	case Passing:
		return "passing"
	case Setup:
		return "setup"
	case Data:
		return "data"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// passingCodes are ClickHouse exceptions that a later attempt may not meet:
// overload, timeouts, resources and replication hiccups.
var passingCodes = map[int32]bool{
	3: true, 74: true, 75: true, 76: true, 159: true, 160: true, 202: true, 203: true,
	209: true, 210: true, 236: true, 241: true, 242: true, 243: true, 252: true, 285: true,
	319: true, 394: true, 425: true, 439: true, 999: true,
}

// setupCodes are ClickHouse exceptions about the deployment, not the rows:
// unknown columns, identifiers, functions, tables and databases, a syntax the
// server does not know, read-only mode, and authentication and access.
var setupCodes = map[int32]bool{
	8: true, 10: true, 16: true, 46: true, 47: true, 60: true, 62: true, 81: true,
	164: true, 192: true, 193: true, 194: true, 195: true, 497: true, 516: true,
}

// Classify says what err blames. It is the one place where warehouse errors
// are judged; callers decide only what to do about each Fault.
func Classify(err error) Fault {
	if err == nil {
		return NoFault
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch {
		case passingCodes[ex.Code]:
			return Passing
		case setupCodes[ex.Code]:
			return Setup
		}
		return Data
	}
	var httpErr *clickhouse.HTTPError
	if errors.As(err, &httpErr) {
		switch code := httpErr.StatusCode; {
		case code >= 500 || code == 429:
			return Passing
		case code == 401 || code == 403 || code == 404:
			return Setup
		}
		return Data
	}
	var netErr net.Error
	if errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, sqldriver.ErrBadConn) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout) ||
		strings.Contains(err.Error(), "connection refused") {
		return Passing
	}
	return Data
}
