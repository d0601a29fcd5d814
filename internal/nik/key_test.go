package nik

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// randomKey is 32 bytes from crypto/rand, written down once so that the
// table below is fixed.
const randomKey = "5f0c9a1be37d4286c1e9f04a7b2d6538e0a4c7f19b3d5e7260184c9fa2b3d6e1"

func TestParseKeyAcceptsRandomKeysInHexOrBase64(t *testing.T) {
	want, _ := hex.DecodeString(randomKey)
	long := strings.Repeat(randomKey, 2)[:64] + "9c2e7a01b4d8f3a6"
	tests := []struct{ name, text string }{
		{"hex", randomKey},
		{"upper-case hex", strings.ToUpper(randomKey)},
		{"hex with a newline, as from a file", randomKey + "\n"},
		{"base64", base64.StdEncoding.EncodeToString(want)},
		{"unpadded base64", base64.RawStdEncoding.EncodeToString(want)},
		{"url-safe base64", base64.URLEncoding.EncodeToString(want)},
		{"longer than 32 bytes", long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKey(tt.text)
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if tt.name != "longer than 32 bytes" && !bytes.Equal(key, want) {
				t.Errorf("key %x, want %x", key, want)
			}
		})
	}
}

func TestParseKeyRefusesMissingShortAndWeakKeys(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(3 * i)
	}
	// The random key's bytes folded onto 12 values: no period, no step.
	fewValues, _ := hex.DecodeString(randomKey)
	for i, b := range fewValues {
		fewValues[i] = 0x80 + b%12
	}
	tests := []struct{ name, text, want string }{
		{"unset", "", "no key"},
		{"the development key", DevelopmentKey, "public development key"},
		{"a passphrase", "correct horse battery staple, but longer", "not hex or base64"},
		{"a passphrase that is valid base64", "thisisaverylongpassphrasethatisvalidbase64xy", "typed text"},
		{"16 random bytes", randomKey[:32], "16 bytes, want at least 32"},
		{"31 random bytes", randomKey[:62], "31 bytes"},
		{"all zero", strings.Repeat("00", 32), "repeats itself every 1 bytes"},
		{"all one byte", strings.Repeat("ab", 40), "repeats itself every 1 bytes"},
		{"a short pattern repeated", strings.Repeat("deadbeef", 8), "repeats itself every 4 bytes"},
		{"a random half repeated", randomKey[:32] + randomKey[:32], "repeats itself every 16 bytes"},
		{"a counting sequence", hex.EncodeToString(seq), "same step"},
		{"few distinct values", hex.EncodeToString(fewValues), "distinct byte values"},
		{"text written as hex", hex.EncodeToString([]byte("my-very-secret-pseudonym-key-2023")), "plain text"},
		{"a hex key encoded again as base64", b64([]byte(randomKey)), "plain text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKey(tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseKey = %v, want an error saying %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), KeyHint) {
				t.Errorf("error %q does not say how to make a key", err)
			}
			if tt.text != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.text)) {
				t.Errorf("error repeats the key: %v", err)
			}
		})
	}
}

func TestKeyIDNamesTheKeyWithoutRevealingIt(t *testing.T) {
	key, _ := hex.DecodeString(randomKey)
	// Computed independently with Python's hmac module.
	if got, want := KeyID([]byte(DevelopmentKey)), "d30034884a76"; got != want {
		t.Errorf("KeyID(DevelopmentKey) = %s, want %s", got, want)
	}
	p := pseudonymizer(t, string(key))
	if p.KeyID() != KeyID(key) || len(p.KeyID()) != 12 {
		t.Errorf("Pseudonymizer.KeyID = %q, want KeyID(key) = %q", p.KeyID(), KeyID(key))
	}
	if KeyID(key) == KeyID([]byte(DevelopmentKey)) {
		t.Error("two keys have one id")
	}
	if strings.Contains(randomKey, p.KeyID()) {
		t.Error("the key id is a piece of the key")
	}
}

func TestDevelopmentKeyFileIsMadeOncePrivateAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", KeyFileName)
	first, err := DevelopmentKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckKey(first); err != nil {
		t.Errorf("made a weak key: %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}
	again, err := DevelopmentKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("a second start made a new key; the pseudonyms would change")
	}
}

func TestDevelopmentKeyFileRefusesAWeakKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFileName)
	if err := os.WriteFile(path, []byte(strings.Repeat("00", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := DevelopmentKeyFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("DevelopmentKeyFile = %v, want an error naming the file", err)
	}
}

func TestOnlyADevelopmentRunGoesWithoutASecretKey(t *testing.T) {
	secret, _ := hex.DecodeString(randomKey)
	tests := []struct {
		name        string
		value       string
		development bool
		want        []byte
		public      bool
		err         string
	}{
		{"development, unset", "", true, []byte(DevelopmentKey), true, ""},
		{"development, the development key", DevelopmentKey, true, []byte(DevelopmentKey), true, ""},
		{"development, a secret key", randomKey, true, secret, false, ""},
		{"development, a weak key", strings.Repeat("00", 32), true, nil, false, "weak key"},
		{"production, unset", "", false, nil, false, "no key"},
		{"production, the development key", DevelopmentKey, false, nil, false, "public development key"},
		{"production, a secret key", randomKey, false, secret, false, ""},
		{"production, a short key", randomKey[:40], false, nil, false, "20 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, public, err := ConfiguredKey(tt.value, tt.development)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(key, tt.want) || public != tt.public {
				t.Errorf("ConfiguredKey = %q, %v, %v; want %q, %v", key, public, err, tt.want, tt.public)
			}
		})
	}
}

func TestRandomKeysPassThePolicyInEveryEncoding(t *testing.T) {
	for i := range 20000 {
		key := make([]byte, KeyBytes+i%3)
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key)} {
			if _, err := ParseKey(text); err != nil {
				t.Fatalf("random key %s refused: %v", text, err)
			}
		}
	}
}
