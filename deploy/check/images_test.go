package check

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// exactVersion is a tag naming one release (2.15.2-alpine, v3.5.0,
// 26.5.6.64-alpine), not a moving line (2.15, latest, alpine).
var exactVersion = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+`)

var digest = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// pinned tells whether image names one build: a digest, or a tag of one
// release.
func pinned(image string) bool {
	if strings.Contains(image, "@") {
		return digest.MatchString(image)
	}
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	_, tag, ok := strings.Cut(name, ":")
	return ok && exactVersion.MatchString(tag)
}

func TestPinnedTellsAReleaseFromAMovingName(t *testing.T) {
	for image, want := range map[string]bool{
		"nats:2.15.2-alpine": true, "prom/prometheus:v3.5.0@sha256:63805ebb8d2b3920190daf1cb14a60871b16fd38bed42b857a3182bc621f4996": true,
		"gcr.io/distroless/static-debian12@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab": true,
		"localhost:5000/ikd:1.0.0": true,
		"nats":                     false, "nats:latest": false, "nats:2.15": false, "nats:alpine": false, "localhost:5000/ikd": false,
		"grafana/grafana:12.1.1@sha256:short": false,
	} {
		if got := pinned(image); got != want {
			t.Errorf("pinned(%q) = %v, want %v", image, got, want)
		}
	}
}

// deploymentImages lists every image deploy/ runs or builds from, by where.
func deploymentImages(t *testing.T) map[string]string {
	t.Helper()
	images := map[string]string{}
	for name, s := range loadCompose(t).Services {
		images["compose service "+name] = s.Image
	}
	containers := func(where string, spec corev1.PodSpec) {
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			images[where+" container "+c.Name] = c.Image
		}
	}
	for _, m := range k8sManifests(t) {
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			containers(m.kind+" "+m.name, o.Spec.Template.Spec)
		case *batchv1.Job:
			containers(m.kind+" "+m.name, o.Spec.Template.Spec)
		case *clickHouseInstallation:
			for _, p := range o.Spec.Templates.PodTemplates {
				containers(m.kind+" "+m.name+" template "+p.Name, p.Spec)
			}
		}
	}
	v := loadNATSValues(t)
	images["NATS chart container"] = v.Container.Image.String()
	images["NATS chart reloader"] = v.Reloader.Image.String()
	images["NATS chart nats-box"] = v.NatsBox.Container.Image.String()
	for _, file := range deployFiles(t, "Dockerfile*") {
		for i, line := range strings.Split(string(read(t, file)), "\n") {
			fields := strings.Fields(line)
			if len(fields) >= 2 && strings.EqualFold(fields[0], "FROM") {
				images[fmt.Sprintf("%s:%d", file, i+1)] = fields[1]
			}
		}
	}
	return images
}

func TestEveryImageIsPinned(t *testing.T) {
	images := deploymentImages(t)
	if len(images) < 10 {
		t.Fatalf("only %d images found: %v", len(images), images)
	}
	for where, image := range images {
		if !pinned(image) {
			t.Errorf("%s: image %q is not pinned (a release's tag, or a digest)", where, image)
		}
	}
}

// The brokers deployed run the nats-server release whose configuration
// check (`nats-server -t`) these tests ran: the one go.mod pins.
func TestTheDeployedNATSServerIsTheReleaseTheConfigsWereCheckedWith(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m nats-server: %v", err)
	}
	version := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	found := 0
	for where, image := range deploymentImages(t) {
		repo, tag, _ := strings.Cut(strings.SplitN(image, "@", 2)[0], ":")
		if repo != "nats" && !strings.HasSuffix(repo, "/nats") {
			continue
		}
		found++
		if !strings.HasPrefix(tag, version+"-") && tag != version {
			t.Errorf("%s: %s, want nats-server %s (go.mod)", where, image, version)
		}
	}
	if found < 2 {
		t.Errorf("%d NATS images found, want the compose nodes and the chart's", found)
	}
}
