package embeddedbroker_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// shippedConf is the nats-server configuration the project ships for a
// broker outside ikd-dev.
const shippedConf = "../../deploy/nats/nats-server.conf"

func TestTheShippedNATSConfigSyncsAlwaysAndGivesEachRoleItsPermissions(t *testing.T) {
	for _, v := range []string{"ADMIN", "COUNTER", "AGGREGATOR", "ALERTER", "ALERTS", "ALERTS_17"} {
		t.Setenv("IKD_NATS_"+v+"_HASH", "$2a$11$placeholderplaceholderplaceholderplaceholderplacehold")
	}
	opts, err := server.ProcessConfigFile(shippedConf)
	if err != nil {
		t.Fatalf("%s: %v", shippedConf, err)
	}
	if !opts.SyncAlways {
		t.Error("jetstream sync_interval is not always")
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
		if got := confPermissions(u.Permissions); !samePermissions(got, p) {
			t.Errorf("user %s: permissions %+v, want %s's %+v", u.Username, got, w.role, p)
		}
	}
}

// confPermissions reads nats-server's permissions back into the roles' form:
// a list that denies everything is an empty allow list.
func confPermissions(sp *server.Permissions) broker.Permissions {
	if sp == nil {
		return broker.Permissions{}
	}
	list := func(s *server.SubjectPermission) []string {
		switch {
		case s == nil:
			return nil
		case slices.Equal(s.Deny, []string{">"}) && len(s.Allow) == 0:
			return []string{}
		}
		return s.Allow
	}
	return broker.Permissions{Publish: list(sp.Publish), Subscribe: list(sp.Subscribe)}
}

func samePermissions(a, b broker.Permissions) bool {
	same := func(x, y []string) bool {
		if (x == nil) != (y == nil) {
			return false
		}
		x, y = slices.Clone(x), slices.Clone(y)
		slices.Sort(x)
		slices.Sort(y)
		return slices.Equal(x, y)
	}
	return same(a.Publish, b.Publish) && same(a.Subscribe, b.Subscribe)
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
