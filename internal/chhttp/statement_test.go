package chhttp

import "testing"

func TestParseStatementFindsWhereDataAndFormatsBegin(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  string
		want statement
	}{
		{"select", "SELECT 1", statement{}},
		{"select with format", "SELECT 1 FORMAT JSONEachRow", statement{format: "JSONEachRow"}},
		{"format inside a string is data", "SELECT 'FORMAT CSV'", statement{}},
		{"format inside a comment", "SELECT 1 -- FORMAT CSV\n", statement{}},
		{"insert with format and inline data", "INSERT INTO t FORMAT CSV\n1,2\n",
			statement{insert: true, head: "INSERT INTO t ", dataFormat: "CSV", inline: "1,2\n"}},
		{"insert with columns and settings", "insert into ikd.t (a, b) SETTINGS x=1 FORMAT Native",
			statement{insert: true, head: "insert into ikd.t (a, b) SETTINGS x=1 ", dataFormat: "Native"}},
		{"insert values", "INSERT INTO t VALUES (1, 'FORMAT x')",
			statement{insert: true, head: "INSERT INTO t ", dataFormat: "Values", inline: " (1, 'FORMAT x')"}},
		{"insert select carries no data", "INSERT INTO t SELECT * FROM u FORMAT CSV", statement{}},
		{"insert from infile carries no data", "INSERT INTO t FROM INFILE '/x' FORMAT CSV", statement{}},
		{"column named format", "INSERT INTO t (`format`, b) FORMAT TSV",
			statement{insert: true, head: "INSERT INTO t (`format`, b) ", dataFormat: "TSV"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseStatement(tc.sql); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
