package testenv

import (
	"slices"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// ConfPermissions reads the permissions nats-server parsed from a
// configuration file back into the roles' form, so that a shipped file can
// be compared with broker.RolePermissions: a list that denies everything is
// an empty allow list.
func ConfPermissions(sp *server.Permissions) broker.Permissions {
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

// SamePermissions tells whether a and b allow the same subjects, in any order.
func SamePermissions(a, b broker.Permissions) bool {
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
