package embeddedbroker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// client is a connection whose refusals by the broker (permission
// violations, which NATS reports asynchronously) the test can wait for.
type client struct {
	nc      *nats.Conn
	refused chan error
}

func dial(t *testing.T, url string, auth broker.Auth) *client {
	t.Helper()
	opts, err := auth.Options()
	if err != nil {
		t.Fatal(err)
	}
	c := &client{refused: make(chan error, 16)}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			c.refused <- err
		}
	}))
	c.nc, err = nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", auth.User, err)
	}
	t.Cleanup(c.nc.Close)
	return c
}

func dialAs(t *testing.T, url string, role broker.Role) *client {
	t.Helper()
	return dial(t, url, testenv.Auth(role))
}

// expectRefused waits for the broker to refuse what names subject.
func (c *client) expectRefused(t *testing.T, what, subject string) {
	t.Helper()
	want := fmt.Sprintf("%s to %q", what, subject)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.refused:
			if strings.Contains(err.Error(), want) {
				return
			}
		case <-deadline:
			t.Fatalf("the broker did not refuse %s", want)
		}
	}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(ctx(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().State.Msgs
}

func TestAnonymousClientsAndWrongPasswordsAreRefused(t *testing.T) {
	url := testenv.Broker(t).URL()
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("an anonymous client was admitted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("anonymous connect: %v, want an authorization violation", err)
	}
	wrong := testenv.Auth(broker.RoleAdmin)
	wrong.Password += "x"
	_, err := broker.Connect(url, "test", wrong, testenv.Quiet)
	if err == nil || !strings.Contains(err.Error(), "refused user admin") || !strings.Contains(err.Error(), "IKD_NATS_PASSWORD") {
		t.Errorf("wrong password: %v, want a refusal naming the user and IKD_NATS_PASSWORD", err)
	}
	if _, err := broker.Connect(url, "test", broker.Auth{}, testenv.Quiet); err == nil || !strings.Contains(err.Error(), "refused no credentials") {
		t.Errorf("no credentials: %v, want a refusal saying none were given", err)
	}
}

func TestAMonitoringPortInUseIsAClearError(t *testing.T) {
	taken := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	l, err := net.Listen("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testenv.BrokerConfig(t.TempDir(), -1)
	cfg.Monitor = taken
	b, err := embeddedbroker.Start(cfg)
	if err == nil {
		b.Shutdown()
		t.Fatal("started with its monitoring port taken")
	}
	if want := "monitoring: listen " + taken + ": address already in use"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
}

func TestBrokerWithoutUsersDoesNotStart(t *testing.T) {
	_, err := embeddedbroker.Start(embeddedbroker.Config{Dir: t.TempDir(), Port: -1})
	if err == nil || !strings.Contains(err.Error(), "anonymous access is refused") {
		t.Fatalf("start without users: %v, want a refusal", err)
	}
}

func TestCounterMayPublishEventsButNotReadDeleteOrForgeAlerts(t *testing.T) {
	url := testenv.Broker(t).URL()
	_, admin := testenv.JetStream(t, url)
	counter := dialAs(t, url, broker.RoleCounter)
	js, err := jetstream.New(counter.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx(t), "ikd.v1.activation.17.1771", []byte("{}")); err != nil {
		t.Fatalf("a counter could not publish an event: %v", err)
	}

	if _, err := counter.nc.SubscribeSync("ikd.v1.>"); err != nil {
		t.Fatal(err)
	}
	counter.expectRefused(t, "Subscription", "ikd.v1.>")
	// Nor may it read another role's replies, where fetched events arrive.
	if _, err := counter.nc.SubscribeSync("_INBOX.aggregator.>"); err != nil {
		t.Fatal(err)
	}
	counter.expectRefused(t, "Subscription", "_INBOX.aggregator.>")

	if err := counter.nc.Publish("ikd.alerts.v1.critical.17.1771", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	counter.expectRefused(t, "Publish", "ikd.alerts.v1.critical.17.1771")
	if n := streamMsgs(t, admin, broker.AlertsStream); n != 0 {
		t.Errorf("IKD_ALERTS holds %d forged alerts", n)
	}

	short, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := js.DeleteStream(short, broker.EventsStream); err == nil {
		t.Error("a counter deleted IKD_EVENTS")
	}
	counter.expectRefused(t, "Publish", "$JS.API.STREAM.DELETE.IKD_EVENTS")
	if n := streamMsgs(t, admin, broker.EventsStream); n != 1 {
		t.Errorf("IKD_EVENTS holds %d messages, want the 1 event", n)
	}
}

func TestAggregatorMayNotDeleteStreamsOrPublishEvents(t *testing.T) {
	url := testenv.Broker(t).URL()
	_, admin := testenv.JetStream(t, url)
	agg := dialAs(t, url, broker.RoleAggregator)
	js, err := jetstream.New(agg.nc)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := js.DeleteStream(short, broker.DeadLetterStream); err == nil {
		t.Error("the aggregator deleted IKD_DEADLETTER")
	}
	agg.expectRefused(t, "Publish", "$JS.API.STREAM.DELETE.IKD_DEADLETTER")
	if err := agg.nc.Publish("ikd.v1.activation.17.1771", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	agg.expectRefused(t, "Publish", "ikd.v1.activation.17.1771")
	for _, name := range []string{broker.DeadLetterStream, broker.EventsStream} {
		if _, err := admin.Stream(ctx(t), name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	// What it may do: announce a change.
	if _, err := js.Publish(ctx(t), broker.ChangesPrefix+".batch", []byte("{}")); err != nil {
		t.Errorf("the aggregator could not announce a change: %v", err)
	}
}

func TestProgramsWithoutTheAdminRoleCannotCreateStreamsAndSayWhoCan(t *testing.T) {
	url := testenv.Broker(t).URL()
	js, err := jetstream.New(testenv.ConnectAs(t, url, broker.RoleCounter))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = broker.Provision(short, js, broker.Streams(broker.StreamOptions{})...)
	if err == nil || !strings.Contains(err.Error(), "ikd-aggregator provision") || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("provision as a counter: %v, want an error pointing to the admin's provisioning", err)
	}
	// Once the admin has provisioned, the same call passes: it only looks.
	testenv.JetStream(t, url)
	if err := broker.Provision(ctx(t), js, broker.Streams(broker.StreamOptions{})...); err != nil {
		t.Fatalf("provision as a counter after the admin: %v", err)
	}
}

func TestAnAlertSubscriberOfOneProvinceGetsOnlyItsAlerts(t *testing.T) {
	cfg := testenv.BrokerConfig(t.TempDir(), -1)
	cfg.Users = append(cfg.Users, embeddedbroker.User{Name: "bengkulu", Password: "bengkulu-secret-password", Role: broker.RoleAlerts, Province: "17"})
	url := testenv.StartBroker(t, cfg).URL()
	testenv.JetStream(t, url)
	sub := dial(t, url, broker.Auth{User: "bengkulu", Password: "bengkulu-secret-password"})

	if _, err := sub.nc.SubscribeSync(broker.AlertsPrefix + ".>"); err != nil {
		t.Fatal(err)
	}
	sub.expectRefused(t, "Subscription", broker.AlertsPrefix+".>")
	mine, err := sub.nc.SubscribeSync(broker.AlertsPrefix + ".*.17.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	alerter, err := jetstream.New(testenv.ConnectAs(t, url, broker.RoleAlerter))
	if err != nil {
		t.Fatal(err)
	}
	// Province 18's first: had the subscriber been given it, it would come first.
	for _, subject := range []string{"ikd.alerts.v1.warning.18.1801", "ikd.alerts.v1.warning.17.1771"} {
		if _, err := alerter.Publish(ctx(t), subject, []byte(subject)); err != nil {
			t.Fatalf("alerter publishes %s: %v", subject, err)
		}
	}
	msg, err := mine.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("province 17's alert: %v", err)
	}
	if msg.Subject != "ikd.alerts.v1.warning.17.1771" {
		t.Errorf("the province 17 subscriber received %s", msg.Subject)
	}
}

func TestMonitoringReportsJetStreamSyncingAlways(t *testing.T) {
	b := testenv.Broker(t)
	base := b.MonitorURL()
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("monitoring at %q, want loopback", base)
	}
	var varz struct {
		JetStream struct {
			Config struct {
				SyncAlways bool `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	getJSON(t, base+"/varz", &varz)
	if !varz.JetStream.Config.SyncAlways {
		t.Error("/varz: JetStream does not sync always")
	}
	var jsz struct {
		Config struct {
			SyncAlways bool `json:"sync_always"`
		} `json:"config"`
	}
	getJSON(t, base+"/jsz", &jsz)
	if !jsz.Config.SyncAlways {
		t.Error("/jsz: JetStream does not sync always")
	}
	var healthz struct {
		Status string `json:"status"`
	}
	getJSON(t, base+"/healthz", &healthz)
	if healthz.Status != "ok" {
		t.Errorf("/healthz status %q, want ok", healthz.Status)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestAnNKeyUserConnectsWithItsSeedFile(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(t.TempDir(), "counter.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.BrokerConfig(t.TempDir(), -1)
	cfg.Users = append(cfg.Users, embeddedbroker.User{NKey: pub, Role: broker.RoleCounter})
	url := testenv.StartBroker(t, cfg).URL()
	testenv.JetStream(t, url)

	nc, err := broker.Connect(url, "test", broker.Auth{NKeyFile: seedFile, InboxPrefix: broker.InboxPrefix(string(broker.RoleCounter))}, testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx(t), "ikd.v1.activation.17.1771", []byte("{}")); err != nil {
		t.Fatalf("publish as the nkey counter: %v", err)
	}
}

func TestCredentialsAreKeptPrivateAndReusedAtTheNextStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credentials")
	first, err := embeddedbroker.LoadOrCreateCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.WriteEnvFiles(dir, "nats://127.0.0.1:4222"); err != nil {
		t.Fatal(err)
	}
	again, err := embeddedbroker.LoadOrCreateCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range broker.Roles {
		if len(first[role]) < 32 || first[role] != again[role] {
			t.Errorf("%s: password %q then %q, want one random password kept", role, first[role], again[role])
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("credentials dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode())
		}
	}
	env, err := os.ReadFile(embeddedbroker.EnvFile(dir, broker.RoleAdmin))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export NATS_USER=admin", "export NATS_PASSWORD=" + first[broker.RoleAdmin], "export IKD_NATS_URL=nats://127.0.0.1:4222"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("admin.env lacks %q", want)
		}
	}
}

func TestPermissionsListsAreWhatTheRolesDeclare(t *testing.T) {
	// Guard against a role losing its limits on the way to the server:
	// every role but the admin has both lists.
	for _, role := range broker.Roles {
		p, err := broker.RolePermissions(role, string(role), "")
		if err != nil {
			t.Fatal(err)
		}
		if (p.Publish == nil || p.Subscribe == nil) != (role == broker.RoleAdmin) {
			t.Errorf("%s: publish %v, subscribe %v", role, p.Publish, p.Subscribe)
		}
		if role != broker.RoleAdmin && slices.Contains(append(p.Publish, p.Subscribe...), ">") {
			t.Errorf("%s may use every subject", role)
		}
	}
}
