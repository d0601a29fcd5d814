package warehouse

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// shardKeys are the tables whose rows are spread over the shards, and by
// what. Events go by a hash of the resident, so that all the events of one
// resident, and every copy of one event (same event_id, same resident), land
// on one shard: the per-shard sets of residents are disjoint and a
// redelivered event collapses with its first copy. The first-seen ledger
// (its resident in 16 bytes) goes by a hash of the resident too, so that a
// resident's signed rows sit together and the shards' sums add up. A table
// that a materialized view fills from a sharded table is sharded with it
// (see NewCluster); every other table is small and whole on every node.
var shardKeys = map[string]shardKey{
	"ikd.events":     {expr: "cityHash64(resident)", columns: []string{"resident"}},
	"ikd.first_seen": {expr: "cityHash64(resident)", columns: []string{"resident"}},
}

// anyShard is the key of a table whose rows are partial aggregates that the
// reads merge across shards anyway: a row inserted through its Distributed
// table (a backfill) may land on any shard.
var anyShard = shardKey{expr: "rand()"}

// shardKey is a sharding expression and the columns it reads.
type shardKey struct {
	expr    string
	columns []string
}

// localSuffix names the shard-local table behind a sharded table; the
// Distributed table keeps the name the programs and views use.
const localSuffix = "_local"

// clusterName is what ON CLUSTER takes unquoted.
var clusterName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Cluster turns the migrations, written for one server, into the DDL of a
// replicated, sharded ClickHouse cluster: every statement runs ON CLUSTER,
// MergeTree-family engines become their Replicated forms, and a sharded
// table becomes a shard-local table (name_local) under a Distributed table
// of its own name, so that inserts and the views need not change.
type Cluster struct {
	name    string
	sharded map[string]shardKey // by "db.table"
	onShard map[string]bool     // materialized views that run on each shard's local tables
	created map[string]bool     // the tables the migrations make
}

// NewCluster plans the cluster named name for migrations: a materialized
// view that reads a sharded table runs on each shard's local table, so the
// table it writes to is sharded too, by the same key when it has the key's
// columns (so that a row inserted through its Distributed table lands on the
// shard of its resident), else by rand(): its rows are per-shard partial
// aggregates, which every read merges across the shards.
func NewCluster(name string, migrations []Migration) (*Cluster, error) {
	if err := ValidClusterName(name); err != nil {
		return nil, err
	}
	c := &Cluster{name: name, sharded: maps.Clone(shardKeys), onShard: map[string]bool{}, created: map[string]bool{}}
	var views []materializedView
	columns := map[string][]string{}
	for _, m := range migrations {
		for _, stmt := range Statements(m.Text) {
			toks, err := tokenize(stmt)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			if v, ok := parseMaterializedView(toks); ok {
				views = append(views, v)
			}
			if table, cols, ok := tableColumns(toks); ok {
				columns[table] = cols
				c.created[table] = true
			}
		}
	}
	for grew := true; grew; {
		grew = false
		for _, v := range views {
			if _, done := c.sharded[v.target]; done {
				continue
			}
			if key, ok := c.shardKeyOf(v.sources); ok {
				if !containsAll(columns[v.target], key.columns) {
					key = anyShard
				}
				c.sharded[v.target] = key
				grew = true
			}
		}
	}
	for _, v := range views {
		_, c.onShard[v.name] = c.sharded[v.target]
	}
	return c, nil
}

// shardKeyOf is the key of the first sharded table among sources.
func (c *Cluster) shardKeyOf(sources []string) (shardKey, bool) {
	for _, s := range sources {
		if key, ok := c.sharded[s]; ok {
			return key, true
		}
	}
	return shardKey{}, false
}

// tableColumns reads the table a CREATE TABLE makes and the names of its
// columns (none without a column list).
func tableColumns(toks []token) (string, []string, bool) {
	cur := &cursor{toks: toks}
	if !cur.accept("CREATE") {
		return "", nil, false
	}
	cur.accept("OR", "REPLACE")
	if !cur.accept("TABLE") {
		return "", nil, false
	}
	cur.accept("IF", "NOT", "EXISTS")
	n, err := cur.name(true)
	if err != nil {
		return "", nil, false
	}
	if cur.i >= len(toks) || toks[cur.i].text != "(" {
		return n.qualified(), nil, true
	}
	closing := matching(toks, cur.i)
	if closing < 0 {
		return n.qualified(), nil, true
	}
	var cols []string
	for _, item := range splitTopLevel(toks[:closing], cur.i+1) {
		if len(item) == 0 || anyKeyword(item[0], []string{"INDEX", "PROJECTION", "CONSTRAINT", "PRIMARY"}) {
			continue
		}
		if col, ok := item[0].ident(); ok {
			cols = append(cols, col)
		}
	}
	return n.qualified(), cols, true
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return len(want) > 0
}

