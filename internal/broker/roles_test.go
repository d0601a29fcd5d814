package broker

import (
	"strings"
	"testing"
)

// matches reports whether subject falls under the NATS pattern (* one
// token, > the rest).
func matches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

func allowed(list []string, subject string) bool {
	if list == nil {
		return true
	}
	for _, p := range list {
		if matches(p, subject) {
			return true
		}
	}
	return false
}

func TestEachRoleMayDoWhatItNeedsAndNothingElse(t *testing.T) {
	tests := []struct {
		role     Role
		province string
		pub      bool // publish, else subscribe
		subject  string
		want     bool
	}{
		{RoleCounter, "", true, "ikd.v1.activation.17.1771", true},
		{RoleCounter, "", true, "$JS.API.STREAM.INFO.IKD_EVENTS", true},
		{RoleCounter, "", false, "_INBOX.counter.abc.1", true},
		{RoleCounter, "", false, "ikd.v1.activation.17.1771", false},
		{RoleCounter, "", false, "_INBOX.aggregator.abc", false},
		{RoleCounter, "", true, "ikd.alerts.v1.critical.17.1771", false},
		{RoleCounter, "", true, "$JS.API.STREAM.DELETE.IKD_EVENTS", false},
		{RoleCounter, "", true, "$JS.API.STREAM.CREATE.IKD_EVENTS", false},
		{RoleCounter, "", true, "ikd.deadletter.v1.invalid", false},
		{RoleAggregator, "", true, "$JS.API.CONSUMER.CREATE.IKD_EVENTS.ikd-aggregator", true},
		{RoleAggregator, "", true, "$JS.API.CONSUMER.MSG.NEXT.IKD_EVENTS.ikd-aggregator", true},
		{RoleAggregator, "", true, "$JS.ACK.IKD_EVENTS.ikd-aggregator.1.2.3.4.5", true},
		{RoleAggregator, "", true, "ikd.deadletter.v1.invalid", true},
		{RoleAggregator, "", true, "ikd.changes.v1.batch", true},
		{RoleAggregator, "", true, "$JS.API.STREAM.MSG.DELETE.IKD_EVENTS", true},
		{RoleAggregator, "", true, "$JS.API.STREAM.MSG.DELETE.IKD_DEADLETTER", false},
		{RoleAggregator, "", true, "$JS.API.STREAM.PURGE.IKD_EVENTS", false},
		{RoleAggregator, "", true, "ikd.v1.activation.17.1771", false},
		{RoleAggregator, "", true, "$JS.API.STREAM.DELETE.IKD_DEADLETTER", false},
		{RoleAggregator, "", true, "$JS.API.CONSUMER.DELETE.IKD_EVENTS.ikd-aggregator", false},
		{RoleAggregator, "", true, "$JS.API.CONSUMER.CREATE.IKD_ALERTS.x", false},
		{RoleAggregator, "", true, "ikd.alerts.v1.warning.17.1771", false},
		{RoleAlerter, "", true, "$JS.API.CONSUMER.MSG.NEXT.IKD_CHANGES.ikd-alerter", true},
		{RoleAlerter, "", true, "ikd.alerts.v1.warning.17.1771", true},
		{RoleAlerter, "", true, "$JS.API.CONSUMER.MSG.NEXT.IKD_EVENTS.ikd-aggregator", false},
		{RoleAlerter, "", true, "ikd.changes.v1.batch", false},
		{RoleAlerts, "", false, "ikd.alerts.v1.warning.18.1801", true},
		{RoleAlerts, "17", false, "ikd.alerts.v1.warning.17.1771", true},
		{RoleAlerts, "17", false, "ikd.alerts.v1.warning.18.1801", false},
		{RoleAlerts, "17", true, "ikd.alerts.v1.warning.17.1771", false},
		{RoleAdmin, "", true, "$JS.API.STREAM.DELETE.IKD_EVENTS", true},
	}
	for _, tt := range tests {
		p, err := RolePermissions(tt.role, string(tt.role), tt.province)
		if err != nil {
			t.Fatalf("%s: %v", tt.role, err)
		}
		list, verb := p.Subscribe, "subscribe to"
		if tt.pub {
			list, verb = p.Publish, "publish"
		}
		if got := allowed(list, tt.subject); got != tt.want {
			t.Errorf("%s (province %q) may %s %s: %v, want %v", tt.role, tt.province, verb, tt.subject, got, tt.want)
		}
	}
}

