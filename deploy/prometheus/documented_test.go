// Package prometheus holds the Prometheus side of operating the pipeline:
// the alerting rules and their unit tests (make check-prometheus), an example
// scrape configuration, and the tests that hold the README's metric table,
// the programs, the rules and the pipeline dashboard to one another.
package prometheus

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// metricRow is a row of the README's metric table: | `ikd_x` | type | labels | meaning |.
var metricRow = regexp.MustCompile("(?m)^\\| `(ikd_[a-z0-9_]+)` \\| (counter|gauge|histogram) \\|")

// documented returns the README's metrics by name, with their type.
func documented(t *testing.T) map[string]string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range metricRow.FindAllStringSubmatch(string(readme), -1) {
		out[m[1]] = m[2]
	}
	if len(out) < 20 {
		t.Fatalf("the README documents %d metrics; its table (| `ikd_…` | type | labels | meaning |) was not found", len(out))
	}
	return out
}

// seriesName is the name a metric has in Prometheus: a histogram's buckets.
func seriesName(name, typ string) string {
	if typ == "histogram" {
		return name + "_bucket"
	}
	return name
}

// metricOf maps a series name back to the documented metric it belongs to
// ("" when none): a histogram's _bucket, _sum and _count included.
func metricOf(series string, docs map[string]string) string {
	if _, ok := docs[series]; ok {
		return series
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base := strings.TrimSuffix(series, suffix)
		if docs[base] == "histogram" && base != series {
			return base
		}
	}
	return ""
}

// ikdNames are the ikd_ metric names an expression or text mentions.
var ikdNames = regexp.MustCompile(`\bikd_[a-z0-9_]+`)

func TestAlertRulesUseOnlyDocumentedMetrics(t *testing.T) {
	docs := documented(t)
	rules, err := os.ReadFile("ikd.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ikdNames.FindAllString(string(rules), -1) {
		if metricOf(name, docs) == "" {
			t.Errorf("ikd.rules.yml uses %s, which the README's metric table does not document", name)
		}
	}
}
