package chhttp

import (
	"path/filepath"
	"strings"
)

// The guard decides, from the engine's own parse of a statement, whether a
// client may run it: the engine in this process is clickhouse-local, which
// reads and writes any host file and reaches any host, so the front keeps
// files and the network out of reach and enforces read-only users itself.

// astNode is one line of EXPLAIN AST's tree.
type astNode struct {
	kind     string // first word: Function, TableIdentifier, Literal, SelectWithUnionQuery, ...
	line     string // the whole line without indentation and "(children N)"
	name     string // for Function and TableIdentifier: the name; for Literal: its text
	children []*astNode
}

// parseAST turns EXPLAIN AST text into its tree; nil when empty.
func parseAST(text string) *astNode {
	var stack []*astNode
	var depths []int
	var root *astNode
	for _, raw := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(raw, " ")
		if strings.TrimSpace(trimmed) == "" {
			continue
		}
		depth := len(raw) - len(trimmed)
		line := strings.TrimSpace(trimmed)
		if i := strings.LastIndex(line, " (children "); i >= 0 && strings.HasSuffix(line, ")") {
			line = strings.TrimSpace(line[:i])
		}
		n := &astNode{line: line}
		n.kind, n.name, _ = strings.Cut(line, " ")
		n.name = strings.TrimSpace(n.name)
		if n.kind == "Function" || n.kind == "TableIdentifier" {
			n.name, _, _ = strings.Cut(n.name, " ")
		}
		for len(depths) > 0 && depths[len(depths)-1] >= depth {
			stack, depths = stack[:len(stack)-1], depths[:len(depths)-1]
		}
		if len(stack) == 0 {
			if root != nil {
				continue // a second tree would be a second statement; formatQuery forbids it
			}
			root = n
		} else {
			parent := stack[len(stack)-1]
			parent.children = append(parent.children, n)
		}
		stack, depths = append(stack, n), append(depths, depth)
	}
	return root
}

// policy is what the guard knows beyond the statement.
type policy struct {
	readonly       int                    // 0 all statements, 1 reads only, 2 reads and SET
	userFiles      string                 // absolute directory file() may read; "" refuses file()
	tableFunctions map[string]bool        // lower-case names of every table function of the engine
	fileExists     func(name string) bool // whether a table name names a file the engine would open
}

// Statement kinds by what they need; anything else is refused.
var (
	readKinds = map[string]bool{
		"SelectWithUnionQuery": true, "SelectIntersectExceptQuery": true, "Explain": true,
		"DescribeQuery": true, "UseQuery": true, "ExistsTableQuery": true, "ExistsDatabaseQuery": true,
		"ExistsDictionaryQuery": true, "ExistsViewQuery": true,
	}
	writeKinds = map[string]bool{
		"InsertQuery": true, "CreateQuery": true, "AlterQuery": true, "DropQuery": true,
		"TruncateQuery": true, "OptimizeQuery": true, "DetachQuery": true, "AttachQuery": true,
		"Rename": true, "DeleteQuery": true, "UpdateQuery": true, "CheckQuery": true,
		"KillQueryQuery": true, "UndropQuery": true,
	}
	// Table functions that touch neither host files nor the network.
	safeTableFunctions = map[string]bool{
		"numbers": true, "numbers_mt": true, "zeros": true, "zeros_mt": true, "generate_series": true,
		"generateseries": true, "generaterandom": true, "values": true, "null": true, "view": true,
		"viewifpermitted": true, "merge": true, "format": true, "input": true, "loop": true,
		"mergetreeindex": true, "mergetreeprojection": true, "file": true, // file: confined below
	}
	// Scalar functions that reach the network or load files by path.
	deniedFunctions = map[string]bool{
		"aiclassify": true, "aigenerate": true, "aiextract": true, "aitranslate": true,
		"catboostevaluate": true,
	}
	safeEngines = map[string]bool{
		"Memory": true, "Log": true, "TinyLog": true, "StripeLog": true, "Null": true, "Buffer": true,
		"Merge": true, "Set": true, "Join": true, "GenerateRandom": true, "Atomic": true, "Ordinary": true,
	}
	// Settings a client may not change: they move the parser away from what
	// the guard saw, or name files and disks.
	deniedSettings = map[string]bool{
		"readonly": true, "dialect": true, "implicit_select": true, "allow_experimental_kusto_dialect": true,
		"allow_experimental_prql_dialect": true, "format_schema": true, "format_schema_source": true,
		"output_format_schema": true, "format_template_resultset": true, "format_template_row": true,
		"disk": true, "storage_policy": true, "allow_ddl": true,
		"input_format_values_interpret_expressions": true, "input_format_values_deduce_templates_of_expressions": true,
	}
)

// decide says whether a statement may run: nil, or a ClickHouse-style error.
// formatted is the engine's formatQuery of it, root its EXPLAIN AST.
func decide(formatted string, root *astNode, p policy) error {
	if root == nil {
		return newErr(62, "Empty query. (SYNTAX_ERROR)")
	}
	kind := root.kind
	read := readKinds[kind] || strings.HasPrefix(kind, "Show")
	switch {
	case read:
	case kind == "Set":
		if p.readonly == 1 {
			return newErr(164, "Cannot modify settings in readonly mode. (READONLY)")
		}
	case writeKinds[kind]:
		if p.readonly > 0 {
			return newErr(164, "Cannot execute query in readonly mode. (READONLY)")
		}
	default:
		return denied("statement " + root.line + " is not allowed through the embedded warehouse")
	}
	if kind == "InsertQuery" && len(root.children) > 0 && root.children[0].kind == "Function" {
		return denied("INSERT INTO FUNCTION writes outside the warehouse")
	}
	if err := checkText(formatted, kind); err != nil {
		return err
	}
	return walk(root, p)
}

