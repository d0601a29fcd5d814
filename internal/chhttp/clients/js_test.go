// Package clients_test runs the official ClickHouse clients that analysts use
// against the embedded warehouse front, as the programs they are: the JS
// client under node. A missing node or npm fails the test: CI must not pass
// without having run the client.
package clients_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// jsClientVersion is the pinned @clickhouse/client, with its integrity in
// testdata/package-lock.json.
const jsClientVersion = "1.23.1"

func TestOfficialJSClientKeepsSessionsReadonlyAndParametersApart(t *testing.T) {
	modules := jsClient(t)
	url := testenv.WarehouseDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "sessions.cjs"), url)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	t.Logf("node testdata/sessions.cjs %s:\n%s", url, out)
	if err != nil {
		t.Fatalf("the JS client's run failed: %v", err)
	}
	// Every check must have run and passed, not only the script have ended well.
	for _, want := range []string{
		"ok ping",
		"ok a SET stays in its session_id",
		"ok a temporary table lives in its session only",
		"ok a per-query session_id overrides the client's",
		"ok readonly=1 limits its own client only",
		"ok query parameters are bound, not pasted",
	} {
		if !bytes.Contains(out, []byte(want+"\n")) {
			t.Errorf("the run did not report %q", want)
		}
	}
}

// jsClient returns the node_modules directory holding the pinned JS client,
// installing it with `npm ci` (which checks the lock file's integrity) into
// the user's cache the first time.
func jsClient(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the official ClickHouse JS client (install Node.js >= 20): %v", tool, err)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "ikd", "npm", "clickhouse-client-"+jsClientVersion)
	modules := filepath.Join(dir, "node_modules")
	if installed(modules) == jsClientVersion {
		return modules
	}
	partial, err := os.MkdirTemp(filepath.Dir(dir), "clickhouse-client-partial-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			t.Fatal(err)
		}
		if partial, err = os.MkdirTemp(filepath.Dir(dir), "clickhouse-client-partial-"); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(partial)
	for _, f := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(partial, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = partial
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci of @clickhouse/client@%s: %v\n%s", jsClientVersion, err, out)
	}
	// Another test process may have installed it meanwhile: either copy will do.
	if err := os.Rename(partial, dir); err != nil && installed(modules) != jsClientVersion {
		t.Fatalf("install @clickhouse/client@%s into %s: %v", jsClientVersion, dir, err)
	}
	if got := installed(modules); got != jsClientVersion {
		t.Fatalf("@clickhouse/client in %s is %q after the install, want %s", modules, got, jsClientVersion)
	}
	return modules
}

// installed is the version of @clickhouse/client in modules, "" if none.
func installed(modules string) string {
	data, err := os.ReadFile(filepath.Join(modules, "@clickhouse", "client", "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct{ Version string }
	if json.Unmarshal(data, &pkg) != nil {
		return ""
	}
	return pkg.Version
}