// ValidClusterName refuses a name that ON CLUSTER cannot take unquoted.
func ValidClusterName(name string) error {
	if !clusterName.MatchString(name) {
		return fmt.Errorf("cluster name %q: want letters, digits and underscores, not starting with a digit", name)
	}
	return nil
}

// Sharded returns the tables the migrations make that are sharded, with
// their sharding keys.
func (c *Cluster) Sharded() map[string]string {
	out := map[string]string{}
	for t, key := range c.sharded {
		if c.created[t] {
			out[t] = key.expr
		}
	}
	return out
}

func (c *Cluster) readsSharded(sources []string) bool {
	for _, s := range sources {
		if _, ok := c.sharded[s]; ok {
			return true
		}
	}
	return false
}

// Rewrite returns the statements that stmt, written for one server, becomes
// on the cluster. It refuses a statement it cannot place rather than run it
// on one node only.
func (c *Cluster) Rewrite(stmt string) ([]string, error) {
	toks, err := tokenize(stmt)
	if err != nil {
		return nil, err
	}
	cur := &cursor{toks: toks}
	var out []string
	switch {
	case len(toks) == 0:
		return nil, nil
	case cur.accept("INSERT"):
		return []string{stmt}, nil // through the Distributed table, which places each row
	case cur.accept("CREATE"):
		out, err = c.create(stmt, cur)
	case cur.accept("ALTER", "TABLE"):
		out, err = c.alter(stmt, cur)
	case cur.accept("DROP"):
		out, err = c.drop(stmt, cur)
	case cur.accept("TRUNCATE"):
		cur.accept("TABLE")
		out, err = c.onLocal(stmt, cur)
	case cur.accept("OPTIMIZE", "TABLE"), cur.accept("DELETE", "FROM"):
		out, err = c.onLocal(stmt, cur)
	default:
		err = errors.New("no cluster form is known for this kind of statement")
	}
	if err != nil {
		return nil, fmt.Errorf("on cluster %s: %w: %.80s", c.name, err, oneLine(stmt))
	}
	return out, nil
}

func (c *Cluster) create(stmt string, cur *cursor) ([]string, error) {
	cur.accept("OR", "REPLACE")
	switch {
	case cur.accept("TABLE"):
		return c.createTable(stmt, cur)
	case cur.accept("MATERIALIZED", "VIEW"):
		return c.createMaterializedView(stmt, cur)
	case cur.accept("VIEW"), cur.accept("DATABASE"):
		cur.accept("IF", "NOT", "EXISTS")
		n, err := cur.name(false)
		if err != nil {
			return nil, err
		}
		return c.single(stmt, cur, n, n)
	}
	return nil, errors.New("no cluster form is known for this CREATE")
}

func (c *Cluster) createTable(stmt string, cur *cursor) ([]string, error) {
	cur.accept("IF", "NOT", "EXISTS")
	n, err := cur.name(true)
	if err != nil {
		return nil, err
	}
	if err := cur.noCluster(); err != nil {
		return nil, err
	}
	key, sharded := c.sharded[n.qualified()]
	local := n
	path := "/clickhouse/tables/all/" + n.db + "/" + n.table
	if sharded {
		local.table += localSuffix
		path = "/clickhouse/tables/{shard}/" + n.db + "/" + local.table
	}
	edits := []edit{{n.start, n.end, local.sql() + " ON CLUSTER " + c.name}}
	e, err := c.replicatedEngine(stmt, cur.toks, cur.i, path, sharded)
	if err != nil {
		return nil, err
	}
	edits = append(edits, e)
	edits = append(edits, settingEdits(cur.toks)...)
	out := []string{apply(stmt, edits)}
	if sharded {
		var prefix []string // CREATE [OR REPLACE] TABLE [IF NOT EXISTS], without comments
		for _, t := range cur.toks {
			if t.start >= n.start {
				break
			}
			prefix = append(prefix, t.text)
		}
		args := fmt.Sprintf("%s, %s, %s", quote(c.name), quote(n.db), quote(local.table))
		if key.expr != "" {
			args += ", " + key.expr
		}
		out = append(out, fmt.Sprintf("%s %s ON CLUSTER %s AS %s ENGINE = Distributed(%s)", strings.Join(prefix, " "), n.sql(), c.name, local.sql(), args))
	}
	return out, nil
}

