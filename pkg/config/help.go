package config

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Scoped is implemented by a binary's configuration when its subcommands
// read different parts of it. Keys names what the subcommand reads:
// whole sections by their name ("source", "kafka.tls") and single keys by
// their dotted name ("kafka.brokers", "http_addr"); nil means every key.
// FromArgs then lists only these keys in -h.
type Scoped interface {
	Keys(command string) []string
}

// scope returns the fields of all that the subcommand reads, in
// declaration order. A name matching no key is an error: the declaration
// is out of date.
func scope(cfg any, command string, all []field) ([]field, error) {
	s, ok := cfg.(Scoped)
	if !ok {
		return all, nil
	}
	names := s.Keys(command)
	if names == nil {
		return all, nil
	}
	var out []field
	used := map[string]bool{}
	for _, f := range all {
		for _, n := range names {
			if f.key == n || strings.HasPrefix(f.key, n+".") {
				out = append(out, f)
				used[n] = true
				break
			}
		}
	}
	for _, n := range names {
		if !used[n] {
			return nil, fmt.Errorf("%s reads %q, which is no configuration key or section", command, n)
		}
	}
	return out, nil
}

// helpWidth is the column the -h text wraps prose at.
const helpWidth = 100

// writeUsage writes the -h text of cmd: its summary, how keys are set,
// its own flags, then the keys it reads (reads, with their defaults),
// grouped by section, one line each.
func writeUsage(w io.Writer, cmd command, reads []field, defaults []string) {
	fmt.Fprintf(w, "Usage: %s %s [flags]\n\n%s\n\n", cmd.program, cmd.name, wrap(cmd.summary))
	var example field
	for _, f := range reads {
		if !f.secret {
			example = f
			break
		}
	}
	how := "Each key below is a flag, a YAML key of the -config file and an environment variable"
	if example.key != "" {
		yamlKey := example.key + ": at the top level"
		if i := strings.LastIndexByte(example.key, '.'); i >= 0 {
			yamlKey = example.key[i+1:] + ": under " + example.key[:i] + ":"
		}
		how += fmt.Sprintf(" (-%s, %s, %s)", example.key, yamlKey, example.env)
	}
	how += "; a flag wins over the environment, the environment over the file. " + cmd.note
	fmt.Fprintf(w, "%s\n\n", wrap(strings.TrimSpace(how)))

	rows := [][2]string{{"-config FILE", "YAML configuration file (env STRAIT_CONFIG)"}, {"-print-config", "print the effective configuration (secrets redacted) and exit"}}
	if cmd.own != nil {
		cmd.own.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			rows = append(rows, [2]string{strings.TrimSpace("-" + f.Name + " " + typ), usage + withDefault(f.DefValue)})
		})
	}
	var sections []string
	bySection := map[string][][2]string{}
	for i, f := range reads {
		section, _, dotted := strings.Cut(f.key, ".")
		if !dotted {
			section = "general"
		}
		if _, seen := bySection[section]; !seen {
			sections = append(sections, section)
		}
		row := [2]string{"-" + f.key, f.help + withDefault(defaults[i])}
		if f.secret {
			if hasFileKey(reads, f) {
				continue // told on the row of its <key>_file
			}
			row = [2]string{f.env, f.help}
		}
		if s := secretOf(reads, f); s != nil {
			row[1] += " (or the value itself in " + s.env + ")"
		}
		row[1] = strings.TrimSpace(row[1])
		bySection[section] = append(bySection[section], row)
	}
	writeRows(w, rows)
	if i := slices.Index(sections, "general"); i >= 0 && i < len(sections)-1 { // the top-level keys last
		sections = append(append(sections[:i:i], sections[i+1:]...), "general")
	}
	for _, s := range sections {
		fmt.Fprintf(w, "\n%s\n", s)
		writeRows(w, bySection[s])
	}
}

// writeRows writes rows as two aligned columns.
func writeRows(w io.Writer, rows [][2]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
}

// hasFileKey reports whether the secret f has a <key>_file among fs.
func hasFileKey(fs []field, f field) bool {
	return slices.ContainsFunc(fs, func(g field) bool { return g.key == f.key+"_file" })
}

// secretOf is the secret whose <key>_file f is, among fs; nil if none.
func secretOf(fs []field, f field) *field {
	for _, g := range fs {
		if g.secret && g.key+"_file" == f.key {
			return &g
		}
	}
	return nil
}

// withDefault is " (default v)" for a default worth showing.
func withDefault(v string) string {
	switch v {
	case "", "false", "0", "0s":
		return ""
	}
	return " (default " + v + ")"
}

// shortDuration is d without zero tails: 1m rather than 1m0s, 168h
// rather than 168h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// wrap breaks text into lines of at most helpWidth columns.
func wrap(text string) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		if n > 0 && n+1+len(word) > helpWidth {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}
