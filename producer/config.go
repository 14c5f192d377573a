package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
)

// Config is the producer's whole configuration (README, "Configuration").
type Config struct {
	Source binlog.Config `yaml:"source"`
	Kafka  kafka.Config  `yaml:"kafka"`
	// BigQuery is the dataset `producer verify` compares the source with
	// (the consumer's bigquery section); unused by the other commands.
	BigQuery bigquery.Config `yaml:"bigquery"`
	// HTTPAddr serves /metrics, /healthz and /readyz; default ":9464".
	HTTPAddr string `yaml:"http_addr" help:"listen address of /metrics, /healthz, /readyz"`
	// LogLevel is debug, info, warn or error; default info.
	LogLevel string `yaml:"log_level" help:"debug, info, warn or error"`
	// LogFormat is json (default) or text.
	LogFormat string `yaml:"log_format" help:"json or text"`
	// ShutdownTimeout bounds how long SIGTERM waits to publish and commit
	// what was read (brokers down: it gives up, nothing is lost); default
	// 30s, inside Kubernetes' 60s grace period of deploy/k8s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" help:"how long shutdown waits to publish and commit what was read"`
	// StatusKeys shows the key values of the snapshot's last row in GET
	// /status; off by default: /status answers anyone who reaches the port.
	StatusKeys bool `yaml:"status_keys" help:"show the snapshot's last key values in GET /status (off: anyone reaching the port reads /status)"`
	// Profiles serves Go's runtime profiles on http_addr under
	// /debug/pprof/; off by default: they show anyone who reaches the port
	// the code's paths, and a CPU profile costs while it is taken.
	Profiles bool `yaml:"pprof" help:"serve Go's CPU, heap and goroutine profiles under /debug/pprof/ on http_addr (off: anyone reaching the port could take them)"`
}

// Keys names the configuration each subcommand reads (config.Scoped): its
// -h lists these keys; the file, the environment and the flags may set the
// others too, for the other subcommands.
func (c *Config) Keys(command string) []string {
	// How the database and the brokers are reached.
	database := []string{"source.host", "source.port", "source.user", "source.password", "source.password_file", "source.ssh", "source.tls"}
	brokers := []string{"kafka.brokers", "kafka.topic_prefix", "kafka.tls", "kafka.sasl"}
	switch command {
	case "run":
		return []string{"source", "kafka", "http_addr", "log_level", "log_format", "shutdown_timeout", "status_keys", "pprof"}
	case "check":
		return slices.Concat(database, []string{"source.flavor", "source.server_id", "source.include", "source.exclude"}, brokers,
			[]string{"kafka.schema_registry_url", "kafka.schema_registry_tls", "kafka.schema_registry_auth"})
	case "snapshot":
		return slices.Concat([]string{"source.include", "source.exclude"}, brokers, []string{"kafka.schema_registry_url"})
	case "verify":
		return slices.Concat(database, []string{"source.include", "source.exclude", "source.snapshot_query_timeout"}, brokers,
			[]string{"bigquery.project", "bigquery.dataset", "bigquery.table_template", "bigquery.credentials_file",
				"bigquery.endpoint", "bigquery.write_endpoint", "bigquery.insecure"})
	case "backfill":
		return slices.Concat(database, []string{"source.include", "source.exclude"}, brokers, []string{"kafka.schema_registry_url"})
	}
	return nil
}

func defaults() *Config {
	c := &Config{HTTPAddr: ":9464", LogLevel: "info", LogFormat: "json", ShutdownTimeout: 30 * time.Second}
	c.Source.Defaults()
	c.Source.ServerID = 0 // derived from kafka.topic_prefix once the configuration is read (loadConfig)
	c.Kafka.Defaults()
	c.BigQuery.Defaults()
	return c
}

// Validate reports every problem, naming the key.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.Source.Validate(), c.Kafka.Validate())
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %s, want more than 0", c.ShutdownTimeout))
	}
	errs = append(errs, service.ValidateLogging(c.LogLevel, c.LogFormat)...)
	return errors.Join(errs...)
}

// loadConfig builds a subcommand's configuration: defaults < YAML file
// (-config or STRAIT_CONFIG) < STRAIT_* environment < flags.
func loadConfig(name, summary string, args []string, getenv func(string) string, stdout, stderr io.Writer) (*Config, error) {
	cfg := defaults()
	if err := config.FromArgs(cfg, "producer", name, summary,
		"Secrets (STRAIT_SOURCE_PASSWORD, STRAIT_SOURCE_SSH_PASSPHRASE) only from the environment or files.", args, getenv, stdout, stderr); err != nil {
		return nil, err
	}
	if err := cfg.Source.LoadSecrets(getenv); err != nil {
		return nil, err
	}
	if err := cfg.Kafka.Security.LoadSecrets(getenv); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	if cfg.Source.ServerID == 0 {
		cfg.Source.ServerID = binlog.DefaultServerID(cfg.Kafka.TopicPrefix)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}