// replicatedEngine is the edit that turns the statement's top-level ENGINE
// clause, from token from on, into its Replicated form with Keeper path path.
func (c *Cluster) replicatedEngine(stmt string, toks []token, from int, path string, sharded bool) (edit, error) {
	i := topLevel(toks, from, "ENGINE")
	if i < 0 {
		return edit{}, errors.New("a table without an ENGINE clause cannot be placed on the cluster")
	}
	i++
	if i < len(toks) && toks[i].text == "=" {
		i++
	}
	if i >= len(toks) || toks[i].kind != wordToken {
		return edit{}, errors.New("ENGINE names no engine")
	}
	engine, end, args := toks[i].text, toks[i].end, ""
	if i+1 < len(toks) && toks[i+1].text == "(" {
		closing := matching(toks, i+1)
		if closing < 0 {
			return edit{}, errors.New("unmatched parenthesis after ENGINE")
		}
		args, end = strings.TrimSpace(stmt[toks[i+1].end:toks[closing].start]), toks[closing].end
	}
	switch {
	case strings.HasPrefix(engine, "Replicated"):
		return edit{}, fmt.Errorf("engine %s is already replicated: migrations are written for one server", engine)
	case !strings.HasSuffix(engine, "MergeTree"):
		if sharded {
			return edit{}, fmt.Errorf("a sharded table needs a MergeTree-family engine, not %s", engine)
		}
		return edit{toks[i].start, toks[i].start, ""}, nil // the same engine on every node
	}
	replicated := quote(path) + ", '{replica}'"
	if args != "" {
		replicated += ", " + args
	}
	return edit{toks[i].start, end, "Replicated" + engine + "(" + replicated + ")"}, nil
}

func (c *Cluster) createMaterializedView(stmt string, cur *cursor) ([]string, error) {
	v, ok := parseMaterializedView(cur.toks)
	if !ok {
		return nil, errors.New("a materialized view on a cluster must write TO a table of its own, named with its database")
	}
	cur.accept("IF", "NOT", "EXISTS")
	n, err := cur.name(true)
	if err != nil {
		return nil, err
	}
	if err := cur.noCluster(); err != nil {
		return nil, err
	}
	edits := []edit{{n.end, n.end, " ON CLUSTER " + c.name}}
	_, targetSharded := c.sharded[v.target]
	switch {
	case c.readsSharded(v.sources) && !targetSharded:
		return nil, fmt.Errorf("%s reads a sharded table but writes %s, which is not sharded (plan the cluster with NewCluster)", n.qualified(), v.target)
	case !c.readsSharded(v.sources) && targetSharded:
		return nil, fmt.Errorf("%s fills the sharded %s from tables that are not sharded", n.qualified(), v.target)
	case targetSharded:
		// It runs on each shard's local tables, where the inserts land.
		edits = append(edits, c.localRefs(cur.toks, cur.i)...)
	}
	return []string{apply(stmt, edits)}, nil
}

// localRefs are the edits that name the local table of every sharded table
// written from token from on.
func (c *Cluster) localRefs(toks []token, from int) []edit {
	var edits []edit
	for _, r := range tableRefs(toks, from) {
		if _, ok := c.sharded[r.qualified()]; ok {
			local := r
			local.table += localSuffix
			edits = append(edits, edit{r.start, r.end, local.sql()})
		}
	}
	return edits
}

// alterColumn are the ALTER commands that change a table's columns, which
// a Distributed table must follow; every other command (settings,
// projections, indexes, mutations) is for the local table alone.
var alterColumn = []string{"ADD", "DROP", "MODIFY", "RENAME", "COMMENT"}

