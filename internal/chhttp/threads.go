package chhttp

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// readLimit is a setting the front gives every read that does not choose
// its own, and holds the analyst to whatever it asks, so that reads leave
// the engine's CPUs to the inserts. Writes, the programs' inserts among
// them, keep the engine's defaults.
type readLimit struct {
	name  string
	value int                  // what a read gets
	ok    func(asked int) bool // what the analyst may ask
	bound string               // the bound, as a refusal words it
}

// threadsLimit caps max_threads at n, so that a long analyst query leaves
// cores to the inserts.
func threadsLimit(n int) readLimit {
	return readLimit{"max_threads", n, func(a int) bool { return a >= 1 && a <= n }, fmt.Sprintf("shouldn't be greater than %d or unlimited", n)}
}

// niceLimit runs reads at nice n (os_thread_priority), so that when the
// CPUs are short the inserts run first and reads take what is left. The
// engine applies it only with CAP_SYS_NICE, and ignores it otherwise.
func niceLimit(n int) readLimit {
	return readLimit{"os_thread_priority", n, func(a int) bool { return a >= n && a <= 19 }, fmt.Sprintf("shouldn't be less than %d or more than 19", n)}
}

// apply gives settings the limit when the statement is a read that sets
// none (URL parameter or SET/SETTINGS in its text), and refuses an
// analyst's ask beyond it.
func (l readLimit) apply(settings map[string]string, kind, formatted string, analyst bool) error {
	inText := settingValues(formatted, l.name)
	if analyst {
		asked := inText
		if v, ok := settings[l.name]; ok {
			asked = append(asked, v)
		}
		for _, v := range asked {
			if n, err := strconv.Atoi(v); err != nil || !l.ok(n) {
				return newErr(452, fmt.Sprintf("Setting %s %s, got %s. (SETTING_CONSTRAINT_VIOLATION)", l.name, l.bound, v))
			}
		}
	}
	_, explicit := settings[l.name]
	if isRead(kind) && !explicit && len(inText) == 0 {
		settings[l.name] = strconv.Itoa(l.value)
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
