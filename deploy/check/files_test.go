package check

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// root is the repository, seen from this package's directory.
const root = "../.."

// deployFiles lists the files under deploy/ whose names match pattern
// (filepath.Match on the base name), as paths from the repository root.
func deployFiles(t *testing.T, pattern string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ok, _ := filepath.Match(pattern, d.Name()); ok && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var documentSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// documents splits a YAML stream into its documents, without the empty ones.
func documents(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range documentSeparator.Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// decodeStrict decodes YAML into v, refusing any field v does not have and
// any key given twice.
func decodeStrict(doc []byte, v any) error {
	return yaml.UnmarshalStrict(bytes.TrimSpace(doc), v)
}

// decodeLoose decodes YAML into v, ignoring fields v does not have: for
// reading a document's kind before decoding it strictly.
func decodeLoose(doc []byte, v any) error {
	return yaml.Unmarshal(bytes.TrimSpace(doc), v)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// structTag is a Go struct tag, read as reflect reads it.
type structTag = reflect.StructTag

// newScanTarget is a pointer to a new value of t, for rows.Scan.
func newScanTarget(t reflect.Type) any { return reflect.New(t).Interface() }

func deref(p any) any { return reflect.ValueOf(p).Elem().Interface() }