func (c *Cluster) alter(stmt string, cur *cursor) ([]string, error) {
	n, err := cur.name(true)
	if err != nil {
		return nil, err
	}
	if err := cur.noCluster(); err != nil {
		return nil, err
	}
	if _, sharded := c.sharded[n.qualified()]; !sharded {
		edits := append(settingEdits(cur.toks), edit{n.end, n.end, " ON CLUSTER " + c.name})
		if c.onShard[n.qualified()] { // MODIFY QUERY of a view that runs on each shard
			edits = append(edits, c.localRefs(cur.toks, cur.i)...)
		}
		return []string{apply(stmt, edits)}, nil
	}
	columns, others := 0, 0
	for _, cmd := range splitTopLevel(cur.toks, cur.i) {
		if len(cmd) > 1 && cmd[1].is("COLUMN") && anyKeyword(cmd[0], alterColumn) {
			columns++
		} else {
			others++
		}
	}
	local := n
	local.table += localSuffix
	out := []string{apply(stmt, append(settingEdits(cur.toks), edit{n.start, n.end, local.sql() + " ON CLUSTER " + c.name}))}
	switch {
	case columns > 0 && others > 0:
		return nil, fmt.Errorf("%s is sharded: put its column changes and its other changes in separate ALTERs", n.qualified())
	case columns > 0:
		out = append(out, apply(stmt, []edit{{n.end, n.end, " ON CLUSTER " + c.name}}))
	}
	return out, nil
}

func (c *Cluster) drop(stmt string, cur *cursor) ([]string, error) {
	if cur.accept("DATABASE") {
		cur.accept("IF", "EXISTS")
		n, err := cur.name(false)
		if err != nil {
			return nil, err
		}
		return c.single(stmt, cur, n, n)
	}
	if !cur.accept("TABLE") && !cur.accept("VIEW") {
		return nil, errors.New("no cluster form is known for this DROP")
	}
	cur.accept("IF", "EXISTS")
	n, err := cur.name(true)
	if err != nil {
		return nil, err
	}
	if cur.i < len(cur.toks) && cur.toks[cur.i].text == "," {
		return nil, errors.New("drop one table per statement")
	}
	out, err := c.single(stmt, cur, n, n)
	if _, sharded := c.sharded[n.qualified()]; sharded && err == nil {
		local := n
		local.table += localSuffix
		more, _ := c.single(stmt, cur, n, local)
		out = append(out, more...)
	}
	return out, err
}

// onLocal runs a statement about a table's data (TRUNCATE, OPTIMIZE, DELETE) on
// every node, on the shard-local table of a sharded one.
func (c *Cluster) onLocal(stmt string, cur *cursor) ([]string, error) {
	cur.accept("IF", "EXISTS")
	n, err := cur.name(true)
	if err != nil {
		return nil, err
	}
	local := n
	if _, sharded := c.sharded[n.qualified()]; sharded {
		local.table += localSuffix
	}
	return c.single(stmt, cur, n, local)
}

// single is stmt with name n written as as, run ON CLUSTER.
func (c *Cluster) single(stmt string, cur *cursor, n, as name) ([]string, error) {
	if err := cur.noCluster(); err != nil {
		return nil, err
	}
	return []string{apply(stmt, []edit{{n.start, n.end, as.sql() + " ON CLUSTER " + c.name}})}, nil
}

// settingEdits name the replicated form of a one-server table setting: the
// deduplication window of a replicated table is kept in Keeper, under
// another setting.
func settingEdits(toks []token) []edit {
	var out []edit
	for _, t := range toks {
		if t.is("non_replicated_deduplication_window") {
			out = append(out, edit{t.start, t.end, "replicated_deduplication_window"})
		}
	}
	return out
}

// materializedView is what a CREATE MATERIALIZED VIEW reads and writes.
type materializedView struct {
	name    string   // "db.view"
	target  string   // "db.table" of its TO table
	sources []string // every "db.table" its query names
}

// parseMaterializedView reads a CREATE MATERIALIZED VIEW ... TO db.t AS ...;
// ok is false for any other statement or one without a qualified TO table.
func parseMaterializedView(toks []token) (materializedView, bool) {
	cur := &cursor{toks: toks}
	if !cur.accept("CREATE") {
		return materializedView{}, false
	}
	cur.accept("OR", "REPLACE")
	if !cur.accept("MATERIALIZED", "VIEW") {
		return materializedView{}, false
	}
	cur.accept("IF", "NOT", "EXISTS")
	n, err := cur.name(false)
	if err != nil {
		return materializedView{}, false
	}
	if cur.accept("ON", "CLUSTER") {
		cur.i++
	}
	if !cur.accept("TO") {
		return materializedView{}, false
	}
	target, err := cur.name(true)
	if err != nil {
		return materializedView{}, false
	}
	v := materializedView{name: n.qualified(), target: target.qualified()}
	for _, r := range tableRefs(toks, cur.i) {
		v.sources = append(v.sources, r.qualified())
	}
	sort.Strings(v.sources)
	return v, true
}

