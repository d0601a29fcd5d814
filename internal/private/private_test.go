package private

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirTakesGroupAndOtherPermissionsFromEverythingUnderIt(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "var")
	outside := filepath.Join(root, "outside.txt")
	for _, d := range []string{data, filepath.Join(data, "nats", "jetstream"), filepath.Join(data, "clickhouse")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o775); err != nil {
			t.Fatal(err)
		}
	}
	for path, mode := range map[string]os.FileMode{
		filepath.Join(data, "pseudonym.key"):          0o644,
		filepath.Join(data, "nats", "jetstream", "m"): 0o666,
		filepath.Join(data, "clickhouse", "ro"):       0o444,
		outside:                                       0o644,
	} {
		if err := os.WriteFile(path, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}

	if err := Dir(data); err != nil {
		t.Fatal(err)
	}
	shared, err := Shared(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != 0 {
		t.Errorf("still shared: %v", shared)
	}
	if info, _ := os.Stat(filepath.Join(data, "clickhouse", "ro")); info.Mode().Perm() != 0o400 {
		t.Errorf("a read-only file became %v, want 0400: only the group's and others' bits go", info.Mode().Perm())
	}
	if info, _ := os.Stat(outside); info.Mode().Perm() != 0o644 {
		t.Errorf("the target of a link was changed to %v", info.Mode().Perm())
	}
}

func TestDirMakesAMissingDirectoryPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Dir(dir); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("stat: %v, %v; want mode 0700", info, err)
	}
}
