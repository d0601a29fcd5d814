package intake

import "testing"

func TestALineWithoutAnOfficeGetsTheAgentsOffice(t *testing.T) {
	o := &Office{OfficeID: "1771-OFF-01"}
	tests := []struct{ in, want string }{
		{`{"type":"activation"}`, `{"office_id":"1771-OFF-01","type":"activation"}`},
		{`  { "type":"activation"}`, `{"office_id":"1771-OFF-01","type":"activation"}`},
		{`{}`, `{"office_id":"1771-OFF-01"}`},
		{`{"office_id":"other","type":"activation"}`, `{"office_id":"other","type":"activation"}`},
		{`[1]`, `[1]`},
		{``, ``},
	}
	for _, tt := range tests {
		if got := string(o.withOffice([]byte(tt.in))); got != tt.want {
			t.Errorf("withOffice(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := string((&Office{}).withOffice([]byte(`{}`))); got != `{}` {
		t.Errorf("without an office: %s, want the line unchanged", got)
	}
}

func TestItemsAreTheElementsOfAnArrayOrTheWholeValue(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`[{"a":1}, {"b":2}]`, []string{`{"a":1}`, `{"b":2}`}},
		{` {"a":1} `, []string{`{"a":1}`}},
		{`[{"a":1}`, []string{`[{"a":1}`}},
	}
	for _, tt := range tests {
		var got []string
		_ = Items([]byte(tt.in), func(n int, item []byte, _ bool) error {
			if n != len(got)+1 {
				t.Errorf("%s: item numbered %d, want %d", tt.in, n, len(got)+1)
			}
			got = append(got, string(item))
			return nil
		})
		if len(got) != len(tt.want) {
			t.Fatalf("Items(%s) = %q, want %q", tt.in, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("Items(%s)[%d] = %s, want %s", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}
