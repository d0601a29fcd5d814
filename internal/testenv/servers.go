package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/schema"
)

// Quiet is a logger for components under test whose logs would only clutter
// the test output.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// credentials are the broker users of every test broker: one per role,
// made once per test process, so that a broker restarted on the same store
// admits the same users.
var credentials = sync.OnceValue(func() embeddedbroker.Credentials {
	c, err := embeddedbroker.NewCredentials()
	if err != nil {
		panic(err)
	}
	return c
})

// Broker starts an embedded NATS JetStream server for one test, on a free
// port with its store in a temporary directory, stopped when the test ends.
// Like every broker of the project it admits no anonymous client: connect
// with Connect (the admin) or ConnectAs (a role).
func Broker(t testing.TB) *embeddedbroker.Broker {
	t.Helper()
	return BrokerAt(t, StoreDir(t), -1)
}

// BrokerAt starts an embedded broker on dir and port (-1: any free port), for
// tests that stop and start it again on the same store and address.
func BrokerAt(t testing.TB, dir string, port int) *embeddedbroker.Broker {
	t.Helper()
	return StartBroker(t, BrokerConfig(dir, port))
}

// BrokerConfig is the configuration of the test brokers: a user per role,
// monitoring on a free loopback port.
func BrokerConfig(dir string, port int) embeddedbroker.Config {
	return embeddedbroker.Config{Dir: dir, Port: port, Monitor: "127.0.0.1:0", Users: credentials().Users()}
}

// StartBroker starts an embedded broker with cfg, stopped when the test ends.
func StartBroker(t testing.TB, cfg embeddedbroker.Config) *embeddedbroker.Broker {
	t.Helper()
	b, err := embeddedbroker.Start(cfg)
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

// Auth is how a program under test connects to a test broker as role.
func Auth(role broker.Role) broker.Auth { return credentials().Auth(role) }

// SetBrokerEnv points a program under test at url as role, through the
// variables it reads (IKD_NATS_URL, IKD_NATS_USER, IKD_NATS_PASSWORD).
func SetBrokerEnv(t testing.TB, url string, role broker.Role) {
	t.Helper()
	for k, v := range BrokerEnv(url, role) {
		t.Setenv(k, v)
	}
}

// BrokerEnv are the variables that point a program at url as role, for
// tests that start programs as processes.
func BrokerEnv(url string, role broker.Role) map[string]string {
	a := Auth(role)
	return map[string]string{"IKD_NATS_URL": url, "IKD_NATS_USER": a.User, "IKD_NATS_PASSWORD": a.Password}
}

// JetStream connects to url as the admin and returns the connection and its
// JetStream context, with the project's streams provisioned.
func JetStream(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := Connect(t, url)
	return nc, Provision(t, nc, broker.StreamOptions{})
}

// Connect connects to url as the admin, the way the programs connect, closed
// when the test ends. It provisions nothing, for tests of what happens
// before the streams exist.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	return ConnectAs(t, url, broker.RoleAdmin)
}

// ConnectAs connects to url as role, closed when the test ends.
func ConnectAs(t testing.TB, url string, role broker.Role) *nats.Conn {
	t.Helper()
	nc, err := broker.Connect(url, t.Name(), Auth(role), Quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Provision declares the project's streams and lease bucket with options opt through nc and
// returns its JetStream context.
func Provision(t testing.TB, nc *nats.Conn, opt broker.StreamOptions) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := broker.Provision(ctx, js, broker.Streams(opt)...); err != nil {
		t.Fatal(err)
	}
	if err := broker.ProvisionLeases(ctx, js, broker.LeaseBucketConfig(opt)); err != nil {
		t.Fatal(err)
	}
	return js
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// tests that must know a broker's address before it starts or that need an
// address where nothing listens. It is drawn below the kernel's ephemeral
// range (32768 and up here), so that no server listening on port 0, nor any
// outgoing connection, is given it before the test listens on it.
func FreePort(t testing.TB) int {
	t.Helper()
	const low, high = 20000, 32768
	for range 100 {
		port := low + rand.IntN(high-low)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatalf("no free port between %d and %d in 100 tries", low, high)
	return 0
}

// Warehouse connects to the warehouse under test and empties every table of
// the ikd database, so that each test starts from nothing. Programs apply the
// schema themselves at start, as in production.
func Warehouse(t testing.TB) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := warehouse.Open(ctx, WarehouseDSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// TRUNCATE, not DROP DATABASE ... SYNC, which waits forever on the
	// embedded engine while its own connection is the one asking.
	if err := conn.Exec(ctx, "TRUNCATE ALL TABLES FROM IF EXISTS ikd"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// MigratedWarehouse is Warehouse with the project's migrations applied, for
// tests that write or read the tables themselves rather than start a program
// that migrates at start; it returns the region reference the migrations
// were applied with.
func MigratedWarehouse(t testing.TB) (driver.Conn, *region.Reference) {
	t.Helper()
	conn := Warehouse(t)
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := warehouse.Migrate(ctx, conn, schema.Migrations, ref, Quiet); err != nil {
		t.Fatal(err)
	}
	return conn, ref
}

// StoreDir is a directory for a test broker's store, removed when the test
// ends. It is in memory (/dev/shm) where the machine has one: the brokers
// sync every write as in production, and on a disk shared by concurrent test
// runs those syncs, not the code under test, would set the pace.
func StoreDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "ikd-test-broker-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
