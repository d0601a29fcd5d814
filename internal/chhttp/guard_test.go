package chhttp

import (
	"errors"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/engine"
)

// ASTs as the engine's EXPLAIN AST prints them (chDB 26.5).
const (
	astSelectFile = `SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function file (alias f) (children 1)
       ExpressionList (children 2)
        Literal 'PATH'
        Literal 'CSV'
`
	astSelectURLInSubquery = `SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier t
   Function in (children 1)
    ExpressionList (children 2)
     Identifier a
     Subquery (children 1)
      SelectWithUnionQuery (children 1)
       ExpressionList (children 1)
        SelectQuery (children 2)
         ExpressionList (children 1)
          Asterisk
         TablesInSelectQuery (children 1)
          TablesInSelectQueryElement (children 1)
           TableExpression (children 1)
            Function url (children 1)
             ExpressionList (children 1)
              Literal 'http://x'
`
	astTable = `SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier NAME
`
	astCreateEngine = `CreateQuery t (children 3)
 Identifier t
 Columns definition (children 1)
  ExpressionList (children 1)
   ColumnDeclaration a (children 1)
    DataType UInt8
 Storage definition (children 2)
  Function ENGINE
  Identifier a
`
	astInsertFunction = `InsertQuery   (children 2)
 Function file (children 1)
  ExpressionList (children 1)
   Literal '/u/x.csv'
 SelectWithUnionQuery (children 1)
`
	astInsert = `InsertQuery   (children 1)
 Identifier t
`
	astSelectSettings = `SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Literal UInt64_1
   Set
`
	astSubquerySettings = `SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Subquery (children 1)
       SelectWithUnionQuery (children 1)
        ExpressionList (children 1)
         SelectQuery (children 2)
          ExpressionList (children 1)
           Literal UInt64_1
          Set
`
	astSet    = "Set\n"
	astSystem = "SYSTEM query\n"
)

func TestDecideAllowsOnlyWhatStaysInsideTheWarehouse(t *testing.T) {
	files := map[string]bool{"README.md": true}
	p := policy{
		userFiles:      "/u",
		tableFunctions: map[string]bool{"file": true, "url": true, "numbers": true, "s3": true},
		fileExists:     func(name string) bool { return files[name] },
	}
	ro := p
	ro.readonly = 1
	ro2 := p
	ro2.readonly = 2
	sub := func(s, old, new string) string { return strings.Replace(s, old, new, 1) }
	for _, tc := range []struct {
		name      string
		formatted string
		ast       string
		p         policy
		code      int // 0: allowed
	}{
		{"file inside user_files", "SELECT", sub(astSelectFile, "PATH", "/u/targets.csv"), p, 0},
		{"file glob inside user_files", "SELECT", sub(astSelectFile, "PATH", "/u/*.csv"), p, 0},
		{"file outside", "SELECT", sub(astSelectFile, "PATH", "/proc/self/environ"), p, 497},
		{"file climbing out", "SELECT", sub(astSelectFile, "PATH", "/u/../etc/passwd"), p, 497},
		{"file brace glob", "SELECT", sub(astSelectFile, "PATH", "/u/{..,a}/x"), p, 497},
		{"file with an escape", "SELECT", sub(astSelectFile, "PATH", `/u/\x2e\x2e/x`), p, 497},
		{"file without user_files", "SELECT", sub(astSelectFile, "PATH", "/u/x.csv"), policy{fileExists: p.fileExists}, 497},
		{"url in a subquery", "SELECT", astSelectURLInSubquery, p, 497},
		{"table", "SELECT", sub(astTable, "NAME", "ikd.events"), p, 0},
		{"table naming a path", "SELECT", sub(astTable, "NAME", "/proc/self/environ"), p, 497},
		{"table naming a file here", "SELECT", sub(astTable, "NAME", "README.md"), p, 497},
		{"MergeTree engine", "CREATE", sub(astCreateEngine, "ENGINE", "ReplacingMergeTree"), p, 0},
		{"Memory engine", "CREATE", sub(astCreateEngine, "ENGINE", "Memory"), p, 0},
		{"URL engine", "CREATE", sub(astCreateEngine, "ENGINE", "URL"), p, 497},
		{"File engine", "CREATE", sub(astCreateEngine, "ENGINE", "File"), p, 497},
		{"Distributed engine", "CREATE", sub(astCreateEngine, "ENGINE", "Distributed"), p, 497},
		{"insert into function", "INSERT INTO FUNCTION", astInsertFunction, p, 497},
		{"insert", "INSERT INTO t FORMAT Native", astInsert, p, 0},
		{"insert from infile", "INSERT INTO t FROM INFILE '/etc/passwd' FORMAT CSV", astInsert, p, 497},
		{"into outfile", "SELECT 1\nINTO OUTFILE '/tmp/x'", sub(astTable, "NAME", "t"), p, 497},
		{"into outfile in a string is data", "SELECT 'INTO OUTFILE'", sub(astTable, "NAME", "t"), p, 0},
		{"set", "SET max_threads = 1", astSet, p, 0},
		{"set readonly", "SET readonly = 0", astSet, p, 452},
		{"settings dialect", "SELECT 1\nSETTINGS dialect = 'kusto'", sub(astTable, "NAME", "t"), p, 452},
		{"system", "SYSTEM SHUTDOWN", astSystem, p, 497},
		{"readonly 1 reads", "SELECT", sub(astTable, "NAME", "t"), ro, 0},
		{"readonly 1 inserts", "INSERT INTO t FORMAT CSV", astInsert, ro, 164},
		{"readonly 1 sets", "SET max_threads = 1", astSet, ro, 164},
		{"readonly 2 sets", "SET max_threads = 1", astSet, ro2, 0},
		{"readonly 1 settings clause", "SELECT 1\nSETTINGS max_threads = 1", astSelectSettings, ro, 164},
		{"readonly 1 settings clause in a subquery", "SELECT", astSubquerySettings, ro, 164},
		{"readonly 2 settings clause", "SELECT 1\nSETTINGS max_threads = 1", astSelectSettings, ro2, 0},
		{"settings clause", "SELECT 1\nSETTINGS max_threads = 1", astSelectSettings, p, 0},
		{"readonly 2 creates", "CREATE", sub(astCreateEngine, "ENGINE", "Memory"), ro2, 164},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decide(tc.formatted, parseAST(tc.ast), tc.p)
			switch {
			case tc.code == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.code != 0 && err == nil:
				t.Fatalf("allowed, want code %d", tc.code)
			case tc.code != 0 && !hasCode(err, tc.code):
				t.Fatalf("got %v, want code %d", err, tc.code)
			}
		})
	}
}

func hasCode(err error, code int) bool {
	var e *engine.Error
	return errors.As(err, &e) && e.Code == code
}

func TestRewriteFilePathsResolvesRelativePathsInUserFiles(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT * FROM file('t.csv', CSV)", "SELECT * FROM file('/u/t.csv', CSV)"},
		{"SELECT file ( 'a/b.txt' )", "SELECT file ( '/u/a/b.txt' )"},
		{"SELECT * FROM file('/etc/passwd')", "SELECT * FROM file('/etc/passwd')"},
		{"SELECT 'file(''x'')'", "SELECT 'file(''x'')'"},
		{"SELECT profile('x')", "SELECT profile('x')"},
	} {
		if got := rewriteFilePaths(tc.in, "/u"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}
