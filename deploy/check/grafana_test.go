package check

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// clickHouseType is the grafana-clickhouse-datasource plugin's id.
const clickHouseType = "grafana-clickhouse-datasource"

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboard holds what the panel SQL test needs of a Grafana dashboard.
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string        `json:"name"`
			Type       string        `json:"type"`
			Datasource datasourceRef `json:"datasource"`
			Query      any           `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	Title      string           `json:"title"`
	Datasource *datasourceRef   `json:"datasource"`
	Panels     []dashboardPanel `json:"panels"` // a row's
	Targets    []struct {
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
		RawSQL     string         `json:"rawSql"`
	} `json:"targets"`
}

// timeRange is a dashboard's time range and the interval Grafana picks for it.
type timeRange struct {
	from, to time.Time
	interval time.Duration
}

var (
	timeFilterMacro   = regexp.MustCompile(`\$__timeFilter\(\s*([^)]+?)\s*\)`)
	timeIntervalMacro = regexp.MustCompile(`\$__timeInterval\(\s*([^)]+?)\s*\)`)
	variableRef       = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)
)

// expandMacros does to sql what Grafana and the ClickHouse plugin do before
// sending it: the plugin's time macros, then the dashboard's variables
// (each a list of selected values; All is every value). A macro or a
// variable it does not know is an error, not a query sent with a '$' in it.
func expandMacros(sql string, r timeRange, vars map[string][]string) (string, error) {
	sec := func(t time.Time) string { return fmt.Sprintf("toDateTime(intDiv(%d,1000))", t.UnixMilli()) }
	sql = timeFilterMacro.ReplaceAllString(sql, "$1 >= "+sec(r.from)+" AND $1 <= "+sec(r.to))
	sql = timeIntervalMacro.ReplaceAllString(sql, fmt.Sprintf("toStartOfInterval(toDateTime($1), INTERVAL %d second)", int(r.interval.Seconds())))
	sql = strings.NewReplacer("$__fromTime", sec(r.from), "$__toTime", sec(r.to),
		"$__interval_s", fmt.Sprint(int(r.interval.Seconds()))).Replace(sql)
	var errs []string
	sql = variableRef.ReplaceAllStringFunc(sql, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name, format := m[1]+m[3], m[2]
		values, ok := vars[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: unknown macro or variable", ref))
			return ref
		}
		switch {
		case format == "singlequote":
			quoted := make([]string, len(values))
			for i, v := range values {
				quoted[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
			}
			return strings.Join(quoted, ",")
		case format == "" && len(values) == 1:
			return values[0]
		case format == "":
			errs = append(errs, fmt.Sprintf("%s: several values unformatted; write ${%s:singlequote}", ref, name))
		default:
			errs = append(errs, fmt.Sprintf("%s: format %q is not one this check knows", ref, format))
		}
		return ref
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return sql, nil
}

func TestExpandMacrosDoesWhatGrafanaAndThePluginDo(t *testing.T) {
	r := timeRange{from: time.UnixMilli(1_700_000_000_000), to: time.UnixMilli(1_700_086_400_000), interval: time.Hour}
	vars := map[string][]string{"province": {"17", "18"}, "city": {"17.71"}, "q": {"it's"}}
	for _, tc := range []struct{ in, want, err string }{
		{in: "WHERE $__timeFilter(occurred_at)", want: "WHERE occurred_at >= toDateTime(intDiv(1700000000000,1000)) AND occurred_at <= toDateTime(intDiv(1700086400000,1000))"},
		{in: "SELECT $__timeInterval(t) AS time", want: "SELECT toStartOfInterval(toDateTime(t), INTERVAL 3600 second) AS time"},
		{in: "toDate($__toTime) - $__fromTime, $__interval_s", want: "toDate(toDateTime(intDiv(1700086400000,1000))) - toDateTime(intDiv(1700000000000,1000)), 3600"},
		{in: "IN (${province:singlequote})", want: "IN ('17','18')"},
		{in: "= '$city' OR = '${city}'", want: "= '17.71' OR = '17.71'"},
		{in: "= ${q:singlequote}", want: `= 'it\'s'`},
		{in: "IN (${province})", err: "write ${province:singlequote}"},
		{in: "$__dateFilter(d)", err: "unknown macro"},
		{in: "${region:csv}", err: "unknown macro or variable"},
	} {
		got, err := expandMacros(tc.in, r, vars)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q:\n got %q, %v\nwant %q", tc.in, got, err, tc.want)
		}
	}
}

func loadDashboard(t *testing.T, path string) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(read(t, path), &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

// clickHouseQueries lists the SQL of every ClickHouse target of the
// dashboard's panels (rows' panels included), by panel title.
func clickHouseQueries(panels []dashboardPanel) map[string]string {
	out := map[string]string{}
	for _, p := range panels {
		for k, v := range clickHouseQueries(p.Panels) {
			out[k] = v
		}
		for _, tg := range p.Targets {
			ds := tg.Datasource
			if ds == nil {
				ds = p.Datasource
			}
			if ds != nil && ds.Type == clickHouseType {
				out[p.Title+" "+tg.RefID] = tg.RawSQL
			}
		}
	}
	return out
}

// query runs sql and reads every row, returning how many there were.
func query(ctx context.Context, db driver.Conn, sql string) (int, [][]string, error) {
	rows, err := db.Query(ctx, sql)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	n := 0
	var values [][]string
	cols := rows.ColumnTypes()
	for rows.Next() {
		n++
		dest := make([]any, len(cols))
		for i, c := range cols {
			dest[i] = newScanTarget(c.ScanType())
		}
		if err := rows.Scan(dest...); err != nil {
			return n, nil, err
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			row[i] = fmt.Sprint(deref(d))
		}
		values = append(values, row)
	}
	return n, values, rows.Err()
}

// The attainment dashboard's SQL, run as Grafana would run it against the
// real views of the embedded engine with a few events loaded: every
// variable's query and every ClickHouse panel's, for every province and city
// (All) and for one province and one city, must run and return rows.
func TestEveryClickHousePanelOfTheDashboardsRunsAgainstTheViews(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, _ := testenv.MigratedWarehouse(t)
	now := time.Now()
	loadEvents(t, ctx, db, now)
	r := timeRange{from: now.Add(-30 * 24 * time.Hour), to: now, interval: 24 * time.Hour}

	dashboards := deployFiles(t, "*.json")
	checked := 0
	for _, path := range dashboards {
		if !strings.Contains(path, "/grafana/dashboards/") {
			continue
		}
		d := loadDashboard(t, path)
		panels := clickHouseQueries(d.Panels)
		if len(panels) == 0 {
			continue
		}
		// Each query variable, in order: its values for All.
		all := map[string][]string{}
		for _, v := range d.Templating.List {
			if v.Type != "query" || v.Datasource.Type != clickHouseType {
				continue
			}
			sql, err := expandMacros(fmt.Sprint(v.Query), r, all)
			if err != nil {
				t.Fatalf("%s variable %s: %v", path, v.Name, err)
			}
			_, rows, err := query(ctx, db, sql)
			if err != nil {
				t.Fatalf("%s variable %s: %v\n%s", path, v.Name, err, sql)
			}
			if len(rows) == 0 {
				t.Fatalf("%s variable %s: no values", path, v.Name)
			}
			for _, row := range rows {
				all[v.Name] = append(all[v.Name], row[0])
			}
		}
		one := map[string][]string{}
		for name, values := range all {
			one[name] = values[:1]
		}
		one["province"], one["city"] = []string{"17"}, []string{"17.71"}
		for _, selection := range []struct {
			name string
			vars map[string][]string
		}{{"All", all}, {"province 17, city 17.71", one}} {
			for title, raw := range panels {
				sql, err := expandMacros(raw, r, selection.vars)
				if err != nil {
					t.Errorf("%s, panel %q: %v", path, title, err)
					continue
				}
				n, _, err := query(ctx, db, sql)
				if err != nil {
					t.Errorf("%s, panel %q (%s): %v\n%s", path, title, selection.name, err, sql)
					continue
				}
				if n == 0 {
					t.Errorf("%s, panel %q (%s): no rows\n%s", path, title, selection.name, sql)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no ClickHouse panel found under deploy/grafana/dashboards")
	}
}

// loadEvents writes activations in three cities of two provinces, in the
// last days, through the pipeline's own writer, and targets for them.
func loadEvents(t *testing.T, ctx context.Context, db driver.Conn, now time.Time) {
	t.Helper()
	var recs []warehouse.Record
	for i, city := range []string{"17.71", "17.71", "17.01", "18.71"} {
		for j := range 5 {
			at := now.Add(-time.Duration(i*24+j) * time.Hour)
			recs = append(recs, warehouse.Record{Seq: uint64(len(recs) + 1), Event: events.Event{
				V: 1, EventID: fmt.Sprintf("dash-%d", len(recs)), Type: events.TypeActivation,
				Resident: fmt.Sprintf("resident-%s-%d", city, j), ProvinceCode: city[:2], CityCode: city,
				DistrictCode: city + ".01", OfficeID: "dashboard-test", Channel: events.ChannelCounter, OccurredAt: at.UTC(),
			}})
		}
	}
	if err := warehouse.NewEventWriter(db).Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// Targets beyond what was reached, so that some cities are behind pace.
	year := now.In(wib).Year()
	for _, region := range []string{"17", "17.71", "18.71"} {
		if err := db.Exec(ctx, "INSERT INTO ikd.targets (year, region_code, kind, value) VALUES (?, ?, 'absolute', 100000)", year, region); err != nil {
			t.Fatal(err)
		}
	}
}

// wib is the registry's time zone, in which years are counted.
var wib = time.FixedZone("WIB", 7*60*60)
