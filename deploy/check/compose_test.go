package check

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

const composeFile = root + "/deploy/compose/compose.yaml"

// compose holds the fields of the Compose specification that
// deploy/compose uses; anything else is a mistake to be told about.
type compose struct {
	Name string `json:"name"`
	// Extension fields: the anchors the services merge in.
	XIKDEnv  map[string]string  `json:"x-ikd-env"`
	XNATS    json.RawMessage    `json:"x-nats"`
	XProgram json.RawMessage    `json:"x-program"`
	Services map[string]service `json:"services"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]*struct{} `json:"volumes"`
}

type service struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build,omitempty"`
	Command     []string          `json:"command,omitempty"`
	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Restart     string            `json:"restart,omitempty"`
	ReadOnly    bool              `json:"read_only,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
	Volumes     []string          `json:"volumes,omitempty"`
	Secrets     []secretRef       `json:"secrets,omitempty"`
	Ports       []string          `json:"ports,omitempty"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Timeout  string   `json:"timeout"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck,omitempty"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on,omitempty"`
	Deploy *struct {
		Replicas int `json:"replicas"`
	} `json:"deploy,omitempty"`
	CapAdd  []string `json:"cap_add,omitempty"`
	Ulimits map[string]struct {
		Soft int `json:"soft"`
		Hard int `json:"hard"`
	} `json:"ulimits,omitempty"`
	StopGracePeriod string `json:"stop_grace_period,omitempty"`
}

// secretRef is a service's use of a secret: its name, or source and target.
type secretRef struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

func (s *secretRef) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`"`)) {
		return json.Unmarshal(b, &s.Source)
	}
	type plain secretRef
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(s))
}

// path is where the service reads the secret.
func (s secretRef) path() string {
	if strings.HasPrefix(s.Target, "/") {
		return s.Target
	}
	name := s.Target
	if name == "" {
		name = s.Source
	}
	return "/run/secrets/" + name
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := decodeStrict(read(t, composeFile), &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return c
}

func TestTheComposeFileDecodesStrictly(t *testing.T) { loadCompose(t) }

// The stack the issue asks for: three NATS nodes, ClickHouse, two
// aggregators, the alerter, Prometheus and Grafana, each secret a file the
// service is given, each mounted file present in the repository.
func TestTheComposeStackHasEveryPartAndItsFiles(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "clickhouse", "provision", "aggregator", "alerter", "papan", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	if d := c.Services["aggregator"].Deploy; d == nil || d.Replicas != 2 {
		t.Errorf("aggregator: deploy %+v, want 2 replicas", d)
	}
	composeDir := filepath.Dir(composeFile)
	for name, s := range c.Services {
		given := map[string]bool{}
		for _, ref := range s.Secrets {
			if _, ok := c.Secrets[ref.Source]; !ok {
				t.Errorf("%s: secret %s is not declared", name, ref.Source)
			}
			given[ref.path()] = true
		}
		for k, v := range s.Environment {
			if strings.HasSuffix(k, "_FILE") && !given[v] {
				t.Errorf("%s: %s=%s is not one of its secrets", name, k, v)
			}
			if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "DSN")) && !strings.HasSuffix(k, "_FILE") {
				t.Errorf("%s: %s is written into the compose file; give it as a secret file", name, k)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if !exists(filepath.Join(composeDir, src)) {
					t.Errorf("%s: mounts %s, which is not in the repository", name, src)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: volume %s is not declared", name, src)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %s is published beyond loopback", name, p)
			}
		}
	}
	for name, s := range c.Secrets {
		if !strings.HasPrefix(s.File, "./secrets/") {
			t.Errorf("secret %s: file %s outside ./secrets/, whose contents git ignores", name, s.File)
		}
	}
}
