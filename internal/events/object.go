package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"unicode/utf8"
)

// object is the members of one JSON object, each value still encoded.
type object map[string]json.RawMessage

// plainName is a field name that is safe to repeat in an error: it has no
// digits, so it cannot be a NIK sent as a key.
var plainName = regexp.MustCompile(`^[A-Za-z_]{1,64}$`)

// parseObject reads data, which must be at most MaxMessageBytes long and
// exactly one JSON object with no keys but known ones.
//
// It is stricter than encoding/json on purpose, to accept only what the JSON
// Schema accepts: keys match exactly (encoding/json folds case), a key may
// appear once (encoding/json keeps the last), and nothing may follow the
// object. Syntax errors win over unknown or repeated keys.
func parseObject(data []byte, known []string) (object, error) {
	if len(data) > MaxMessageBytes {
		return nil, &Error{Reason: ReasonOversized, Detail: fmt.Sprintf("%d bytes, limit %d", len(data), MaxMessageBytes)}
	}
	if !utf8.Valid(data) {
		return nil, &Error{Reason: ReasonMalformedJSON, Detail: "not UTF-8"}
	}
	if obj, ok := parsePlain(data, known); ok {
		return obj, nil
	}
	return parseAny(data, known)
}

// parseAny is the general parser behind parseObject: it accepts any JSON and
// words every error; parsePlain takes the common case faster.
func parseAny(data []byte, known []string) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	if tok != json.Delim('{') {
		return nil, &Error{Reason: ReasonMalformedJSON, Detail: "not a JSON object"}
	}
	obj := make(object, len(known))
	var keyErr error
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, _ := tok.(string) // inside an object the decoder yields keys as strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err)
		}
		if _, dup := obj[key]; keyErr == nil && dup {
			keyErr = &Error{Reason: ReasonMalformedJSON, Field: key, Detail: "key appears twice"}
		}
		if keyErr == nil && !slices.Contains(known, key) {
			keyErr = unknownField(key)
		}
		obj[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &Error{Reason: ReasonMalformedJSON, Detail: "data after the object"}
	}
	if keyErr != nil {
		return nil, keyErr
	}
	return obj, nil
}

func unknownField(key string) *Error {
	if !plainName.MatchString(key) {
		return &Error{Reason: ReasonUnknownField, Detail: "a field whose name is not shown"}
	}
	return &Error{Reason: ReasonUnknownField, Field: key}
}

// syntaxError reports where the JSON broke but not what it held, since
// encoding/json's messages may quote values.
func syntaxError(err error) *Error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &Error{Reason: ReasonMalformedJSON, Detail: fmt.Sprintf("syntax error at byte %d", se.Offset)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Reason: ReasonMalformedJSON, Detail: "unexpected end of input"}
	default:
		return &Error{Reason: ReasonMalformedJSON, Detail: "invalid JSON"}
	}
}

// parsePlain reads the shape every valid event has, an object of known,
// distinct, unescaped keys whose values are strings without escapes, integers
// or literals, without allocating more than the object. Anything else, valid
// or not, is left to parseAny (ok false), which decides and words the error,
// so both accept and refuse exactly the same inputs.
func parsePlain(data []byte, known []string) (obj object, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	obj = make(object, len(known))
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		return obj, skipSpace(data, i+1) == len(data)
	}
	for {
		end, ok := plainString(data, i)
		if !ok {
			return nil, false
		}
		key := knownKey(data[i+1:end-1], known)
		if _, dup := obj[key]; key == "" || dup {
			return nil, false
		}
		if i = skipSpace(data, end); i == len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		if end, ok = plainValue(data, i); !ok {
			return nil, false
		}
		obj[key] = data[i:end]
		switch i = skipSpace(data, end); {
		case i < len(data) && data[i] == ',':
			i = skipSpace(data, i+1)
		case i < len(data) && data[i] == '}':
			return obj, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString returns the end of the string starting at i, if it is one
// without escapes or control characters.
func plainString(data []byte, i int) (end int, ok bool) {
	if i == len(data) || data[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\' || c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// plainValue returns the end of a plain string, an integer without leading
// zeros, or a literal starting at i.
func plainValue(data []byte, i int) (end int, ok bool) {
	if i == len(data) {
		return 0, false
	}
	switch c := data[i]; {
	case c == '"':
		return plainString(data, i)
	case c == '-' || c >= '0' && c <= '9':
		j := i
		if c == '-' {
			j++
		}
		start := j
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			j++
		}
		if j == start || data[start] == '0' && j-start > 1 {
			return 0, false
		}
		return j, true
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(data[i:], []byte(lit)) {
			return i + len(lit), true
		}
	}
	return 0, false
}

// knownKey returns the element of known equal to name, or "".
func knownKey(name []byte, known []string) string {
	for _, k := range known {
		if string(name) == k {
			return k
		}
	}
	return ""
}

// text returns the string member field; ok is false when it is absent. null
// is not a string, as in the schema.
func (o object) text(field string) (s string, ok bool, err error) {
	raw, ok := o[field]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", true, invalid(field, "not a JSON string")
	}
	if _, plain := plainString(raw, 0); plain {
		return string(raw[1 : len(raw)-1]), true, nil
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", true, invalid(field, "not a JSON string")
	}
	return s, true, nil
}

// required returns the string member field, which must be present.
func (o object) required(field string) (string, error) {
	s, ok, err := o.text(field)
	if err == nil && !ok {
		err = &Error{Reason: ReasonMissingField, Field: field}
	}
	return s, err
}
