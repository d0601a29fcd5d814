package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const natsValuesFile = root + "/deploy/k8s/nats-values.yaml"

// natsValues holds the values of the official NATS chart (nats/nats 2.x)
// that deploy/k8s sets, as the chart's values.yaml names them.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool           `json:"enabled"`
			Replicas int            `json:"replicas"`
			Merge    map[string]any `json:"merge"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir"`
				MaxSize string `json:"maxSize"`
				PVC     struct {
					Enabled bool   `json:"enabled"`
					Size    string `json:"size"`
				} `json:"pvc"`
			} `json:"fileStore"`
			Merge map[string]any `json:"merge"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port"`
		} `json:"monitor"`
		Merge map[string]any `json:"merge"`
	} `json:"config"`
	Container struct {
		Image chartImage          `json:"image"`
		Env   map[string]chartEnv `json:"env"`
		Merge struct {
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"merge"`
	} `json:"container"`
	Reloader struct {
		Image chartImage `json:"image"`
	} `json:"reloader"`
	NatsBox struct {
		Container struct {
			Image chartImage `json:"image"`
		} `json:"container"`
	} `json:"natsBox"`
	PodTemplate struct {
		TopologySpreadConstraints map[string]struct {
			MaxSkew           int    `json:"maxSkew"`
			WhenUnsatisfiable string `json:"whenUnsatisfiable"`
		} `json:"topologySpreadConstraints"`
	} `json:"podTemplate"`
	PodDisruptionBudget struct {
		Enabled bool `json:"enabled"`
	} `json:"podDisruptionBudget"`
}

type chartImage struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest,omitempty"`
}

func (i chartImage) String() string {
	s := i.Repository + ":" + i.Tag
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// chartEnv is the chart's container.env entry: a value, or a container
// env var's source ({valueFrom: ...}).
type chartEnv struct {
	Value     string
	ValueFrom *corev1.EnvVarSource `json:"valueFrom"`
}

func (e *chartEnv) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`"`)) {
		return json.Unmarshal(b, &e.Value)
	}
	var v struct {
		ValueFrom *corev1.EnvVarSource `json:"valueFrom"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&v)
	e.ValueFrom = v.ValueFrom
	return err
}

func loadNATSValues(t *testing.T) natsValues {
	t.Helper()
	var v natsValues
	if err := decodeStrict(read(t, natsValuesFile), &v); err != nil {
		t.Fatalf("%s: %v", natsValuesFile, err)
	}
	return v
}

// rawToken is the chart's way of writing a NATS token unquoted: << $VAR >>.
var rawToken = regexp.MustCompile(`"<< *(.*?) *>>"`)

// renderNATSConfig writes the nats-server configuration the chart makes of
// v, as its config templates do for the parts deploy/k8s sets (server name,
// ports, cluster routes, JetStream file store, monitoring) with the merges
// applied on top: a JSON document, raw tokens unquoted.
func renderNATSConfig(t *testing.T, v natsValues) string {
	t.Helper()
	const release = "ikd-nats"
	routes := []string{}
	for i := range v.Config.Cluster.Replicas {
		routes = append(routes, fmt.Sprintf("nats://%s-%d.%s-headless:6222", release, i, release))
	}
	cluster := map[string]any{"name": release, "port": 6222, "no_advertise": true, "routes": routes}
	maps.Copy(cluster, v.Config.Cluster.Merge)
	maxSize := v.Config.JetStream.FileStore.MaxSize
	if maxSize == "" {
		maxSize = v.Config.JetStream.FileStore.PVC.Size
	}
	jetstream := map[string]any{"max_memory_store": 0, "store_dir": v.Config.JetStream.FileStore.Dir, "max_file_store": "<< " + maxSize + " >>"}
	maps.Copy(jetstream, v.Config.JetStream.Merge)
	conf := map[string]any{
		"server_name": "<< $SERVER_NAME >>", "port": 4222, "lame_duck_grace_period": "10s", "lame_duck_duration": "30s",
		"http_port": v.Config.Monitor.Port, "cluster": cluster, "jetstream": jetstream,
	}
	maps.Copy(conf, v.Config.Merge)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the configuration parser knows no \u escapes, and ">" is a wildcard
	enc.SetIndent("", "  ")
	if err := enc.Encode(conf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, rawToken.ReplaceAll(b.Bytes(), []byte("$1")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The chart's values: 3 JetStream nodes on file stores that sync every
// write, monitoring, every hash from a Secret, and a configuration that the
// real nats-server accepts with each role's permissions.
func TestTheNATSChartValuesMakeADurableClusterWithTheRolesPermissions(t *testing.T) {
	v := loadNATSValues(t)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled %v, replicas %d; want 3", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		t.Errorf("jetstream %v, file store %v on a volume %v; want all", c.JetStream.Enabled, c.JetStream.FileStore.Enabled, c.JetStream.FileStore.PVC.Enabled)
	}
	if !c.Monitor.Enabled {
		t.Error("monitoring is off")
	}
	referenced := map[string]bool{}
	for _, m := range unquotedVariable.FindAllStringSubmatch(string(read(t, natsValuesFile)), -1) {
		referenced[m[1]] = true
	}
	for name, e := range v.Container.Env {
		if strings.HasSuffix(name, "_HASH") && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("container.env %s: not from a Secret", name)
		}
		if strings.HasPrefix(name, "IKD_") && !referenced[name] {
			t.Errorf("container.env %s: the configuration does not use it", name)
		}
	}
	for name := range referenced {
		if _, ok := v.Container.Env[name]; !ok && name != "SERVER_NAME" {
			t.Errorf("the configuration uses $%s, which container.env does not set", name)
		}
	}
	conf := renderNATSConfig(t, v)
	checkNATSConfig(t, filepath.Dir(conf), conf)
}
