package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type source struct {
	Host     string        `yaml:"host" help:"database host"`
	Port     int           `yaml:"port"`
	Password string        `yaml:"-" secret:"true"`
	PassFile string        `yaml:"password_file"`
	Timeout  time.Duration `yaml:"timeout"`
	Include  []string      `yaml:"include"`
	Enabled  bool          `yaml:"enabled"`
}

type cfg struct {
	Source source `yaml:"source"`
	Addr   string `yaml:"addr"`
}

func defaults() *cfg { return &cfg{Source: source{Port: 3306, Timeout: time.Minute}, Addr: ":9464"} }

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestPrecedenceDefaultsFileEnvFlags(t *testing.T) {
	c := defaults()
	path := writeFile(t, "source:\n  host: from-file\n  port: 3307\n  timeout: 90s\n  include: [a.*, b.c]\naddr: file:1\n")
	getenv := env(map[string]string{"STRAIT_SOURCE_PORT": "3308", "STRAIT_ADDR": "env:1", "STRAIT_SOURCE_PASSWORD": "s3cret"})
	if err := Load(c, path, getenv); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	Flags(fs, c)
	if err := fs.Parse([]string{"-addr", "flag:1", "-source.enabled"}); err != nil {
		t.Fatal(err)
	}
	want := cfg{Source: source{Host: "from-file", Port: 3308, Enabled: true, Password: "s3cret", Timeout: 90 * time.Second, Include: []string{"a.*", "b.c"}}, Addr: "flag:1"}
	if c.Source.Host != want.Source.Host || c.Source.Port != want.Source.Port || c.Source.Password != want.Source.Password ||
		c.Source.Timeout != want.Source.Timeout || strings.Join(c.Source.Include, ",") != "a.*,b.c" || c.Addr != want.Addr || !c.Source.Enabled {
		t.Errorf("config = %+v, want %+v", *c, want)
	}
	if fs.Lookup("source.password") != nil {
		t.Error("the password has a flag; secrets come only from the environment")
	}
	if h := fs.Lookup("source.host").Usage; !strings.Contains(h, "database host") || !strings.Contains(h, "STRAIT_SOURCE_HOST") {
		t.Errorf("flag help %q lacks the help text or the variable", h)
	}
	d := Dump(c)
	if strings.Contains(d, "s3cret") || !strings.Contains(d, "source.password: <redacted>") || !strings.Contains(d, "source.port: 3308") {
		t.Errorf("Dump:\n%s", d)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", "source:\n  hots: x\n", nil, "hots"},
		{"wrong type in file", "source:\n  port: many\n", nil, "many"},
		{"password in file", "source:\n  password: x\n", nil, "password"},
		{"bad integer in env", "", map[string]string{"STRAIT_SOURCE_PORT": "33o6"}, "STRAIT_SOURCE_PORT: source.port: `33o6` is not a number"},
		{"bad duration in env", "", map[string]string{"STRAIT_SOURCE_TIMEOUT": "5 minutes"}, "source.timeout: `5 minutes` is not a duration"},
		{"bad boolean in env", "", map[string]string{"STRAIT_SOURCE_ENABLED": "yes please"}, "source.enabled: `yes please` is not a boolean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			err := Load(defaults(), path, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	Flags(fs, defaults())
	if err := fs.Parse([]string{"-source.port", "x"}); err == nil || !strings.Contains(err.Error(), "source.port") {
		t.Errorf("bad flag value: %v, want an error naming source.port", err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	Flags(fs, defaults())
	if err := Parse(fs, []string{"-source.enabled", "false", "-addr", "x"}); err == nil || !strings.Contains(err.Error(), `"false"`) {
		t.Errorf("a boolean written -key false: %v, want an error naming the stray argument", err)
	}
}

// A secret comes only from the environment: a flag setting it does not
// exist, and the YAML file setting it is refused with an error that names
// the key and where the secret belongs, and never echoes the value.
func TestSecretsOnlyFromEnvironment(t *testing.T) {
	const value = "Hx7-not-for-printing-42"
	path := writeFile(t, "source:\n  host: h\n  password: "+value+"\n")
	err := Load(defaults(), path, env(nil))
	want := "source.password: secrets are not read from the configuration file (keep them out of it); set the environment variable STRAIT_SOURCE_PASSWORD or a file named by source.password_file"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), value) {
		t.Errorf("a password in the file: %v, want an error containing %q and not the value", err, want)
	}

	var stdout, stderr bytes.Buffer
	err = FromArgs(defaults(), "p", "run", "", "", []string{"-source.password=" + value}, env(nil), &stdout, &stderr)
	want = "-source.password: secrets are not taken as flags"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error()+stdout.String()+stderr.String(), value) {
		t.Errorf("a password as a flag: %v, want an error containing %q; output must not hold the value:\n%s%s", err, want, stdout.String(), stderr.String())
	}
	stdout.Reset()
	err = FromArgs(defaults(), "p", "run", "", "", []string{"-print-config"}, env(map[string]string{"STRAIT_SOURCE_PASSWORD": value}), &stdout, &stderr)
	if !errors.Is(err, ErrPrinted) || strings.Contains(stdout.String(), value) || !strings.Contains(stdout.String(), "source.password: <redacted>") {
		t.Errorf("-print-config: %v\n%s", err, stdout.String())
	}
}
