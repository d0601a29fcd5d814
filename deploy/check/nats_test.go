package check

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// placeholderHash stands for a bcrypt hash the deployment takes from a secret.
const placeholderHash = "$2a$11$placeholderplaceholderplaceholderplaceholderplacehold"

// unquotedVariable finds a configuration's references to variables
// (`password: $IKD_NATS_ADMIN_HASH`); quoted "$JS.API..." subjects are not.
var unquotedVariable = regexp.MustCompile(`(?m)[:=]\s*(?:<<\s*)?\$([A-Za-z_][A-Za-z0-9_]*)`)

var includeLine = regexp.MustCompile(`(?m)^\s*include\s+["']?([^"'\s]+)`)

// natsConfigs are the nats-server configurations under deploy/: every
// *.conf that no other includes (node.conf and authorization.conf are
// parts of others) and that, with what it includes, sets up JetStream.
func natsConfigs(t *testing.T) []string {
	t.Helper()
	files := deployFiles(t, "*.conf")
	included := map[string]bool{}
	for _, f := range files {
		for _, inc := range includes(t, f) {
			included[filepath.Clean(inc)] = true
		}
	}
	var confs []string
	for _, f := range files {
		if !included[filepath.Clean(f)] && strings.Contains(confText(t, f), "jetstream") {
			confs = append(confs, f)
		}
	}
	if len(confs) == 0 {
		t.Fatal("no NATS configuration under deploy/")
	}
	return confs
}

// includes are the paths of the files conf includes, relative to its
// directory as nats-server resolves them.
func includes(t *testing.T, conf string) []string {
	t.Helper()
	var out []string
	for _, m := range includeLine.FindAllStringSubmatch(string(read(t, conf)), -1) {
		out = append(out, filepath.Join(filepath.Dir(conf), m[1]))
	}
	return out
}

// confText is conf's text and that of every file it includes that exists
// (a missing one is a secret the deployment provides).
func confText(t *testing.T, conf string) string {
	t.Helper()
	text := string(read(t, conf))
	for _, inc := range includes(t, conf) {
		if exists(inc) {
			text += "\n" + confText(t, inc)
		}
	}
	return text
}

// stage copies every *.conf under dir into a new directory, keeping their
// places, so that includes resolve as they do where they are deployed, and
// writes an empty file for each include that is missing (a secret of the
// deployment, whose variables come from the environment instead). It
// returns where conf (under dir) now is.
func stage(t *testing.T, dir, conf string) string {
	t.Helper()
	tmp := t.TempDir()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".conf" {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		return os.WriteFile(dst, read(t, path), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	staged := filepath.Join(tmp, rel)
	var fill func(string)
	fill = func(f string) {
		for _, inc := range includes(t, f) {
			if exists(inc) {
				fill(inc)
				continue
			}
			if r, err := filepath.Rel(tmp, inc); err != nil || strings.HasPrefix(r, "..") {
				t.Fatalf("%s includes %s, outside the deployment's files", conf, inc)
			}
			if err := os.WriteFile(inc, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(staged)
	return staged
}

// checkNATSConfig runs the real `nats-server -t` (the release go.mod pins)
// on the configuration conf under dir, with placeholders for the variables
// and included files a deployment provides from its secrets, then reads it
// as the server does and checks durability and every user's permissions.
func checkNATSConfig(t *testing.T, dir, conf string) {
	t.Helper()
	staged := stage(t, dir, conf)
	env := os.Environ()
	for _, m := range unquotedVariable.FindAllStringSubmatch(confText(t, staged), -1) {
		value := "nats-check"
		if strings.HasSuffix(m[1], "_HASH") {
			value = placeholderHash
		}
		env = append(env, m[1]+"="+value)
		t.Setenv(m[1], value)
	}
	cmd := exec.Command(testenv.Program(t, testenv.NATSServer), "-t", "-c", staged)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: nats-server -t: %v\n%s", conf, err, out)
	}
	opts, err := server.ProcessConfigFile(staged)
	if err != nil {
		t.Fatalf("%s: %v", conf, err)
	}
	checkNATSOptions(t, conf, opts)
}

// checkNATSOptions wants a durable JetStream, monitoring, no anonymous
// client, and each role's user with exactly broker.RolePermissions.
func checkNATSOptions(t *testing.T, path string, opts *server.Options) {
	t.Helper()
	if !opts.JetStream || !opts.SyncAlways {
		t.Errorf("%s: jetstream %v, sync_interval always %v; want both", path, opts.JetStream, opts.SyncAlways)
	}
	if opts.HTTPPort != 8222 {
		t.Errorf("%s: monitoring on port %d, want 8222", path, opts.HTTPPort)
	}
	if opts.NoAuthUser != "" || len(opts.Users) == 0 {
		t.Errorf("%s: anonymous access: no_auth_user %q, %d users", path, opts.NoAuthUser, len(opts.Users))
	}
	for _, u := range opts.Users {
		role, province := broker.Role(u.Username), ""
		if r, p, ok := strings.Cut(u.Username, "-"); ok && r == string(broker.RoleAlerts) {
			role, province = broker.RoleAlerts, p
		}
		want, err := broker.RolePermissions(role, u.Username, province)
		if err != nil {
			t.Errorf("%s: user %s is no role's: %v", path, u.Username, err)
			continue
		}
		if got := testenv.ConfPermissions(u.Permissions); !testenv.SamePermissions(got, want) {
			t.Errorf("%s: user %s: permissions %+v, want %s's %+v", path, u.Username, got, role, want)
		}
	}
}

func TestEveryNATSConfigPassesNatsServerCheckAndGivesEachRoleItsPermissions(t *testing.T) {
	for _, path := range natsConfigs(t) {
		t.Run(strings.TrimPrefix(path, root+"/"), func(t *testing.T) { checkNATSConfig(t, root+"/deploy", path) })
	}
}

// The compose cluster: three nodes routed to each other.
func TestTheComposeNATSNodesFormOneCluster(t *testing.T) {
	c := loadCompose(t)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("nats-%d", i)
		s, ok := c.Services[name]
		if !ok || s.Environment["NATS_SERVER_NAME"] != name {
			t.Errorf("service %s missing or not named so (%+v)", name, s.Environment)
		}
	}
	text := string(read(t, root+"/deploy/compose/nats/nats-server.conf"))
	for i := 1; i <= 3; i++ {
		if route := fmt.Sprintf("nats://nats-%d:6222", i); !strings.Contains(text, route) {
			t.Errorf("no route %s", route)
		}
	}
}
