// Package logsample keeps a flood of like events readable in the logs: of a
// run counted from one, the first and every thousandth is logged, with the
// count, so that the line says how many there were.
package logsample

// Every is how many like events pass between two logged ones.
const Every = 1000

// Due says whether the n-th of a run of like events (n from 1) is logged.
func Due(n uint64) bool { return n == 1 || n > 0 && n%Every == 0 }