func TestOnlyTheAggregatorMayTouchItsLease(t *testing.T) {
	write := "$KV.ikd_leases.aggregator"
	read := "$JS.API.DIRECT.GET.KV_ikd_leases.$KV.ikd_leases.aggregator"
	others := []string{
		"$KV.ikd_leases.other", "$JS.API.DIRECT.GET.KV_ikd_leases.$KV.ikd_leases.other",
		"$JS.API.STREAM.PURGE.KV_ikd_leases", "$JS.API.STREAM.DELETE.KV_ikd_leases",
		"$JS.API.STREAM.UPDATE.KV_ikd_leases", "$JS.API.STREAM.MSG.DELETE.KV_ikd_leases",
	}
	for _, role := range Roles {
		p, err := RolePermissions(role, string(role), "")
		if err != nil {
			t.Fatal(err)
		}
		mayLease := role == RoleAggregator || role == RoleAdmin
		for _, subject := range []string{write, read} {
			if got := allowed(p.Publish, subject); got != mayLease {
				t.Errorf("%s may publish %s: %v, want %v", role, subject, got, mayLease)
			}
		}
		for _, subject := range others {
			if got := allowed(p.Publish, subject); got != (role == RoleAdmin) {
				t.Errorf("%s may publish %s: %v, want %v", role, subject, got, role == RoleAdmin)
			}
		}
		if role != RoleAdmin && allowed(p.Subscribe, write) {
			t.Errorf("%s may watch the lease key", role)
		}
	}
}

func TestRolePermissionsRefusesWhatItCannotMean(t *testing.T) {
	tests := []struct {
		role            Role
		inbox, province string
	}{
		{"operator", "operator", ""},
		{RoleCounter, "counter", "17"},
		{RoleAlerts, "alerts", "Bengkulu"},
		{RoleCounter, "", ""},
		{RoleCounter, "a.b", ""},
		{RoleCounter, ">", ""},
	}
	for _, tt := range tests {
		if _, err := RolePermissions(tt.role, tt.inbox, tt.province); err == nil {
			t.Errorf("RolePermissions(%q, %q, %q) succeeded, want an error", tt.role, tt.inbox, tt.province)
		}
	}
}

func TestAuthValidateNamesTheVariable(t *testing.T) {
	tests := []struct {
		name string
		auth Auth
		want string // "" means valid
	}{
		{"none", Auth{}, ""},
		{"user and password", Auth{User: "counter", Password: "p"}, ""},
		{"password alone", Auth{Password: "p"}, "IKD_NATS_PASSWORD"},
		{"user and nkey", Auth{User: "counter", NKeyFile: "/dev/null"}, "alternatives"},
		{"missing nkey file", Auth{NKeyFile: "/nonexistent/seed.nk"}, "IKD_NATS_NKEY_FILE"},
		{"missing creds file", Auth{Creds: "/nonexistent/u.creds"}, "IKD_NATS_CREDS"},
		{"missing CA", Auth{CA: "/nonexistent/ca.pem"}, "IKD_NATS_CA"},
	}
	for _, tt := range tests {
		err := tt.auth.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
}

func TestInboxPrefixIsTheUsersUnlessSet(t *testing.T) {
	tests := []struct {
		auth Auth
		want string
	}{
		{Auth{}, "_INBOX"},
		{Auth{User: "counter"}, "_INBOX.counter"},
		{Auth{User: "counter", InboxPrefix: "_INBOX.office7"}, "_INBOX.office7"},
		{Auth{NKeyFile: "x", InboxPrefix: "_INBOX.counter"}, "_INBOX.counter"},
	}
	for _, tt := range tests {
		if got := tt.auth.inboxPrefix(); got != tt.want {
			t.Errorf("%+v: inbox %q, want %q", tt.auth, got, tt.want)
		}
	}
}
