package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// procStatus reads a kB field such as VmHWM or VmRSS of process pid (0: this
// process), in bytes.
func procStatus(pid int, field string) uint64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// resetHWM resets the kernel's peak-RSS mark (VmHWM) of this process to its
// current RSS, so that a later VmHWM covers only what follows (Linux >= 4.0).
func resetHWM() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
