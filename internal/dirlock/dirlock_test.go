package dirlock

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestSecondOpenerIsRefusedUntilRelease(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second Acquire in this
	// process contends just as another process would.
	if _, err := Acquire(dir); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second acquire: %v", err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again.Release()
}

func TestLockDiesWithItsProcess(t *testing.T) {
	if os.Getenv("DIRLOCK_CHILD") != "" {
		if _, err := Acquire(os.Getenv("DIRLOCK_CHILD")); err != nil {
			os.Exit(3)
		}
		os.Exit(0) // exits holding the lock
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=TestLockDiesWithItsProcess")
	cmd.Env = append(os.Environ(), "DIRLOCK_CHILD="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("lock left behind by an exited process: %v", err)
	}
	l.Release()
}
