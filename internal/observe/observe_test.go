package observe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestAMetricsAddressMustNameItsHostAndPort(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9411", true},
		{"127.0.0.1:0", true},
		{"[::1]:9411", true},
		{"0.0.0.0:9411", true}, // in a container, on purpose
		{"localhost:9411", true},
		{":9411", false}, // every interface without saying so
		{"127.0.0.1", false},
		{"", false},
		{"127.0.0.1:port", false},
		{"127.0.0.1:70000", false},
	}
	for _, tt := range tests {
		err := ValidateListen("MetricsListen", tt.addr)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateListen(%q) = %v; want ok %v", tt.addr, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "MetricsListen") {
			t.Errorf("ValidateListen(%q) = %v; want it to name the field", tt.addr, err)
		}
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestReadyOnlyOnceStartedAndEveryCheckPassesNamingTheOneThatFails(t *testing.T) {
	s := New("test")
	var down atomic.Bool
	s.Check("warehouse-like", func(context.Context) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	})
	h := s.Handler()
	if code, body := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d %q while starting; want 200: the process is alive", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("/readyz %d %q before Started; want 503 saying starting", code, body)
	}
	s.Started()
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || !strings.Contains(body, "warehouse-like: ok") {
		t.Errorf("/readyz %d %q; want 200 with the check ok", code, body)
	}
	down.Store(true)
	// Results are reused for a second, so the change shows within one.
	testenv.Eventually(t, 10*time.Second, func() error {
		code, body := get(t, h, "/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "warehouse-like: connection refused") {
			return fmt.Errorf("/readyz %d %q; want 503 naming the failing check", code, body)
		}
		return nil
	})
	if _, body := get(t, h, "/metrics"); !strings.Contains(body, `ikd_ready{program="test"} 0`) ||
		!strings.Contains(body, `ikd_ready_check{check="warehouse-like"} 0`) {
		t.Errorf("/metrics lacks the readiness gauges at 0:\n%s", body)
	}
}

func TestWarehouseReachableIsAGaugeOfItsCheck(t *testing.T) {
	s := New("test")
	s.Warehouse(func(context.Context) error { return nil })
	s.Started()
	if _, body := get(t, s.Handler(), "/metrics"); !strings.Contains(body, "ikd_warehouse_reachable 1\n") || !strings.Contains(body, `ikd_ready{program="test"} 1`) {
		t.Errorf("/metrics lacks ikd_warehouse_reachable 1 and ikd_ready 1:\n%s", body)
	}
}

func TestConsumerLagAndBrokerConnectionAreReadFromTheRealBroker(t *testing.T) {
	b := testenv.Broker(t)
	nc, js := testenv.JetStream(t, b.URL())
	ctx := context.Background()
	c, err := js.CreateOrUpdateConsumer(ctx, contract.EventsStream, jetstream.ConsumerConfig{Durable: "observe-test", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx, fmt.Sprintf("ikd.v1.test.%d", i), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	s := New("test")
	s.Broker("admin", nc)
	s.Consumer(c)
	s.Started()
	// The broker counts a consumer's pending messages on its own time.
	const pending = `ikd_consumer_pending_messages{consumer="observe-test",stream="IKD_EVENTS"} 3`
	var body string
	testenv.Eventually(t, 20*time.Second, testenv.Holds("the consumer's 3 pending messages on /metrics", func() bool {
		_, body = get(t, s.Handler(), "/metrics")
		return strings.Contains(body, pending)
	}))
	for _, want := range []string{
		pending,
		`ikd_consumer_ack_pending_messages{consumer="observe-test",stream="IKD_EVENTS"} 0`,
		`ikd_broker_connected{connection="admin"} 1`,
		`ikd_ready{program="test"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if err := js.DeleteConsumer(ctx, contract.EventsStream, "observe-test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		code, body := get(t, s.Handler(), "/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "consumer IKD_EVENTS/observe-test: consumer info") {
			return fmt.Errorf("/readyz %d %q with the consumer deleted; want 503 naming it", code, body)
		}
		return nil
	})
}
