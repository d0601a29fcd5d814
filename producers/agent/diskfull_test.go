package agent

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// TestAFullDiskAnswers507AndTakesEventsAgainOnceThereIsSpace fills a real
// file system: a 256 KiB tmpfs, which needs the right to mount (root), so it
// runs only with IKD_DISKFULL=1 (make diskfull); there, failing to mount is a
// failure. Without it, the spool's limit stands in for the disk in
// TestAFullSpoolAnswers507KeepsWhatItAcceptedAndTakesEventsAgainOnceForwarded.
func TestAFullDiskAnswers507AndTakesEventsAgainOnceThereIsSpace(t *testing.T) {
	if os.Getenv("IKD_DISKFULL") != "1" {
		t.Skip("mounts a tmpfs: run with IKD_DISKFULL=1 as root (make diskfull)")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", mnt, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, 0) })
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 200<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	// The limit is far above the disk: the disk is what fills.
	n := startAgent(t, officeA, filepath.Join(mnt, "spool"), 1<<30, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	accepted := 0
	for i := 0; ; i++ {
		status, r, header := n.post("application/x-ndjson", lines(officeA, i, i+1))
		if status == http.StatusInsufficientStorage {
			if !strings.Contains(r.Error, "disk") || len(r.NotTaken) != 1 || header.Get("Retry-After") == "" {
				t.Errorf("507 answer %+v; want the full disk named, the event not taken and when to retry", r)
			}
			break
		}
		if status != http.StatusAccepted || i > 10000 {
			t.Fatalf("event %d: status %d: %+v", i, status, r)
		}
		accepted++
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	n.postOK(lines(officeA, accepted+1, accepted+2))
	if s := n.status(); s.WaitingEvents != accepted+1 {
		t.Errorf("%d events waiting, want the %d accepted before the disk filled and the one after", s.WaitingEvents, accepted+1)
	}
	n.stop()
	// Reopened, the spool holds them all, nothing torn.
	n = startAgent(t, officeA, filepath.Join(mnt, "spool"), 1<<30, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	if s := n.status(); s.WaitingEvents != accepted+1 {
		t.Errorf("after a restart, %d events waiting, want %d", s.WaitingEvents, accepted+1)
	}
}
