package spool

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/events/eventstest"
	"github.com/ikd-pipeline/ikd/internal/private"
)

func TestTheSpoolDirectoryAndItsFilesArePrivateToTheUser(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	// As an earlier version, or a careless copy, left it.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, 1<<20)
	appendAll(t, s, eventstest.Activations("private", 10))
	closeSpool(t, s)
	shared, err := private.Shared(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != 0 {
		t.Errorf("the group or others may use: %v", shared)
	}
}
