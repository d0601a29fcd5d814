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

// natsConfigs are the nats-server configurations under deploy/.
func natsConfigs(t *testing.T) []string {
	t.Helper()
	var confs []string
	for _, f := range deployFiles(t, "*.conf") {
		if strings.Contains(string(read(t, f)), "jetstream") {
			confs = append(confs, f)
		}
	}
	if len(confs) == 0 {
		t.Fatal("no NATS configuration under deploy/")
	}
	return confs
}

// checkNATSConfig runs the real `nats-server -t` (the release go.mod pins)
// on the configuration at path, with placeholders for the variables and
// included files a deployment provides from its secrets, then reads it as
// the server does and checks durability and every user's permissions.
func checkNATSConfig(t *testing.T, path string) {
	t.Helper()
	text := string(read(t, path))
	dir := t.TempDir()
	conf := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// Included files are the deployment's secrets: they define the hashes.
	for _, m := range includeLine.FindAllStringSubmatch(text, -1) {
		src := filepath.Join(filepath.Dir(path), m[1])
		var content []byte
		if exists(src) {
			content = read(t, src)
		}
		if err := os.WriteFile(filepath.Join(dir, m[1]), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := os.Environ()
	for _, m := range unquotedVariable.FindAllStringSubmatch(text, -1) {
		value := "nats-check"
		if strings.HasSuffix(m[1], "_HASH") {
			value = placeholderHash
		}
		env = append(env, m[1]+"="+value)
		t.Setenv(m[1], value)
	}
	cmd := exec.Command(testenv.NATSServer(t), "-t", "-c", conf)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: nats-server -t: %v\n%s", path, err, out)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	checkNATSOptions(t, path, opts)
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
		t.Run(strings.TrimPrefix(path, root+"/"), func(t *testing.T) { checkNATSConfig(t, path) })
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
