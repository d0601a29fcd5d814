package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestClassifySeparatesPassingTroubleSetupMistakesAndRefusedRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Fault
	}{
		{"nothing", nil, NoFault},
		{"connection refused", fmt.Errorf("insert: %w", syscall.ECONNREFUSED), Passing},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, Passing},
		{"stream cut short", fmt.Errorf("read block: %w", io.ErrUnexpectedEOF), Passing},
		{"dial timeout", &net.OpError{Op: "dial", Err: context.DeadlineExceeded}, Passing},
		{"disk full (NOT_ENOUGH_SPACE)", &clickhouse.Exception{Code: 243}, Passing},
		{"memory limit", &clickhouse.Exception{Code: 241}, Passing},
		{"too many parts", &clickhouse.Exception{Code: 252}, Passing},
		{"timeout exceeded", &clickhouse.Exception{Code: 159}, Passing},
		{"server overloaded (HTTP 503)", &clickhouse.HTTPError{StatusCode: 503, Err: errors.New("unavailable")}, Passing},
		{"unknown table", &clickhouse.Exception{Code: 60}, Setup},
		{"syntax error", &clickhouse.Exception{Code: 62}, Setup},
		{"constraint violated", &clickhouse.Exception{Code: 469}, Data},
		{"type mismatch", &clickhouse.Exception{Code: 53}, Data},
		{"typed error behind HTTP 500", &clickhouse.HTTPError{StatusCode: 500, Err: &clickhouse.Exception{Code: 60}}, Setup},
		{"bad request", &clickhouse.HTTPError{StatusCode: 400, Err: errors.New("bad")}, Data},
		{"wrong password", &clickhouse.Exception{Code: 516}, Setup},
		{"access denied", &clickhouse.Exception{Code: 497}, Setup},
		{"unknown database", &clickhouse.Exception{Code: 81}, Setup},
		{"read-only user", &clickhouse.Exception{Code: 164}, Setup},
		{"unauthorised (HTTP 401)", &clickhouse.HTTPError{StatusCode: 401, Err: errors.New("no")}, Setup},
		{"unknown exception code", &clickhouse.Exception{Code: 6}, Data},
		{"anything else", errors.New("odd"), Data},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
