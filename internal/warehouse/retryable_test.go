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

func TestRetryableSeparatesPassingTroubleFromPermanentRefusal(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nothing", nil, false},
		{"connection refused", fmt.Errorf("insert: %w", syscall.ECONNREFUSED), true},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"stream cut short", fmt.Errorf("read block: %w", io.ErrUnexpectedEOF), true},
		{"dial timeout", &net.OpError{Op: "dial", Err: context.DeadlineExceeded}, true},
		{"disk full (NOT_ENOUGH_SPACE)", &clickhouse.Exception{Code: 243}, true},
		{"memory limit", &clickhouse.Exception{Code: 241}, true},
		{"too many parts", &clickhouse.Exception{Code: 252}, true},
		{"timeout exceeded", &clickhouse.Exception{Code: 159}, true},
		{"server overloaded (HTTP 503)", &clickhouse.HTTPError{StatusCode: 503, Err: errors.New("unavailable")}, true},
		{"unknown table", &clickhouse.Exception{Code: 60}, false},
		{"syntax error", &clickhouse.Exception{Code: 62}, false},
		{"constraint violated", &clickhouse.Exception{Code: 469}, false},
		{"type mismatch", &clickhouse.Exception{Code: 53}, false},
		{"typed error behind HTTP 500", &clickhouse.HTTPError{StatusCode: 500, Err: &clickhouse.Exception{Code: 60}}, false},
		{"bad request", &clickhouse.HTTPError{StatusCode: 400, Err: errors.New("bad")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
