package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// Config is the consumer's whole configuration (README, "Consumer").
type Config struct {
	Kafka    kafka.GroupConfig `yaml:"kafka"`
	BigQuery bigquery.Config   `yaml:"bigquery"`
	// ParallelTables is how many tables are written at once; default 8.
	ParallelTables int `yaml:"parallel_tables" help:"tables written at once"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight appends
	// before exiting without committing them; default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" help:"how long shutdown waits for in-flight appends"`
	// HTTPAddr serves /metrics, /healthz and /readyz; default ":9465".
	HTTPAddr string `yaml:"http_addr" help:"listen address of /metrics, /healthz, /readyz"`
	// LogLevel is debug, info, warn or error; default info.
	LogLevel string `yaml:"log_level" help:"debug, info, warn or error"`
	// LogFormat is json (default) or text.
	LogFormat string `yaml:"log_format" help:"json or text"`
}

func defaults() *Config {
	c := &Config{ParallelTables: 8, ShutdownTimeout: 30 * time.Second, HTTPAddr: ":9465", LogLevel: "info", LogFormat: "json"}
	c.Kafka.Defaults()
	c.BigQuery.Defaults()
	return c
}

// Validate reports every problem, naming the key.
func (c *Config) Validate() error {
	errs := []error{c.Kafka.Validate(), c.BigQuery.Validate()}
	if c.ParallelTables < 1 {
		errs = append(errs, fmt.Errorf("parallel_tables: %d, want at least 1", c.ParallelTables))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %s, want more than 0", c.ShutdownTimeout))
	}
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
func loadConfig(name, summary string, args []string, getenv func(string) string, stdout, stderr io.Writer) (*Config, error) {
	cfg := defaults()
	fs := flag.NewFlagSet("consumer "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv("STRAIT_CONFIG"), "YAML configuration file (env STRAIT_CONFIG)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration and exit")
	config.Flags(fs, cfg)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: consumer %s [flags]\n\n%s\n\nEvery flag is also a YAML key and a STRAIT_* variable. BigQuery credentials: Application Default Credentials, or bigquery.credentials_file.\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	// The file is named before the flags are parsed, so that flags win.
	for i, a := range args {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "config="); ok && strings.HasPrefix(a, "-") {
			*path = v
		} else if strings.TrimLeft(a, "-") == "config" && strings.HasPrefix(a, "-") && i+1 < len(args) {
			*path = args[i+1]
		}
	}
	if err := config.Load(cfg, *path, getenv); err != nil {
		return nil, err
	}
	if err := config.Parse(fs, args); err != nil {
		return nil, err
	}
	if *printConfig {
		fmt.Fprint(stdout, config.Dump(cfg))
		return nil, errPrinted
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

var errPrinted = errors.New("configuration printed")
