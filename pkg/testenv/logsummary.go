package testenv

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
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
