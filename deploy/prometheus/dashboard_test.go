package prometheus

import (
	"encoding/json"
	"os"
	"testing"
)

// panel is what the test reads of a Grafana panel.
type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// dashboard reads the pipeline dashboard's panels.
func dashboard(t *testing.T) []panel {
	t.Helper()
	data, err := os.ReadFile("../grafana/dashboards/pipeline.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("pipeline.json: %v", err)
	}
	return dash.Panels
}

// queries are the PromQL expressions of panels, rows' panels included.
func queries(ps []panel) []string {
	var out []string
	for _, p := range ps {
		out = append(out, queries(p.Panels)...)
		for _, target := range p.Targets {
			out = append(out, target.Expr)
		}
	}
	return out
}

func TestPipelineDashboardUsesOnlyDocumentedMetrics(t *testing.T) {
	docs := documented(t)
	panels := dashboard(t)
	used := map[string]bool{}
	var check func(ps []panel)
	check = func(ps []panel) {
		for _, p := range ps {
			check(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %+v; want the Prometheus picked by ${datasource}", p.Title, p.Datasource)
			}
			for _, target := range p.Targets {
				for _, name := range ikdNames.FindAllString(target.Expr, -1) {
					metric := metricOf(name, docs)
					if metric == "" {
						t.Errorf("panel %q queries %s, which the README's metric table does not document", p.Title, name)
					}
					used[metric] = true
				}
			}
		}
	}
	check(panels)
	// Every documented metric is on the dashboard, or the dashboard misses
	// something an operator was promised.
	for name := range docs {
		if !used[name] {
			t.Errorf("%s is documented but on no panel of the pipeline dashboard", name)
		}
	}
}
