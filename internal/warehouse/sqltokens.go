package warehouse

import (
	"fmt"
	"strings"
)

// tokenKind tells apart what the cluster rewriter must not confuse: a word
// in a string literal or a comment is never a keyword or a table name.
type tokenKind int

const (
	wordToken   tokenKind = iota // a keyword or bare identifier: ENGINE, ikd, events
	quotedToken                  // an identifier in backquotes or double quotes
	stringToken                  // a string literal in single quotes
	numberToken
	punctToken // one character: ( ) , . = ; { } ...
)

// token is one lexical unit of a statement, with its place in the text so
// that the rewriter splices the text instead of printing a tree of its own.
type token struct {
	kind       tokenKind
	text       string // as written
	start, end int
}

// ident is the identifier a word or quoted token names.
func (t token) ident() (string, bool) {
	switch t.kind {
	case wordToken:
		return t.text, true
	case quotedToken:
		return strings.ReplaceAll(t.text[1:len(t.text)-1], t.text[:1]+t.text[:1], t.text[:1]), true
	}
	return "", false
}

// is reports whether t is the keyword kw (case-insensitive, as ClickHouse's
// keywords are).
func (t token) is(kw string) bool { return t.kind == wordToken && strings.EqualFold(t.text, kw) }

// tokenize splits a ClickHouse statement into tokens, skipping whitespace
// and comments (-- to the end of the line, /* ... */).
func tokenize(sql string) ([]token, error) {
	var out []token
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case strings.HasPrefix(sql[i:], "/*"):
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("unterminated comment at offset %d", i)
			}
			i += j + 4
		case c == '\'' || c == '`' || c == '"':
			j, err := closingQuote(sql, i)
			if err != nil {
				return nil, err
			}
			kind := quotedToken
			if c == '\'' {
				kind = stringToken
			}
			out = append(out, token{kind, sql[i:j], i, j})
			i = j
		case isWordStart(c):
			j := i + 1
			for j < len(sql) && isWordPart(sql[j]) {
				j++
			}
			out = append(out, token{wordToken, sql[i:j], i, j})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(sql) && (isWordPart(sql[j]) || sql[j] == '.') {
				j++
			}
			out = append(out, token{numberToken, sql[i:j], i, j})
			i = j
		default:
			out = append(out, token{punctToken, sql[i : i+1], i, i + 1})
			i++
		}
	}
	return out, nil
}

// closingQuote returns the offset just past the quoted run that starts at
// sql[i]; a quote is escaped by a backslash or by doubling it.
func closingQuote(sql string, i int) (int, error) {
	q := sql[i]
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated %c at offset %d", q, i)
}

func isWordStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isWordPart(c byte) bool { return isWordStart(c) || (c >= '0' && c <= '9') || c == '$' }
