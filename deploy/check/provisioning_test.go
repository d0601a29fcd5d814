package check

import (
	"encoding/xml"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

const provisioning = root + "/deploy/compose/grafana/provisioning"

// grafanaDatasources holds the fields of Grafana's datasource provisioning
// file that deploy/compose uses.
type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name           string            `json:"name"`
		UID            string            `json:"uid"`
		Type           string            `json:"type"`
		Access         string            `json:"access,omitempty"`
		URL            string            `json:"url,omitempty"`
		IsDefault      bool              `json:"isDefault,omitempty"`
		JSONData       map[string]any    `json:"jsonData,omitempty"`
		SecureJSONData map[string]string `json:"secureJsonData,omitempty"`
	} `json:"datasources"`
}

type grafanaDashboardProviders struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name            string `json:"name"`
		Folder          string `json:"folder"`
		Type            string `json:"type"`
		DisableDeletion bool   `json:"disableDeletion"`
		AllowUIUpdates  bool   `json:"allowUiUpdates"`
		Options         struct {
			Path string `json:"path"`
		} `json:"options"`
	} `json:"providers"`
}

// Grafana's provisioning: a ClickHouse and a Prometheus datasource, the
// ClickHouse panels on the provisioned one, the password from a secret
// file, and a dashboard provider reading the directory compose mounts
// deploy/grafana/dashboards into.
func TestGrafanaProvisioningLoadsEveryDashboardWithItsDatasources(t *testing.T) {
	var ds grafanaDatasources
	if err := decodeStrict(read(t, provisioning+"/datasources/ikd.yaml"), &ds); err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, d := range ds.Datasources {
		uids[d.UID] = d.Type
		for k, v := range d.SecureJSONData {
			if !strings.HasPrefix(v, "$__file{/run/secrets/") {
				t.Errorf("datasource %s: %s is written into the file; read it from a secret ($__file{...})", d.Name, k)
			}
		}
	}
	if len(uids) != 2 || !containsValue(uids, clickHouseType) || !containsValue(uids, "prometheus") {
		t.Errorf("datasources %v, want one ClickHouse and one Prometheus", uids)
	}
	for _, path := range deployFiles(t, "*.json") {
		if !strings.Contains(path, "/grafana/dashboards/") {
			continue
		}
		var walk func([]dashboardPanel)
		walk = func(panels []dashboardPanel) {
			for _, p := range panels {
				walk(p.Panels)
				if p.Datasource != nil && p.Datasource.Type == clickHouseType && uids[p.Datasource.UID] != clickHouseType {
					t.Errorf("%s, panel %q: datasource uid %q is not the provisioned ClickHouse", path, p.Title, p.Datasource.UID)
				}
			}
		}
		walk(loadDashboard(t, path).Panels)
	}

	var dp grafanaDashboardProviders
	if err := decodeStrict(read(t, provisioning+"/dashboards/ikd.yaml"), &dp); err != nil {
		t.Fatal(err)
	}
	mounted := ""
	for _, v := range loadCompose(t).Services["grafana"].Volumes {
		if src, dst, _ := strings.Cut(v, ":"); src == "../grafana/dashboards" {
			mounted, _, _ = strings.Cut(dst, ":")
		}
	}
	if len(dp.Providers) != 1 || mounted == "" || dp.Providers[0].Options.Path != mounted {
		t.Errorf("dashboard providers %+v, compose mounts deploy/grafana/dashboards at %q", dp.Providers, mounted)
	}
}

func containsValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// ClickHouse reads its configuration files as XML: a typo stops the server.
func TestTheClickHouseConfigurationFilesAreWellFormedXML(t *testing.T) {
	files := append(deployFiles(t, "*.xml"), deployFiles(t, "*.xml.example")...)
	if len(files) == 0 {
		t.Fatal("no ClickHouse configuration under deploy/")
	}
	for _, f := range files {
		dec := xml.NewDecoder(strings.NewReader(string(read(t, f))))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
				break
			}
		}
	}
}
