package testenv

import (
	"regexp"
	"strings"
	"testing"
)

// MaxHelpLines bounds every subcommand's -h text: one line per key it
// reads, a header per section, and the usage lines around them.
const MaxHelpLines = 100

// HelpCase is what one subcommand's -h must show: the keys it reads (each
// on a line of its own, as -key), text it must not show (keys it ignores),
// and the section headers.
type HelpCase struct {
	Cmd      string
	Reads    []string
	Not      []string
	Sections []string
}

// CheckHelp fails t unless help, the -h text of `bin c.Cmd`, lists the
// keys c reads, none it ignores, its sections, in at most MaxHelpLines
// lines.
func CheckHelp(t *testing.T, bin string, c HelpCase, help string) {
	t.Helper()
	for _, k := range c.Reads {
		if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(k) + `\s`).MatchString(help) {
			t.Errorf("%s %s -h does not list -%s:\n%s", bin, c.Cmd, k, help)
		}
	}
	for _, k := range c.Not {
		if strings.Contains(help, k) {
			t.Errorf("%s %s -h lists %s, which it does not read:\n%s", bin, c.Cmd, k, help)
		}
	}
	for _, s := range c.Sections {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s) + `\b`).MatchString(help) {
			t.Errorf("%s %s -h has no section %s:\n%s", bin, c.Cmd, s, help)
		}
	}
	if n := strings.Count(help, "\n"); n > MaxHelpLines {
		t.Errorf("%s %s -h is %d lines, want at most %d:\n%s", bin, c.Cmd, n, MaxHelpLines, help)
	}
}