func walk(n *astNode, p policy) error {
	switch {
	case n.kind == "Set" && p.readonly == 1:
		// A SETTINGS clause changes settings as SET does: ClickHouse refuses
		// it at readonly=1, which BI tools rely on to pin what they send.
		return newErr(164, "Cannot modify settings in readonly mode. (READONLY)")
	case n.kind == "Function":
		if err := checkFunction(n, p); err != nil {
			return err
		}
	case n.kind == "TableIdentifier":
		if strings.ContainsAny(n.name, "/*?{}~\\") || p.fileExists(n.name) {
			return denied("table " + n.name + " names a host file")
		}
		if _, table, ok := strings.Cut(n.name, "."); ok && p.fileExists(table) {
			return denied("table " + n.name + " names a host file")
		}
	case n.line == "Storage definition":
		if len(n.children) > 0 && n.children[0].kind == "Function" {
			engine := n.children[0].name
			if !safeEngines[engine] && !strings.HasSuffix(engine, "MergeTree") {
				return denied("engine " + engine + " is not allowed: it reaches files or the network")
			}
		}
	case n.line == "Dictionary definition" || n.kind == "FunctionWithKeyValueArguments":
		return denied("dictionaries are not allowed: their sources reach files, commands or the network")
	}
	for _, c := range n.children {
		if err := walk(c, p); err != nil {
			return err
		}
	}
	return nil
}

func checkFunction(n *astNode, p policy) error {
	name := strings.ToLower(n.name)
	switch {
	case name == "file":
		return checkFilePath(n, p.userFiles)
	case deniedFunctions[name]:
		return denied("function " + n.name + " reaches the network or host files")
	case p.tableFunctions[name] && !safeTableFunctions[name]:
		return denied("table function " + n.name + " reaches host files or the network")
	}
	return nil
}

// checkFilePath confines file() to the user_files directory: its path must
// be a literal naming something inside it, without ".." or braces (a glob
// like {..,x} would climb out).
func checkFilePath(n *astNode, userFiles string) error {
	if userFiles == "" {
		return denied("file() is disabled: no user_files directory is configured")
	}
	if len(n.children) == 0 || len(n.children[0].children) == 0 || n.children[0].children[0].kind != "Literal" {
		return denied("file() takes a literal path inside " + userFiles)
	}
	path, ok := unquote(n.children[0].children[0].name)
	if !ok || strings.Contains(path, "..") || strings.ContainsAny(path, "{}\\") ||
		!strings.HasPrefix(path, userFiles+"/") || filepath.Clean(path) != path {
		return denied("file() may read only inside " + userFiles + ", not " + path)
	}
	return nil
}

// checkText looks in the engine's canonical text for what EXPLAIN AST does
// not show: INTO OUTFILE, FROM INFILE, ATTACH ... FROM a path, and the
// names of settings changed by SET and SETTINGS.
func checkText(formatted, kind string) error {
	sc := scanner{src: formatted, anyDepth: true}
	prev := ""
	for {
		word, _, end, ok := sc.nextWord()
		if !ok {
			return nil
		}
		upper := strings.ToUpper(word)
		switch {
		case prev == "INTO" && upper == "OUTFILE":
			return denied("INTO OUTFILE writes host files")
		case prev == "FROM" && upper == "INFILE":
			return denied("FROM INFILE reads host files")
		case kind == "AttachQuery" && upper == "FROM":
			return denied("ATTACH ... FROM reads host directories")
		case deniedSettings[strings.ToLower(word)] && strings.HasPrefix(strings.TrimLeft(formatted[end:], " "), "="):
			return newErr(452, "Setting "+word+" should not be changed through the embedded warehouse. (SETTING_CONSTRAINT_VIOLATION)")
		}
		prev = upper
	}
}

// unquote reads a ClickHouse string literal as EXPLAIN AST prints it.
func unquote(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", false
	}
	var b strings.Builder
	s := lit[1 : len(lit)-1]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", false
		}
		switch s[i] {
		case '\'', '\\':
			b.WriteByte(s[i])
		default:
			return "", false // other escapes never make a path the guard allows
		}
	}
	return b.String(), true
}

// rewriteFilePaths makes the relative paths of file('...') calls absolute
// inside userFiles, as a ClickHouse server resolves them; the guard then
// checks every file() path on the engine's parse of the result.
func rewriteFilePaths(sql, userFiles string) string {
	if userFiles == "" {
		return sql
	}
	var b strings.Builder
	sc := scanner{src: sql, anyDepth: true}
	last := 0
	for {
		word, _, end, ok := sc.nextWord()
		if !ok {
			break
		}
		if !strings.EqualFold(word, "file") {
			continue
		}
		i := end
		for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n') {
			i++
		}
		if i >= len(sql) || sql[i] != '(' {
			continue
		}
		i++
		for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n') {
			i++
		}
		if i >= len(sql) || sql[i] != '\'' {
			continue
		}
		j := strings.IndexByte(sql[i+1:], '\'')
		if j < 0 {
			break
		}
		path := sql[i+1 : i+1+j]
		if path == "" || strings.HasPrefix(path, "/") || strings.ContainsAny(path, "\\") {
			continue
		}
		b.WriteString(sql[last : i+1])
		b.WriteString(userFiles + "/" + path)
		last = i + 1 + j
	}
	b.WriteString(sql[last:])
	return b.String()
}

func denied(what string) error {
	return newErr(497, what+". (ACCESS_DENIED)")
}
