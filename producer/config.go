package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// Config is the producer's whole configuration (README, "Configuration").
type Config struct {
	Source binlog.Config `yaml:"source"`
	Kafka  kafka.Config  `yaml:"kafka"`
	// HTTPAddr serves /metrics, /healthz and /readyz; default ":9464".
	HTTPAddr string `yaml:"http_addr" help:"listen address of /metrics, /healthz, /readyz"`
	// LogLevel is debug, info, warn or error; default info.
	LogLevel string `yaml:"log_level" help:"debug, info, warn or error"`
	// LogFormat is json (default) or text.
	LogFormat string `yaml:"log_format" help:"json or text"`
}

func defaults() *Config {
	c := &Config{HTTPAddr: ":9464", LogLevel: "info", LogFormat: "json"}
	c.Source.Defaults()
	c.Kafka.Defaults()
	return c
}

// Validate reports every problem, naming the key.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.Source.Validate(), c.Kafka.Validate())
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q, want debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log_format: %q, want json or text", c.LogFormat))
	}
	return errors.Join(errs...)
}

// loadConfig parses a subcommand's flags and builds its configuration:
// defaults < YAML file (-config or STRAIT_CONFIG) < STRAIT_* environment <
// flags.
func loadConfig(name, summary string, args []string, getenv func(string) string, stdout, stderr io.Writer) (*Config, *flag.FlagSet, error) {
	cfg := defaults()
	fs := flag.NewFlagSet("producer "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv("STRAIT_CONFIG"), "YAML configuration file (env STRAIT_CONFIG)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration (secrets redacted) and exit")
	config.Flags(fs, cfg)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: producer %s [flags]\n\n%s\n\nEvery flag is also a YAML key and a STRAIT_* variable; secrets (STRAIT_SOURCE_PASSWORD) only from the environment or files.\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	// The file and the environment are read before the flags are parsed, so
	// flags win; -config itself is looked up first.
	for i, a := range args {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "config="); ok && strings.HasPrefix(a, "-") {
			*path = v
		} else if strings.TrimLeft(a, "-") == "config" && strings.HasPrefix(a, "-") && i+1 < len(args) {
			*path = args[i+1]
		}
	}
	if err := config.Load(cfg, *path, getenv); err != nil {
		return nil, fs, err
	}
	if err := config.Parse(fs, args); err != nil {
		return nil, fs, err
	}
	if *printConfig {
		fmt.Fprint(stdout, config.Dump(cfg))
		return nil, fs, errPrinted
	}
	if cfg.Source.PasswordFile != "" {
		b, err := os.ReadFile(cfg.Source.PasswordFile)
		if err != nil {
			return nil, fs, fmt.Errorf("source.password_file: %w", err)
		}
		cfg.Source.Password = strings.TrimRight(string(b), "\r\n")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fs, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, fs, nil
}

var errPrinted = errors.New("configuration printed")
