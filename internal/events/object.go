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
// exactly one JSON object with no other keys than known. It is stricter than encoding/json on purpose, to accept what
// the JSON Schema accepts: keys match exactly (encoding/json folds case), a key
// may appear once (encoding/json keeps the last) and nothing may follow the
// object. Syntax errors win over unknown or repeated keys.
func parseObject(data []byte, known []string) (object, error) {
	if len(data) > MaxMessageBytes {
		return nil, &Error{Reason: ReasonOversized, Detail: fmt.Sprintf("%d bytes, limit %d", len(data), MaxMessageBytes)}
	}
	if !utf8.Valid(data) {
		return nil, &Error{Reason: ReasonMalformedJSON, Detail: "not UTF-8"}
	}
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

// text returns the string member field; ok is false when it is absent. null
// is not a string, as in the schema.
func (o object) text(field string) (s string, ok bool, err error) {
	raw, ok := o[field]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
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
