package nik

import (
	"regexp"
	"sync"
	"testing"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func pseudonymizer(t *testing.T, key string) *Pseudonymizer {
	t.Helper()
	p, err := NewPseudonymizer([]byte(key))
	if err != nil {
		t.Fatalf("NewPseudonymizer: %v", err)
	}
	return p
}

// The expected values were computed independently with Python's hmac module.
func TestPseudonymsMatchTheirDefinition(t *testing.T) {
	p := pseudonymizer(t, DevelopmentKey)
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"resident", p.Resident("1771014101900001"), "a56d4d1ebd5fc6e37e5a80aca72347eb"},
		{"sum of parts", p.Sum("v1", "activation", "1771014101900001", "3171-DKI-01", "2023-02-13T09:30:00+07:00", "counter"),
			"2043a6c4456d62986d677c65d36e3373"},
		{"sum of nothing", p.Sum(), "2e968ea82024837446bf0443557752b0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestPseudonymsAreDeterministicAndKeyed(t *testing.T) {
	const n = "1771014101900001"
	a := pseudonymizer(t, DevelopmentKey)
	b := pseudonymizer(t, DevelopmentKey)
	other := pseudonymizer(t, "another-key-of-16-bytes-or-more")
	if a.Resident(n) != b.Resident(n) {
		t.Error("same key, same NIK, different pseudonyms")
	}
	if a.Resident(n) == other.Resident(n) {
		t.Error("different keys gave the same pseudonym")
	}
	if a.Resident(n) == a.Resident("1771014101900002") {
		t.Error("different NIKs gave the same pseudonym")
	}
	if a.Resident(n) == a.Sum(n) {
		t.Error("a resident pseudonym equals an event sum of the same NIK")
	}
	if a.Sum("ab", "c") == a.Sum("a", "bc") {
		t.Error("parts are not separated")
	}
	for _, s := range []string{a.Resident(n), a.Resident(""), a.Sum(n, "x")} {
		if !hex32.MatchString(s) {
			t.Errorf("%q is not 32 lowercase hex characters", s)
		}
	}
}

func TestNewPseudonymizerKeyLength(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		wantErr bool
	}{
		{"empty key", "", true},
		{"15 bytes", "123456789012345", true},
		{"16 bytes", "1234567890123456", false},
		{"development key", DevelopmentKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPseudonymizer([]byte(tt.key))
			if (err != nil) != tt.wantErr {
				t.Errorf("NewPseudonymizer error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestPseudonymizerKeepsItsOwnKey(t *testing.T) {
	key := []byte(DevelopmentKey)
	p, err := NewPseudonymizer(key)
	if err != nil {
		t.Fatal(err)
	}
	before := p.Resident("1771014101900001")
	key[0] ^= 0xff
	if p.Resident("1771014101900001") != before {
		t.Error("changing the caller's key slice changed the pseudonyms")
	}
}

func TestPseudonymizerIsSafeForConcurrentUse(t *testing.T) {
	p := pseudonymizer(t, DevelopmentKey)
	want := p.Resident("1771014101900001")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if got := p.Resident("1771014101900001"); got != want {
					t.Errorf("concurrent Resident = %s, want %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
