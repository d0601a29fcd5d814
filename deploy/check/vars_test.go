package check

import (
	"go/types"
	"maps"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ikd-pipeline/ikd/internal/config"
)

// programs are the packages whose Config type is a program's configuration.
var programs = []string{
	"github.com/ikd-pipeline/ikd/deploy/ikd-dev",
	"github.com/ikd-pipeline/ikd/producers/ikd-counter",
	"github.com/ikd-pipeline/ikd/consumers/ikd-aggregator",
	"github.com/ikd-pipeline/ikd/consumers/ikd-alerter",
	"github.com/ikd-pipeline/ikd/consumers/ikd-papan",
}

// programVariables is every IKD_* variable some program reads: the names
// envconfig gives the fields of each program's Config type (read from the
// source with go/types, since a main package cannot be imported), and
// NAME_FILE for each field tagged secret (config.FileSuffix).
func programVariables(t *testing.T) map[string]bool {
	t.Helper()
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedTypes, Dir: root}, programs...)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Fatalf("%s: %v", p.PkgPath, e)
		}
		obj := p.Types.Scope().Lookup("Config")
		if obj == nil {
			t.Fatalf("%s has no Config type", p.PkgPath)
		}
		envVariables(config.Prefix, obj.Type(), func(name string, secret bool) {
			vars[name] = true
			if secret {
				vars[name+config.FileSuffix] = true
			}
		})
	}
	return vars
}

// envVariables walks a configuration struct as envconfig does (envconfig
// 1.4, gatherInfo): the tag or the field name, upper case, after the
// prefix; an embedded struct adds no prefix; a struct that decodes itself
// is one variable.
func envVariables(prefix string, typ types.Type, emit func(name string, secret bool)) {
	st, ok := typ.Underlying().(*types.Struct)
	if !ok {
		return
	}
	for i := range st.NumFields() {
		f := st.Field(i)
		tag := reflectTag(st.Tag(i))
		if !f.Exported() || tag.get("ignored") == "true" {
			continue
		}
		key := f.Name()
		if alt := tag.get("envconfig"); alt != "" {
			key = alt
		}
		key = strings.ToUpper(prefix + "_" + key)
		ft := f.Type()
		if p, ok := ft.(*types.Pointer); ok {
			ft = p.Elem()
		}
		if _, isStruct := ft.Underlying().(*types.Struct); isStruct && !decodesItself(ft) {
			inner := key
			if f.Embedded() {
				inner = prefix
			}
			envVariables(inner, ft, emit)
			continue
		}
		emit(key, tag.get("secret") != "")
	}
}

// decodesItself tells the types envconfig hands the whole value to.
func decodesItself(t types.Type) bool {
	ms := types.NewMethodSet(types.NewPointer(t))
	for _, m := range []string{"Decode", "Set", "UnmarshalText", "UnmarshalBinary"} {
		if ms.Lookup(nil, m) != nil {
			return true
		}
	}
	return false
}

type reflectTag string

func (t reflectTag) get(key string) string {
	// The struct tag grammar is reflect.StructTag's.
	return structTag(string(t)).Get(key)
}

// The configuration the deployment material gives the programs: every
// IKD_* variable it sets (compose services built from deploy/Dockerfile,
// the Kubernetes Deployments and Jobs, the office agent's systemd files) is
// one some program reads. A misspelt variable is otherwise silently ignored
// and its default used.
func TestEveryIKDVariableTheDeploymentSetsIsAProgramSetting(t *testing.T) {
	known := programVariables(t)
	if !known["IKD_NATS_URL"] || !known["IKD_AGGREGATOR_BATCH_SIZE"] || !known["IKD_NATS_PASSWORD_FILE"] {
		t.Fatalf("the programs' variables were not all found: %v", slices.Sorted(maps.Keys(known)))
	}
	for where, names := range deploymentVariables(t) {
		for _, name := range names {
			if strings.HasPrefix(name, "IKD_") && !known[name] {
				t.Errorf("%s sets %s, which no program reads", where, name)
			}
		}
	}
}

// deploymentVariables lists, per place, the variables deploy/ sets for the
// project's programs.
func deploymentVariables(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	c := loadCompose(t)
	for name, s := range c.Services {
		if s.Build != nil || strings.HasPrefix(s.Image, "ikd-pipeline/") {
			out["compose service "+name] = slices.Collect(maps.Keys(s.Environment))
		}
	}
	for _, m := range k8sManifests(t) {
		var spec *corev1.PodSpec
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			spec = &o.Spec.Template.Spec
		case *batchv1.Job:
			spec = &o.Spec.Template.Spec
		default:
			continue
		}
		for _, ct := range spec.Containers {
			for _, e := range ct.Env {
				out[m.kind+" "+m.name] = append(out[m.kind+" "+m.name], e.Name)
			}
		}
	}
	for _, file := range deployFiles(t, "*.env.example") {
		out[file] = append(out[file], envFileNames(string(read(t, file)))...)
	}
	for _, file := range deployFiles(t, "*.service") {
		for _, line := range strings.Split(string(read(t, file)), "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "#")
			if v, ok := strings.CutPrefix(line, "Environment="); ok {
				out[file] = append(out[file], envFileNames(v)...)
			}
		}
	}
	return out
}

// envFileNames are the names NAME=value lines set, commented ones included
// (they are the options the file offers).
func envFileNames(text string) []string {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if name, _, ok := strings.Cut(line, "="); ok && name == strings.ToUpper(name) && !strings.Contains(name, " ") {
			names = append(names, name)
		}
	}
	return names
}
