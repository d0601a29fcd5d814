package nik

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// KeyBytes is the shortest secret key accepted outside a development run:
// 256 bits, so that guessing the key is no shortcut to trying every NIK.
const KeyBytes = 32

// KeyHint says how to make a key that the policy accepts.
const KeyHint = "make one with: openssl rand -hex 32"

// ParseKey reads a secret pseudonym key written as hex or base64 (standard or
// URL alphabet, padded or not) and refuses one that is short or weak. Hex is
// tried first, as every hex string is also base64.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no key; " + KeyHint)
	}
	if s == DevelopmentKey {
		return nil, errors.New("the public development key protects nobody; " + KeyHint)
	}
	key, err := decodeKey(s)
	if err != nil {
		return nil, err
	}
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

func decodeKey(s string) ([]byte, error) {
	if len(s)%2 == 0 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) >= KeyBytes && !mixedCase(s) {
				// 43 base64 digits of random bytes lack a case with a
				// probability of 1e-10; typed words decode to noise that
				// the byte tests would pass.
				return nil, errors.New("base64 of typed text, not of random bytes; " + KeyHint)
			}
			return b, nil
		}
	}
	return nil, errors.New("not hex or base64; " + KeyHint)
}

func mixedCase(s string) bool {
	return strings.ContainsFunc(s, unicode.IsUpper) && strings.ContainsFunc(s, unicode.IsLower)
}

// CheckKey refuses a key that is short or that shows a pattern no random key
// of its length shows but by astronomical chance: a key a person typed or a
// program filled in is guessable, whatever its length.
func CheckKey(key []byte) error {
	if len(key) < KeyBytes {
		return fmt.Errorf("%d bytes, want at least %d random bytes; %s", len(key), KeyBytes, KeyHint)
	}
	if weak := weakness(key); weak != "" {
		return fmt.Errorf("weak key (%s); %s", weak, KeyHint)
	}
	return nil
}

// weakness names the first pattern found in key, or returns "". Each test
// passes 32 random bytes except with a probability below 1e-12.
func weakness(key []byte) string {
	if p := period(key); p > 0 {
		return fmt.Sprintf("repeats itself every %d bytes", p)
	}
	if progression(key) {
		return "each byte follows the last by the same step"
	}
	distinct := map[byte]bool{}
	printable := true
	for _, b := range key {
		distinct[b] = true
		printable = printable && b >= 0x20 && b <= 0x7e
	}
	if printable {
		// (95/256)^32 is about 2e-14: this is text, such as a passphrase or a
		// hex string encoded once more.
		return "plain text, not random bytes"
	}
	// 32 random bytes hold about 30 distinct values; fewer than half is a
	// pattern. The cap keeps long keys to a fair bar.
	if want := min(len(key)/2, 64); len(distinct) < want {
		return fmt.Sprintf("only %d distinct byte values", len(distinct))
	}
	return ""
}

// period returns the shortest p <= len/2 with key[i] == key[i-p] throughout,
// or 0.
func period(key []byte) int {
	for p := 1; p <= len(key)/2; p++ {
		repeats := true
		for i := p; i < len(key) && repeats; i++ {
			repeats = key[i] == key[i-p]
		}
		if repeats {
			return p
		}
	}
	return 0
}

// progression reports bytes that rise or fall by one step, such as 00 01 02.
func progression(key []byte) bool {
	step := key[1] - key[0]
	for i := 2; i < len(key); i++ {
		if key[i]-key[i-1] != step {
			return false
		}
	}
	return true
}

// KeyFileName is where ikd-dev keeps the key it made, in its data directory.
const KeyFileName = "pseudonym.key"

// DevelopmentKeyFile returns the key kept in path as hex, making a random one
// there (mode 0600) on first use, so that a development box never pseudonymises
// with a public key and keeps its pseudonyms across restarts.
func DevelopmentKeyFile(path string) ([]byte, error) {
	text, err := os.ReadFile(path)
	if err == nil {
		key, err := ParseKey(string(text))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key file: %w", err)
	}
	key := make([]byte, KeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	// O_EXCL: two starts racing keep one key, the second reads it back.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return DevelopmentKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// keyIDBytes is how much of the key id's HMAC is kept: 48 bits tell a
// deployment's few keys apart, and 12 hex digits can never be read as a NIK.
const keyIDBytes = 6

// KeyID names key without revealing it: the lowercase hex of the first 6
// bytes of HMAC-SHA256(key, "key-id"). The "key-id" label keeps it apart from
// pseudonyms and event sums.
func KeyID(key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("key-id"))
	return hex.EncodeToString(mac.Sum(nil)[:keyIDBytes])
}

// ConfiguredKey applies the key policy to a configured value. A development
// run may go without a key, or give the DevelopmentKey, and then gets the
// public development key (public is true: say so); any other key, and every
// key outside a development run, must pass ParseKey.
func ConfiguredKey(value string, development bool) (key []byte, public bool, err error) {
	if development && (value == "" || value == DevelopmentKey) {
		return []byte(DevelopmentKey), true, nil
	}
	key, err = ParseKey(value)
	return key, false, err
}
