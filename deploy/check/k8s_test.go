package check

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A Kubernetes manifest of deploy/k8s (not a chart's values file), decoded.
type manifest struct {
	file string
	kind string
	name string
	obj  any
}

// clickHouseInstallation holds the fields of the Altinity operator's
// ClickHouseInstallation (clickhouse.altinity.com/v1) that deploy/k8s uses,
// so that a misspelt or misplaced key fails here instead of being ignored
// by the cluster. The pod and claim templates are Kubernetes' own types.
type clickHouseInstallation struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Configuration struct {
			Zookeeper *struct {
				Nodes []struct {
					Host string `json:"host"`
					Port int    `json:"port"`
				} `json:"nodes"`
			} `json:"zookeeper,omitempty"`
			// user/setting: value, or {valueFrom: {secretKeyRef: ...}}
			Users    map[string]any `json:"users,omitempty"`
			Profiles map[string]any `json:"profiles,omitempty"`
			Clusters []struct {
				Name   string `json:"name"`
				Layout struct {
					ShardsCount   int `json:"shardsCount,omitempty"`
					ReplicasCount int `json:"replicasCount"`
				} `json:"layout"`
			} `json:"clusters"`
		} `json:"configuration"`
		Defaults struct {
			Templates struct {
				PodTemplate             string `json:"podTemplate"`
				DataVolumeClaimTemplate string `json:"dataVolumeClaimTemplate"`
			} `json:"templates"`
		} `json:"defaults"`
		Templates struct {
			PodTemplates []struct {
				Name string         `json:"name"`
				Spec corev1.PodSpec `json:"spec"`
			} `json:"podTemplates"`
			VolumeClaimTemplates []struct {
				Name string                           `json:"name"`
				Spec corev1.PersistentVolumeClaimSpec `json:"spec"`
			} `json:"volumeClaimTemplates"`
		} `json:"templates"`
	} `json:"spec"`
}

// kinds maps apiVersion/kind to a new value of the type it decodes into.
var kinds = map[string]func() any{
	"v1/Namespace":                  func() any { return &corev1.Namespace{} },
	"v1/Service":                    func() any { return &corev1.Service{} },
	"batch/v1/Job":                  func() any { return &batchv1.Job{} },
	"apps/v1/Deployment":            func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
	"clickhouse.altinity.com/v1/ClickHouseInstallation":              func() any { return &clickHouseInstallation{} },
	"clickhouse-keeper.altinity.com/v1/ClickHouseKeeperInstallation": func() any { return &clickHouseInstallation{} },
}

// isValues tells a Helm chart's values file from a manifest.
func isValues(path string) bool { return strings.HasSuffix(filepath.Base(path), "-values.yaml") }

// k8sManifests decodes every document of deploy/k8s strictly into its type.
func k8sManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	for _, file := range deployFiles(t, "*.yaml") {
		if !strings.Contains(file, "/deploy/k8s/") || isValues(file) {
			continue
		}
		for i, doc := range documents(read(t, file)) {
			var tm metav1.TypeMeta
			if err := decodeLoose(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
			if !ok {
				t.Errorf("%s document %d: %s %s: no type to check it against", file, i+1, tm.APIVersion, tm.Kind)
				continue
			}
			obj := newObj()
			if err := decodeStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): %v", file, i+1, tm.Kind, err)
				continue
			}
			out = append(out, manifest{file: file, kind: tm.Kind, name: objectName(obj), obj: obj})
		}
	}
	return out
}

func objectName(obj any) string {
	if o, ok := obj.(metav1.Object); ok {
		return o.GetName()
	}
	if c, ok := obj.(*clickHouseInstallation); ok {
		return c.Metadata.Name
	}
	return ""
}

func TestKubernetesManifestsDecodeStrictlyIntoTheirTypes(t *testing.T) {
	got := map[string]bool{}
	for _, m := range k8sManifests(t) {
		got[m.kind+"/"+m.name] = true
	}
	for _, want := range []string{"Deployment/ikd-aggregator", "Deployment/ikd-alerter", "PodDisruptionBudget/ikd-aggregator",
		"Job/ikd-provision", "ClickHouseInstallation/ikd", "ClickHouseKeeperInstallation/ikd-keeper"} {
		if !got[want] {
			t.Errorf("deploy/k8s has no %s (has %v)", want, got)
		}
	}
}

// The programs' Deployments: probed on their metrics address, bounded in
// resources, secrets only by reference, and the aggregator twice with a
// budget that keeps one through a drain.
func TestTheProgramsDeploymentsAreProbedBoundedAndReferenceTheirSecrets(t *testing.T) {
	manifests := k8sManifests(t)
	deployments := map[string]*appsv1.Deployment{}
	var pdbs []*policyv1.PodDisruptionBudget
	for _, m := range manifests {
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			deployments[m.name] = o
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, o)
		}
	}
	for _, name := range []string{"ikd-aggregator", "ikd-alerter"} {
		d, ok := deployments[name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			checkProbes(t, name, c)
			checkResources(t, name, c)
			checkSecretsReferenced(t, name, c.Env)
		}
	}
	if agg, ok := deployments["ikd-aggregator"]; ok {
		if agg.Spec.Replicas == nil || *agg.Spec.Replicas != 2 {
			t.Errorf("ikd-aggregator: replicas %v, want 2 (one writes, one stands by)", agg.Spec.Replicas)
		}
		// The aggregator is built to stay within 256 MiB of RSS: its limit
		// must let it, without hiding a leak far beyond.
		mem := agg.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
		if mem.Cmp(resource.MustParse("256Mi")) < 0 || mem.Cmp(resource.MustParse("512Mi")) > 0 {
			t.Errorf("ikd-aggregator: memory limit %s, want between 256Mi and 512Mi", mem.String())
		}
		covered := false
		for _, p := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err == nil && sel.Matches(labelSet(agg.Spec.Template.Labels)) && p.Spec.MinAvailable != nil && p.Spec.MinAvailable.IntValue() >= 1 {
				covered = true
			}
		}
		if !covered {
			t.Error("no PodDisruptionBudget keeps at least one ikd-aggregator available")
		}
	}
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

