package config

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// scoped is cfg whose command "db" reads only the source section but
// its include list and enabled, and "serve" only addr.
type scoped struct {
	Source source `yaml:"source"`
	Addr   string `yaml:"addr"`
}

func (*scoped) Keys(command string) []string {
	switch command {
	case "db":
		return []string{"source.host", "source.port", "source.password", "source.password_file", "source.timeout"}
	case "serve":
		return []string{"addr"}
	case "stale":
		return []string{"source.hots"}
	}
	return nil
}

func TestHelpListsTheCommandsKeysWithDefaults(t *testing.T) {
	d := defaults()
	c := &scoped{Source: d.Source, Addr: d.Addr}
	path := writeFile(t, "source:\n  port: 3307\n  include: [a.*]\naddr: x:1\n")
	var stdout, stderr bytes.Buffer
	err := FromArgs(c, "p", "db", "Talk to the database.", "A note.", []string{"-config", path, "-h"}, env(nil), &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("FromArgs -h: %v", err)
	}
	help := stderr.String()
	for _, want := range []string{
		"Usage: p db [flags]\n\nTalk to the database.\n",
		"(-source.host,\nhost: under source:, STRAIT_SOURCE_HOST)", "A note.",
		"\nsource\n",
		"  -source.host           database host\n",
		"  -source.port           (default 3306)\n", // the struct's default, not the file's 3307
		"  -source.password_file  (or the value itself in STRAIT_SOURCE_PASSWORD)\n",
		"  -source.timeout        (default 1m)\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, not := range []string{"include", "addr", "enabled", "general"} {
		if strings.Contains(help, not) {
			t.Errorf("help lists %s, which db does not read:\n%s", not, help)
		}
	}

	// A command takes any key as a flag (one command line serves every
	// subcommand), and -print-config shows every key.
	stdout.Reset()
	err = FromArgs(c, "p", "serve", "", "", []string{"-config", path, "-source.port", "3308", "-print-config"}, env(nil), &stdout, &stderr)
	if !errors.Is(err, ErrPrinted) || !strings.Contains(stdout.String(), "addr: x:1\n") || !strings.Contains(stdout.String(), "source.port: 3308\n") {
		t.Errorf("serve -print-config: %v, %q", err, stdout.String())
	}

	// A command declaring a key the configuration lacks is an error, not
	// a silently shorter help.
	err = FromArgs(c, "p", "stale", "", "", nil, env(nil), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `stale reads "source.hots"`) {
		t.Errorf("stale declaration: %v", err)
	}
}

// A flag that does not exist is one error line naming the nearest flag,
// without the whole help text after it.
func TestUnknownFlagNamesTheNearest(t *testing.T) {
	own := flag.NewFlagSet("own", flag.ContinueOnError)
	own.Bool("dry-run", false, "")
	for _, tc := range []struct{ arg, want string }{
		{"-source.hots=x", "flag provided but not defined: -source.hots; did you mean -source.host?"},
		{"-dryrun", "flag provided but not defined: -dryrun; did you mean -dry-run?"},
	} {
		var stdout, stderr bytes.Buffer
		err := FromArgsWithFlags(defaults(), "p", "run", "", "", own, []string{tc.arg}, env(nil), &stdout, &stderr)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.arg, err, tc.want)
		}
		if stderr.Len() > 0 {
			t.Errorf("%s: printed %q besides the error", tc.arg, stderr.String())
		}
	}
}
