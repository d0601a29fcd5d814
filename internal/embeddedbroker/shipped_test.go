package embeddedbroker_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// TestMain removes the nats-server binary the checks build.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// shippedConfs are the nats-server configurations the project ships for
// brokers outside ikd-dev: the single broker and the cluster's three nodes.
var shippedConfs = []string{
	"../../deploy/nats/nats-server.conf",
	"../../deploy/nats/cluster/nats-1.conf",
	"../../deploy/nats/cluster/nats-2.conf",
	"../../deploy/nats/cluster/nats-3.conf",
}

// setPasswordHashes sets the variables the shipped configurations take their
// users' bcrypt hashes from.
func setPasswordHashes(t *testing.T) {
	for _, v := range []string{"ADMIN", "COUNTER", "AGGREGATOR", "ALERTER", "ALERTS", "ALERTS_17"} {
		t.Setenv("IKD_NATS_"+v+"_HASH", "$2a$11$placeholderplaceholderplaceholderplaceholderplacehold")
	}
}

func TestEveryShippedNATSConfigPassesTheServersOwnCheck(t *testing.T) {
	setPasswordHashes(t)
	natsServer := testenv.Program(t, testenv.NATSServer)
	for _, conf := range shippedConfs {
		out, err := exec.Command(natsServer, "-t", "-c", conf).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "is valid") {
			t.Errorf("nats-server -t -c %s: %v\n%s", conf, err, out)
		}
	}
}

func TestTheShippedNATSConfigsSyncAlwaysAndGiveEachRoleItsPermissions(t *testing.T) {
	setPasswordHashes(t)
	for _, conf := range shippedConfs {
		t.Run(filepath.Base(conf), func(t *testing.T) {
			opts, err := server.ProcessConfigFile(conf)
			if err != nil {
				t.Fatalf("%s: %v", conf, err)
			}
			checkShippedOptions(t, opts)
		})
	}
}

func TestTheShippedClusterNodesRouteToEachOtherUnderTheirOwnNames(t *testing.T) {
	setPasswordHashes(t)
	names := map[string]bool{}
	for _, conf := range shippedConfs[1:] {
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatalf("%s: %v", conf, err)
		}
		names[opts.ServerName] = true
		if opts.Cluster.Name != "ikd" || opts.Cluster.Port != 6222 {
			t.Errorf("%s: cluster %q on port %d, want ikd on 6222", conf, opts.Cluster.Name, opts.Cluster.Port)
		}
		var routes []string
		for _, r := range opts.Routes {
			routes = append(routes, r.Host)
		}
		if want := []string{"ikd-nats-1:6222", "ikd-nats-2:6222", "ikd-nats-3:6222"}; !slices.Equal(routes, want) {
			t.Errorf("%s: routes %v, want %v", conf, routes, want)
		}
	}
	if len(names) != 3 {
		t.Errorf("server names %v, want three different ones", names)
	}
}

// checkShippedOptions checks what every shipped broker must do: sync every
// write, monitor on loopback, admit only the users of the roles.
func checkShippedOptions(t *testing.T, opts *server.Options) {
	t.Helper()
	if !opts.SyncAlways {
		t.Error("jetstream sync_interval is not always")
	}
	if !opts.JetStream || opts.JetStreamMaxStore <= 0 {
		t.Errorf("jetstream %v with max_file_store %d, want it on with a limit", opts.JetStream, opts.JetStreamMaxStore)
	}
	if opts.HTTPHost != "127.0.0.1" || opts.HTTPPort != 8222 {
		t.Errorf("monitoring on %s:%d, want 127.0.0.1:8222", opts.HTTPHost, opts.HTTPPort)
	}
	if opts.NoAuthUser != "" || len(opts.Users) == 0 {
		t.Errorf("anonymous access: no_auth_user %q, %d users", opts.NoAuthUser, len(opts.Users))
	}
	want := map[string]struct {
		role     broker.Role
		province string
	}{
		"admin": {broker.RoleAdmin, ""}, "counter": {broker.RoleCounter, ""}, "aggregator": {broker.RoleAggregator, ""},
		"alerter": {broker.RoleAlerter, ""}, "alerts": {broker.RoleAlerts, ""}, "alerts-17": {broker.RoleAlerts, "17"},
	}
	if len(opts.Users) != len(want) {
		t.Errorf("%d users, want %d", len(opts.Users), len(want))
	}
	for _, u := range opts.Users {
		w, ok := want[u.Username]
		if !ok {
			t.Errorf("unexpected user %s", u.Username)
			continue
		}
		p, err := broker.RolePermissions(w.role, u.Username, w.province)
		if err != nil {
			t.Fatal(err)
		}
		if got := testenv.ConfPermissions(u.Permissions); !testenv.SamePermissions(got, p) {
			t.Errorf("user %s: permissions %+v, want %s's %+v", u.Username, got, w.role, p)
		}
	}
}

// The production programs must not carry the development servers: the
// embedded broker (nats-server) nor the embedded engine's loader (purego).
func TestProductionProgramsDoNotLinkTheEmbeddedServers(t *testing.T) {
	programs := []string{"./consumers/ikd-aggregator", "./consumers/ikd-alerter", "./consumers/ikd-papan", "./producers/ikd-counter"}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, programs...)...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{"github.com/nats-io/nats-server/v2/server", "github.com/ebitengine/purego", "github.com/ikd-pipeline/ikd/internal/embeddedbroker"} {
		if slices.Contains(deps, banned) {
			t.Errorf("%v link %s", programs, banned)
		}
	}
}
