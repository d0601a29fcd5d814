package broker

import (
	"fmt"
	"regexp"
	"strings"
)

// Role is what a broker user may do. Each gets the least it needs; only
// RoleAdmin may create, change or delete streams.
type Role string

const (
	// RoleAdmin manages streams and runs the operator tools (replay,
	// reconcile): no limits.
	RoleAdmin Role = "admin"
	// RoleCounter publishes events and receives its publish acknowledgements.
	RoleCounter Role = "counter"
	// RoleAggregator consumes IKD_EVENTS, publishes dead letters and
	// change announcements, erases single events that carried a NIK, and
	// takes, renews and releases the aggregator lease.
	RoleAggregator Role = "aggregator"
	// RoleAlerter consumes IKD_CHANGES and publishes alerts.
	RoleAlerter Role = "alerter"
	// RoleAlerts subscribes to alerts, of one province when Permissions is
	// given one.
	RoleAlerts Role = "alerts"
)

// Roles are the roles a deployment gives users to, in the order they are
// listed to people.
var Roles = []Role{RoleAdmin, RoleCounter, RoleAggregator, RoleAlerter, RoleAlerts}

// Permissions lists the subjects a role may publish and subscribe to; nil
// lists mean no limit (the admin).
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// jsAPI is the prefix of JetStream's API subjects.
const jsAPI = "$JS.API"

var provinceCode = regexp.MustCompile(`^[0-9]{2}$`)

// RolePermissions returns what role may do. Replies reach it under
// InboxPrefix(inbox): give the user name, which is the client's default
// prefix (Auth.InboxPrefix), or the role for users without a name (nkeys).
// province limits RoleAlerts to one province's alerts (its two-digit code);
// empty means every province.
func RolePermissions(role Role, inbox, province string) (Permissions, error) {
	if province != "" && (role != RoleAlerts || !provinceCode.MatchString(province)) {
		return Permissions{}, fmt.Errorf("province %q: only the %s role takes a province, as two digits", province, RoleAlerts)
	}
	if inbox == "" || strings.ContainsAny(inbox, ".*> ") {
		return Permissions{}, fmt.Errorf("inbox %q: want one subject token, such as the user name", inbox)
	}
	inbox = InboxPrefix(inbox) + ".>"
	// Every service checks at start that its streams exist (STREAM.INFO).
	streamInfo := jsAPI + ".STREAM.INFO.*"
	switch role {
	case RoleAdmin:
		return Permissions{}, nil
	case RoleCounter:
		return Permissions{
			Publish:   []string{eventsSubjects, streamInfo},
			Subscribe: []string{inbox},
		}, nil
	case RoleAggregator:
		return Permissions{
			Publish: append(consume(EventsStream), streamInfo,
				deadLetterSubjects, changesSubjects,
				// It erases a message that carried a NIK once its redacted
				// dead letter is stored: single messages, never the stream.
				jsAPI+".STREAM.MSG.DELETE."+EventsStream,
				// The single-writer lease: one key of the lease bucket, written
				// (create, renew, release) and read, nothing else of it.
				leaseKey(AggregatorLease), leaseRead(AggregatorLease)),
			Subscribe: []string{inbox},
		}, nil
	case RoleAlerter:
		return Permissions{
			Publish:   append(consume(ChangesStream), streamInfo, alertsSubjects),
			Subscribe: []string{inbox},
		}, nil
	case RoleAlerts:
		subject := alertsSubjects
		if province != "" {
			// ikd.alerts.v1.<severity>.<province>.<city>
			subject = AlertsPrefix + ".*." + province + ".>"
		}
		return Permissions{Publish: []string{}, Subscribe: []string{subject}}, nil
	}
	return Permissions{}, fmt.Errorf("unknown broker role %q (want one of %v)", role, Roles)
}

// leaseKey is the subject a lease's key is written on (KV put, create,
// update, delete all publish there).
func leaseKey(key string) string { return "$KV." + LeaseBucket + "." + key }

// leaseRead is the direct get of a lease key's latest value, as the KV
// client reads it from a bucket that allows direct gets.
func leaseRead(key string) string {
	return jsAPI + ".DIRECT.GET.KV_" + LeaseBucket + "." + leaseKey(key)
}

// consume is what a durable pull consumer of stream needs: create or look
// up its consumer, fetch, and acknowledge. It cannot delete anything.
func consume(stream string) []string {
	return []string{
		jsAPI + ".CONSUMER.CREATE." + stream + ".>",
		jsAPI + ".CONSUMER.DURABLE.CREATE." + stream + ".*",
		jsAPI + ".CONSUMER.INFO." + stream + ".*",
		jsAPI + ".CONSUMER.MSG.NEXT." + stream + ".*",
		"$JS.ACK." + stream + ".>",
	}
}