// checkProbes wants /readyz and /healthz on the port of IKD_METRICS_LISTEN.
func checkProbes(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	port := ""
	for _, e := range c.Env {
		if e.Name == "IKD_METRICS_LISTEN" {
			_, port, _ = net.SplitHostPort(e.Value)
		}
	}
	if port == "" {
		t.Errorf("%s: IKD_METRICS_LISTEN is not set to host:port", name)
		return
	}
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no %s probe", name, p.what)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || containerPort(c, p.probe.HTTPGet.Port.String()) != port {
			t.Errorf("%s: %s probe on %s port %s, want %s on %s (IKD_METRICS_LISTEN)", name, p.what,
				p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, port)
		}
	}
}

// containerPort resolves a probe's port, a number or a port's name.
func containerPort(c corev1.Container, port string) string {
	for _, p := range c.Ports {
		if p.Name == port {
			return fmt.Sprint(p.ContainerPort)
		}
	}
	return port
}

func checkResources(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	r := c.Resources
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := r.Requests[res]; !ok {
			t.Errorf("%s: no %s request", name, res)
		}
	}
	if _, ok := r.Limits[corev1.ResourceMemory]; !ok {
		t.Errorf("%s: no memory limit", name)
	}
}

// checkSecretsReferenced refuses a password, key or DSN written into a
// manifest: it must come from a Secret, as a file (IKD_..._FILE) or a
// reference.
func checkSecretsReferenced(t *testing.T, name string, env []corev1.EnvVar) {
	t.Helper()
	for _, e := range env {
		secretish := strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "DSN") || strings.HasSuffix(e.Name, "_KEY")
		if secretish && !strings.HasSuffix(e.Name, "_FILE") && e.Value != "" {
			t.Errorf("%s: %s is written into the manifest; reference a Secret", name, e.Name)
		}
	}
}

// The ClickHouse cluster resource: the cluster IKD_CLICKHOUSE_CLUSTER names,
// replicated through Keeper, with no password written into it.
func TestTheClickHouseClusterIsReplicatedThroughKeeperWithReferencedPasswords(t *testing.T) {
	var chi, chk *clickHouseInstallation
	for _, m := range k8sManifests(t) {
		switch m.kind {
		case "ClickHouseInstallation":
			chi = m.obj.(*clickHouseInstallation)
		case "ClickHouseKeeperInstallation":
			chk = m.obj.(*clickHouseInstallation)
		}
	}
	if chi == nil || chk == nil {
		t.Fatal("deploy/k8s needs a ClickHouseInstallation and a ClickHouseKeeperInstallation")
	}
	cluster := envValue(t, "IKD_CLICKHOUSE_CLUSTER")
	found := false
	for _, c := range chi.Spec.Configuration.Clusters {
		if c.Name == cluster && c.Layout.ReplicasCount >= 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("no cluster %q of at least 2 replicas (IKD_CLICKHOUSE_CLUSTER of the Deployments)", cluster)
	}
	if z := chi.Spec.Configuration.Zookeeper; z == nil || len(z.Nodes) == 0 || z.Nodes[0].Host != "keeper-"+chk.Metadata.Name {
		t.Errorf("the ClickHouseInstallation does not use Keeper %s", chk.Metadata.Name)
	}
	if n := chk.Spec.Configuration.Clusters; len(n) != 1 || n[0].Layout.ReplicasCount != 3 {
		t.Errorf("Keeper: %+v, want one cluster of 3 replicas", n)
	}
	for key, v := range chi.Spec.Configuration.Users {
		if !strings.Contains(key, "/password") {
			continue
		}
		ref, _ := v.(map[string]any)
		if _, ok := ref["valueFrom"]; !ok {
			t.Errorf("users: %s is written into the manifest; reference a Secret (valueFrom)", key)
		}
	}
}

// envValue is the one value every k8s Deployment gives variable.
func envValue(t *testing.T, variable string) string {
	t.Helper()
	values := map[string]bool{}
	for _, m := range k8sManifests(t) {
		if d, ok := m.obj.(*appsv1.Deployment); ok {
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, e := range c.Env {
					if e.Name == variable {
						values[e.Value] = true
					}
				}
			}
		}
	}
	if len(values) != 1 {
		t.Fatalf("%s: values %v across the Deployments, want one", variable, values)
	}
	for v := range values {
		return v
	}
	return ""
}
