package nik

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// DevelopmentKey is the pseudonym key of embedded and development mode. It is
// public, so pseudonyms made with it protect nothing: only a development run
// takes it (see ParseKey for every other run).
const DevelopmentKey = "ikd-development-key-not-for-production"

// minKeyBytes is the shortest key accepted: whoever guesses the key can reverse
// every pseudonym by trying all possible NIKs.
const minKeyBytes = 16

// pseudonymBytes is how much of the HMAC a pseudonym keeps: 128 bits make
// collisions negligible and keep the ids short.
const pseudonymBytes = 16

// Pseudonymizer turns NIKs into keyed pseudonyms. A plain hash would not do:
// NIKs are few enough to hash them all. It is safe for concurrent use.
type Pseudonymizer struct {
	key   []byte
	keyID string
}

// NewPseudonymizer returns a Pseudonymizer with its own copy of key, which must
// have at least 16 bytes.
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) < minKeyBytes {
		return nil, fmt.Errorf("nik: pseudonym key has %d bytes, want at least %d", len(key), minKeyBytes)
	}
	return &Pseudonymizer{key: append([]byte(nil), key...), keyID: KeyID(key)}, nil
}

// KeyID names the key this Pseudonymizer uses (see KeyID), for events to say
// which key made them.
func (p *Pseudonymizer) KeyID() string { return p.keyID }

// Resident returns the resident's pseudonym: the lowercase hex of the first 16
// bytes of HMAC-SHA256(key, "resident\x00"+nik), 32 characters.
func (p *Pseudonymizer) Resident(nik string) string { return p.sum("resident", nik) }

// Sum returns the lowercase hex of the first 16 bytes of
// HMAC-SHA256(key, "event\x00"+parts joined by "\x00"), for ids derived from
// events. The "event" and "resident" prefixes keep the two kinds of sum apart.
func (p *Pseudonymizer) Sum(parts ...string) string { return p.sum("event", parts...) }

func (p *Pseudonymizer) sum(domain string, parts ...string) string {
	// A new HMAC per call is what makes the Pseudonymizer safe to share.
	mac := hmac.New(sha256.New, p.key)
	io.WriteString(mac, domain+"\x00"+strings.Join(parts, "\x00"))
	return hex.EncodeToString(mac.Sum(nil)[:pseudonymBytes])
}
