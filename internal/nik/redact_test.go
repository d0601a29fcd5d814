package nik

import "testing"

func TestRedactReplacesEveryRunThatCouldBeANIK(t *testing.T) {
	const r = Redacted
	tests := []struct {
		name, text, want string
	}{
		{"no digits", `{"office_id":"BKL-01"}`, `{"office_id":"BKL-01"}`},
		{"a NIK", `1771014101900001`, r},
		{"a NIK in a JSON field", `{"nik":"1771014101900001","type":"activation"}`, `{"nik":"` + r + `","type":"activation"}`},
		{"a NIK as a JSON number", `{"nik":1771014101900001}`, `{"nik":` + r + `}`},
		{"a NIK inside a word", `office-X1771014101900001Y`, `office-X` + r + `Y`},
		{"longer runs go whole", `17710141019000012345`, r},
		{"15 digits stay", `177101410190000`, `177101410190000`},
		{"spaces", `NIK 1771 0141 0190 0001.`, `NIK ` + r + `.`},
		{"the NIK's own groups", `17.71.01.410190.0001`, r},
		{"dashes", `1771-0141-0190-0001`, r},
		{"spaced dash", `1771 - 0141 - 0190 - 0001`, r},
		{"underscores and slashes", `1771_0141/0190_0001`, r},
		{"four separators break the run", `17710141    01900001`, `17710141    01900001`},
		{"a colon breaks the run", `17710141:01900001`, `17710141:01900001`},
		{"JSON-escaped digits", `"\u0031\u0037710141019000\u00301"`, `"` + r + `"`},
		{"JSON-escaped slash", `17710141\/01900001`, r},
		{"full-width digits", `１７７１０１４１０１９００００１`, r},
		{"Arabic-Indic digits with a no-break space", "١٧٧١٠١٤١\u00a0٠١٩٠٠٠٠١", r},
		{"two runs", `a 1771014101900001 b 1871011512050001 c`, `a ` + r + ` b ` + r + ` c`},
		{"a time", `2023-02-13T09:30:00.123+07:00`, `2023-02-13T09:30:00.123+07:00`},
		{"a NIK hidden in a time's fraction", `2023-02-13T09:30:00.1771014101900001Z`, `2023-02-13T09:30:` + r + `Z`},
		{"region codes", `"17","17.71","17.71.01"`, `"17","17.71","17.71.01"`},
		{"separators around are kept", ` 1771014101900001 `, ` ` + r + ` `},
		{"a lone backslash", `\u12`, `\u12`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := Redact([]byte(tt.text))
			if string(got) != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.text, got, tt.want)
			}
			if changed := tt.text != tt.want; (n > 0) != changed {
				t.Errorf("Redact(%q) counted %d runs", tt.text, n)
			}
			if HasRun(tt.text) != (n > 0) {
				t.Errorf("HasRun(%q) = %v, want %v", tt.text, !(n > 0), n > 0)
			}
		})
	}
}

func TestRedactLeavesItsInputAlone(t *testing.T) {
	in := []byte("x 1771014101900001")
	Redact(in)
	if string(in) != "x 1771014101900001" {
		t.Errorf("input changed to %q", in)
	}
}

// FuzzRedact: what Redact returns holds no run, and text without one comes
// back as it was.
func FuzzRedact(f *testing.F) {
	for _, seed := range []string{"1771014101900001", `{"nik":"1771 0141 0190 0001"}`, `\u0031\u0037710141019000\u00301`, "１７７１０１４１０１９００００１", "2023-02-13T09:30:00Z"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		out, n := Redact(text)
		if rest := Runs(out); len(rest) != 0 {
			t.Fatalf("Redact(%q) = %q still holds %d runs", text, out, len(rest))
		}
		if n == 0 && string(out) != string(text) {
			t.Fatalf("Redact(%q) changed text without a run: %q", text, out)
		}
	})
}
