package chhttp

import (
	"strings"
	"unicode"
)

// statement is what the front needs to know of a query's text: whether it is
// an INSERT carrying data, and which output format it names.
type statement struct {
	insert     bool
	head       string // for an INSERT with data: the text before FORMAT/VALUES
	dataFormat string // for an INSERT with data: the input format
	inline     string // data written in the query text after the format name
	format     string // for other statements: the FORMAT clause's name, if any
}

// parseStatement scans the top level of sql, outside quotes, comments and
// parentheses. It is not a SQL parser: it finds only the keywords that decide
// where data and formats begin, which is all ClickHouse's HTTP interface
// decides before handing the query to the engine.
func parseStatement(sql string) statement {
	var st statement
	sc := scanner{src: sql}
	first := true
	for {
		word, start, end, ok := sc.nextWord()
		if !ok {
			return st
		}
		upper := strings.ToUpper(word)
		if first {
			st.insert = upper == "INSERT"
			first = false
			continue
		}
		switch {
		case upper == "FORMAT":
			name, _, nameEnd, ok := sc.nextWord()
			if !ok {
				return st
			}
			if !st.insert {
				st.format = name
				continue
			}
			st.head, st.dataFormat = sql[:start], name
			st.inline = skipOneNewline(sql[nameEnd:])
			return st
		case st.insert && upper == "VALUES":
			st.head, st.dataFormat = sql[:start], "Values"
			st.inline = sql[end:]
			return st
		case st.insert && (upper == "SELECT" || upper == "WITH" || upper == "FROM"):
			// INSERT ... SELECT and INSERT ... FROM INFILE carry no data of their own.
			st.insert = false
			return st
		}
	}
}

// skipOneNewline drops the separator between a format name and its data.
func skipOneNewline(s string) string {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, "\r\n") {
		return s[2:]
	}
	if strings.HasPrefix(s, "\n") {
		return s[1:]
	}
	return s
}

type scanner struct {
	src      string
	pos      int
	depth    int
	anyDepth bool // return words inside parentheses too
}

// nextWord returns the next identifier-like word at parenthesis depth 0, or
// at any depth with anyDepth.
func (s *scanner) nextWord() (word string, start, end int, ok bool) {
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '\'' || c == '"' || c == '`':
			s.skipQuoted(c)
		case c == '-' && strings.HasPrefix(s.src[s.pos:], "--"):
			s.skipUntil("\n")
		case c == '/' && strings.HasPrefix(s.src[s.pos:], "/*"):
			s.skipUntil("*/")
		case c == '(':
			s.depth++
			s.pos++
		case c == ')':
			s.depth--
			s.pos++
		case isWordByte(c):
			start = s.pos
			for s.pos < len(s.src) && isWordByte(s.src[s.pos]) {
				s.pos++
			}
			if s.depth == 0 || s.anyDepth {
				return s.src[start:s.pos], start, s.pos, true
			}
		default:
			s.pos++
		}
	}
	return "", 0, 0, false
}

func (s *scanner) skipQuoted(q byte) {
	s.pos++
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case '\\':
			s.pos += 2
			continue
		case q:
			s.pos++
			return
		}
		s.pos++
	}
}

func (s *scanner) skipUntil(end string) {
	if i := strings.Index(s.src[s.pos:], end); i >= 0 {
		s.pos += i + len(end)
		return
	}
	s.pos = len(s.src)
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 0x80 || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))
}