// name is a possibly qualified table, database or view name and where it is
// written in the statement.
type name struct {
	db, table  string
	start, end int
}

func (n name) qualified() string { return n.db + "." + n.table }

func (n name) sql() string {
	if n.db == "" {
		return quoteIdent(n.table)
	}
	return quoteIdent(n.db) + "." + quoteIdent(n.table)
}

// cursor walks a statement's tokens.
type cursor struct {
	toks []token
	i    int
}

// accept consumes the keywords kws when they come next, in order.
func (c *cursor) accept(kws ...string) bool {
	if c.i+len(kws) > len(c.toks) {
		return false
	}
	for k, kw := range kws {
		if !c.toks[c.i+k].is(kw) {
			return false
		}
	}
	c.i += len(kws)
	return true
}

// name consumes a name; qualified requires its database.
func (c *cursor) name(qualified bool) (name, error) {
	if c.i >= len(c.toks) {
		return name{}, errors.New("a name is missing")
	}
	first, ok := c.toks[c.i].ident()
	if !ok {
		return name{}, fmt.Errorf("%q is not a name", c.toks[c.i].text)
	}
	n := name{table: first, start: c.toks[c.i].start, end: c.toks[c.i].end}
	c.i++
	if c.i+1 < len(c.toks) && c.toks[c.i].text == "." {
		if second, ok := c.toks[c.i+1].ident(); ok {
			n.db, n.table, n.end = first, second, c.toks[c.i+1].end
			c.i += 2
		}
	}
	if qualified && n.db == "" {
		return name{}, fmt.Errorf("name the database of %s (ikd.%s): the cluster's tables are placed by their full names", n.table, n.table)
	}
	return n, nil
}

// noCluster refuses a statement that names a cluster itself: the runner
// alone decides where the migrations run.
func (c *cursor) noCluster() error {
	if c.i+1 < len(c.toks) && c.toks[c.i].is("ON") && c.toks[c.i+1].is("CLUSTER") {
		return errors.New("the statement already names a cluster; migrations are written for one server")
	}
	return nil
}

// tableRefs returns every db.table written from token from on.
func tableRefs(toks []token, from int) []name {
	var out []name
	for i := from; i+2 < len(toks); i++ {
		if toks[i+1].text != "." || (i > 0 && toks[i-1].text == ".") {
			continue
		}
		db, ok1 := toks[i].ident()
		table, ok2 := toks[i+2].ident()
		if ok1 && ok2 {
			out = append(out, name{db: db, table: table, start: toks[i].start, end: toks[i+2].end})
		}
	}
	return out
}

// topLevel is the index of the first keyword kw at parenthesis depth 0
// from token from on, or -1.
func topLevel(toks []token, from int, kw string) int {
	depth := 0
	for i := from; i < len(toks); i++ {
		switch {
		case toks[i].text == "(":
			depth++
		case toks[i].text == ")":
			depth--
		case depth == 0 && toks[i].is(kw):
			return i
		}
	}
	return -1
}

// matching is the index of the parenthesis that closes the one at open, or -1.
func matching(toks []token, open int) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		switch toks[i].text {
		case "(":
			depth++
		case ")":
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTopLevel splits the tokens from from on at commas of depth 0.
func splitTopLevel(toks []token, from int) [][]token {
	var out [][]token
	depth, begin := 0, from
	for i := from; i < len(toks); i++ {
		switch {
		case toks[i].text == "(":
			depth++
		case toks[i].text == ")":
			depth--
		case depth == 0 && toks[i].text == ",":
			out = append(out, toks[begin:i])
			begin = i + 1
		}
	}
	return append(out, toks[begin:])
}

func anyKeyword(t token, kws []string) bool {
	for _, kw := range kws {
		if t.is(kw) {
			return true
		}
	}
	return false
}

// edit replaces stmt[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// apply makes non-overlapping edits to stmt.
func apply(stmt string, edits []edit) string {
	sorted := append([]edit(nil), edits...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].start > sorted[b].start })
	for _, e := range sorted {
		stmt = stmt[:e.start] + e.text + stmt[e.end:]
	}
	return stmt
}

func quote(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }

func quoteIdent(s string) string {
	if clusterName.MatchString(s) {
		return s
	}
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
