package config

import (
	"strings"
	"testing"
)

// A key the configuration does not have is named by its full YAML path,
// its file and line, and the valid key nearest to it.
func TestUnknownKeyNamesPathLineAndNearestKey(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"typo in a section", "addr: x\nsource:\n  hots: db\n", "unknown key source.hots in %s line 3; did you mean source.host?"},
		{"typo of a section", "sorce:\n  host: db\n", "unknown key sorce in %s line 1; did you mean source?"},
		{"key in the wrong section", "source:\n  addr: x\n", "unknown key source.addr in %s line 2; did you mean addr?"},
		{"nothing near", "source:\n  zzzzzzzz: 1\n", "unknown key source.zzzzzzzz in %s line 2"},
		{"key twice", "source:\n  host: a\n  port: 1\n  host: b\n", "%s line 4: source.host is set twice (first on line 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file)
			err := Load(defaults(), path, env(nil))
			want := strings.Replace(tc.want, "%s", path, 1)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Load: %v\nwant an error containing %q", err, want)
			}
			if err != nil && tc.name == "nothing near" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("Load: %v, want no suggestion", err)
			}
		})
	}
}

// A value of the wrong form names the key, the value and the form wanted,
// from the file (with its line), the environment and a flag alike.
func TestWrongTypeNamesKeyValueAndForm(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"integer in file", "source:\n  port: twenty\n", nil, "%s line 2: source.port: `twenty` is not a number (want an integer, e.g. 3306)"},
		{"duration in file", "source:\n  timeout: 5 minutes\n", nil, "%s line 2: source.timeout: `5 minutes` is not a duration (want a duration like 30s, 5m or 1h30m)"},
		{"bare number as duration", "source:\n  timeout: 30\n", nil, "source.timeout: `30` is not a duration (want a duration like 30s, 5m or 1h30m)"},
		{"boolean in file", "source:\n  enabled: maybe\n", nil, "source.enabled: `maybe` is not a boolean (want true or false)"},
		{"section given a value", "source: db.example.com\n", nil, "%s line 1: source: `db.example.com` is not a section (want keys under it, e.g. source.host)"},
		{"list given a mapping", "source:\n  include:\n    a: b\n", nil, "%s line 3: source.include: a mapping is not a list (want a list like [shop.*, crm.users] or a comma-separated string)"},
		{"integer in env", "", map[string]string{"STRAIT_SOURCE_PORT": "33o6"}, "STRAIT_SOURCE_PORT: source.port: `33o6` is not a number (want an integer, e.g. 3306)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			err := Load(defaults(), path, env(tc.env))
			want := strings.Replace(tc.want, "%s", path, 1)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Load: %v\nwant an error containing %q", err, want)
			}
		})
	}
}

// Every problem of a file is reported at once, and what the file sets
// correctly is still applied (lists as YAML sequences, aliases, nulls keep
// the default).
func TestFileValuesAndAllProblems(t *testing.T) {
	c := defaults()
	path := writeFile(t, "addr: &a h:1\nsource:\n  host: *a\n  port:\n  include:\n    - a.*\n    - b.c\n  hots: x\n  timeout: soon\n")
	err := Load(c, path, env(nil))
	if err == nil || !strings.Contains(err.Error(), "source.hots") || !strings.Contains(err.Error(), "source.timeout") {
		t.Errorf("Load: %v, want both problems", err)
	}
	if c.Source.Host != "h:1" || c.Source.Port != 3306 || strings.Join(c.Source.Include, ",") != "a.*,b.c" {
		t.Errorf("config = %+v", c.Source)
	}
}
