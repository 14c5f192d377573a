package testenv

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// textMsg is the msg of a line of log/slog's text format.
var textMsg = regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*"|\S+)`)

// LogSummary counts the lines of a log in log/slog's text format by their
// message, most frequent first: what a test shows when a log is too long.
func LogSummary(log string) string {
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		msg := line
		if m := textMsg.FindStringSubmatch(line); m != nil {
			msg = m[1]
		}
		counts[msg]++
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%6d %s\n", counts[k], k)
	}
	return b.String()
}

// CheckLogVolume fails t when a log grew with the traffic: first and all
// are its lines after the first 100 and after 1,000 source transactions,
// stopped after the process stopped; at most bound lines in all, and at
// most 2 more between the 100th and the 1,000th transaction.
func CheckLogVolume(t *testing.T, log string, first, all, stopped, bound int) {
	t.Helper()
	t.Logf("%d log lines after 1,000 transactions, %d after the first 100, %d after the stop; by message:\n%s", all, first, stopped, LogSummary(log))
	if stopped > bound || all-first > 2 {
		t.Errorf("%d log lines after 1,000 transactions and the stop (%d after the first 100), want at most %d and no growth with the traffic", stopped, first, bound)
	}
}
