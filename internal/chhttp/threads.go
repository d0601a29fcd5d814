package chhttp

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// capThreads gives a read that does not choose its own max_threads the
// front's cap, so that a long analyst query leaves cores to the inserts,
// and holds the analyst to the cap whatever it asks. Writes, the programs'
// inserts among them, keep the engine's default. limit <= 0 caps nothing.
func capThreads(settings map[string]string, kind, formatted string, limit int, analyst bool) error {
	if limit <= 0 {
		return nil
	}
	inText := settingValues(formatted, "max_threads")
	if analyst {
		asked := inText
		if v, ok := settings["max_threads"]; ok {
			asked = append(asked, v)
		}
		for _, v := range asked {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > limit {
				return newErr(452, fmt.Sprintf("Setting max_threads shouldn't be greater than %d or unlimited, got %s. (SETTING_CONSTRAINT_VIOLATION)", limit, v))
			}
		}
	}
	_, explicit := settings["max_threads"]
	if isRead(kind) && !explicit && len(inText) == 0 {
		settings["max_threads"] = strconv.Itoa(limit)
	}
	return nil
}

// isRead says whether a statement kind of EXPLAIN AST only reads.
func isRead(kind string) bool {
	return readKinds[kind] || strings.HasPrefix(kind, "Show")
}

// settingValues finds, in the engine's canonical text of a statement, the
// values SET and SETTINGS give the setting name; a value that is not a bare
// number is returned as its text up to a comma, so that callers refuse it.
func settingValues(formatted, name string) []string {
	var values []string
	sc := scanner{src: formatted, anyDepth: true}
	for {
		word, _, end, ok := sc.nextWord()
		if !ok {
			return values
		}
		rest := strings.TrimLeft(formatted[end:], " ")
		if !strings.EqualFold(word, name) || !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " ")
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 0 || !endsValue(rest[n:]) {
			n = strings.IndexAny(rest+",", ",;\n") // 'auto', 1 + 5, ...: not a number
		}
		values = append(values, rest[:n])
	}
}

// endsValue says whether what follows a number ends it: the end, a
// separator or a keyword, not an operator or more of a word.
func endsValue(after string) bool {
	if after != "" && isWordByte(after[0]) {
		return false
	}
	after = strings.TrimLeft(after, " \n\t")
	return after == "" || strings.ContainsRune(",;)", rune(after[0])) || unicode.IsLetter(rune(after[0]))
}
