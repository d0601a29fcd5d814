package alerter_test

import (
	"testing"
)

// Analysts read last_activation_at in WIB, and a region without any
// activation shows NULL rather than 1970-01-01.
func TestLastActivationIsInWIBAndNeverIsNull(t *testing.T) {
	e := start(t)
	e.alerter(t, testConfig()) // applies the schema
	e.activations(t, "17.71", 50)
	var wantWIB string
	if err := e.conn.QueryRow(e.ctx, "SELECT toString(max(occurred_at), 'Asia/Jakarta') FROM ikd.events WHERE city_code = '17.71'").Scan(&wantWIB); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		view, code string
		never      bool
	}{
		{"city", "17.71", false},
		{"province", "17", false},
		{"city", "18.71", true},
		{"province", "18", true},
	} {
		var typ, shown string
		var null bool
		err := e.conn.QueryRow(e.ctx, `SELECT toTypeName(last_activation_at), ifNull(toString(last_activation_at), ''), isNull(last_activation_at)
			FROM ikd.attainment_`+tc.view+`_as_of(as_of = '2023-02-13') WHERE year = 2023 AND `+tc.view+`_code = ?`, tc.code).Scan(&typ, &shown, &null)
		if err != nil {
			t.Fatal(err)
		}
		if typ != "Nullable(DateTime64(3, 'Asia/Jakarta'))" {
			t.Errorf("%s %s: type %s, want a WIB time that may be NULL", tc.view, tc.code, typ)
		}
		if null != tc.never || !tc.never && shown != wantWIB {
			t.Errorf("%s %s: shown %q (null %v), want %q (null %v)", tc.view, tc.code, shown, null, wantWIB, tc.never)
		}
	}
}
