package events

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sixteenDigits is the shape of a NIK; no error message has any reason to hold
// one.
var sixteenDigits = regexp.MustCompile(`[0-9]{16}`)

// The seeds are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	v := validator(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := v.Decode(data)
		if err != nil {
			if !errors.As(err, new(*Error)) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded event: %v", err)
		}
		again, err := v.Decode(out)
		if err != nil {
			t.Fatalf("Decode(Marshal(e)): %v\n%s", err, out)
		}
		if again != e {
			t.Fatalf("Decode(Marshal(e)) =\n%+v, want\n%+v", again, e)
		}
	})
}

// The seeds are in testdata/fuzz/FuzzBuild.
func FuzzBuild(f *testing.F) {
	b, v := builder(f), validator(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := b.Build(line)
		if err != nil {
			if !errors.As(err, new(*Error)) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if sixteenDigits.MatchString(err.Error()) {
				t.Fatalf("error %q may hold a NIK", err)
			}
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a built event: %v", err)
		}
		var in struct{ NIK string }
		if err := json.Unmarshal(line, &in); err != nil || strings.Contains(string(out), in.NIK) {
			t.Fatalf("the event %s holds the NIK, or the line did not hold one (%v)", out, err)
		}
		// What a producer sends, a consumer accepts unchanged.
		decoded, err := v.Decode(out)
		if err != nil {
			t.Fatalf("Decode(Build(line)): %v\n%s", err, out)
		}
		if decoded != e {
			t.Fatalf("Decode(Build(line)) =\n%+v, want\n%+v", decoded, e)
		}
	})
}

// TestFuzzSeedsAreWhatTheirNamesSay keeps the committed corpus meaningful:
// seeds named valid-* must pass and invalid-* must fail.
func TestFuzzSeedsAreWhatTheirNamesSay(t *testing.T) {
	b, v := builder(t), validator(t)
	targets := map[string]func([]byte) error{
		"FuzzBuild":  func(data []byte) error { _, err := b.Build(data); return err },
		"FuzzDecode": func(data []byte) error { _, err := v.Decode(data); return err },
	}
	for target, run := range targets {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no seeds (%v)", target, err)
		}
		for _, file := range files {
			data := readSeed(t, file)
			err := run(data)
			if valid := strings.HasPrefix(filepath.Base(file), "valid-"); valid != (err == nil) {
				t.Errorf("%s: error %v", file, err)
			}
		}
	}
}

// readSeed reads a corpus file holding one []byte value.
func readSeed(t *testing.T, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	header, value, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	quoted, ok := strings.CutPrefix(value, "[]byte(")
	quoted, ok2 := strings.CutSuffix(quoted, ")")
	s, err := strconv.Unquote(quoted)
	if header != "go test fuzz v1" || !ok || !ok2 || err != nil {
		t.Fatalf("%s: not a corpus file of one []byte", file)
	}
	return []byte(s)
}

// FuzzPlainParserAgreesWithTheGeneralOne: whatever the fast path accepts,
// the general parser accepts too, with the same members.
func FuzzPlainParserAgreesWithTheGeneralOne(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"event_id":"a","type":"activation"}`,
		` { "v" : -12 , "type" : "x" } `,
		`{"v":01}`, `{"v":1.5}`, `{"type":"a\"b"}`, `{"type":"a","type":"b"}`, `{}`, `{"nik":null,"v":true}`,
		`{"v":1}{"v":2}`, `{"unknown":1}`, `{"v":[1,2]}`, "{\"type\":\"\t\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := parsePlain(data, eventFields)
		if !ok {
			return
		}
		slow, err := parseAny(data, eventFields)
		if err != nil {
			t.Fatalf("plain parser accepted %q, general parser refused: %v", data, err)
		}
		if len(fast) != len(slow) {
			t.Fatalf("%q: %d members plain, %d general", data, len(fast), len(slow))
		}
		for k, v := range slow {
			if string(fast[k]) != string(v) {
				t.Fatalf("%q: member %s is %q plain, %q general", data, k, fast[k], v)
			}
		}
	})
}
