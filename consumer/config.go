package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/strait-cdc/strait/pkg/apply"
	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
)

// Config is the consumer's whole configuration (README, "Consumer").
type Config struct {
	Kafka    kafka.GroupConfig `yaml:"kafka"`
	BigQuery bigquery.Config   `yaml:"bigquery"`
	// Apply is the engine's keys: on_bad_record, parallel_tables,
	// max_polls_in_flight, shutdown_timeout, stopped_retry_backoff,
	// stopped_retry_max_backoff, watermark_interval.
	Apply apply.Config `yaml:",inline"`
	// HTTPAddr serves /metrics, /healthz and /readyz; default ":9465".
	HTTPAddr string `yaml:"http_addr" help:"listen address of /metrics, /healthz, /readyz"`
	// LogLevel is debug, info, warn or error; default info.
	LogLevel string `yaml:"log_level" help:"debug, info, warn or error"`
	// LogFormat is json (default) or text.
	LogFormat string `yaml:"log_format" help:"json or text"`
	// Profiles serves Go's runtime profiles on http_addr under
	// /debug/pprof/; off by default: they show anyone who reaches the port
	// the code's paths, and a CPU profile costs while it is taken.
	Profiles bool `yaml:"pprof" help:"serve Go's CPU, heap and goroutine profiles under /debug/pprof/ on http_addr (off: anyone reaching the port could take them)"`
}

// Keys names the configuration each subcommand reads (config.Scoped): its
// -h lists these keys; the file, the environment and the flags may set the
// others too, for the other subcommands. run reads
// every key.
func (c *Config) Keys(command string) []string {
	switch command {
	case "reset":
		return []string{"kafka.brokers", "kafka.group_id", "kafka.topic_prefix", "kafka.tls", "kafka.sasl"}
	case "tail":
		return []string{"kafka.brokers", "kafka.topic_prefix", "kafka.schema_registry_url", "kafka.topic_refresh", "kafka.max_poll_records",
			"kafka.fetch_max_bytes", "kafka.max_record_bytes", "kafka.tls", "kafka.sasl", "kafka.schema_registry_tls", "kafka.schema_registry_auth"}
	}
	return nil
}

func defaults() *Config {
	c := &Config{HTTPAddr: ":9465", LogLevel: "info", LogFormat: "json"}
	c.Kafka.Defaults()
	c.BigQuery.Defaults()
	c.Apply.Defaults()
	return c
}

// Validate reports every problem, naming the key.
func (c *Config) Validate() error {
	errs := []error{c.Kafka.Validate(), c.BigQuery.Validate(), c.Apply.Validate()}
	errs = append(errs, service.ValidateLogging(c.LogLevel, c.LogFormat)...)
	return errors.Join(errs...)
}

// loadConfig builds a subcommand's configuration: defaults < YAML file
// (-config or STRAIT_CONFIG) < STRAIT_* environment < flags.
func loadConfig(name, summary string, args []string, getenv func(string) string, stdout, stderr io.Writer) (*Config, error) {
	cfg := defaults()
	if err := config.FromArgs(cfg, "consumer", name, summary,
		"BigQuery credentials: Application Default Credentials, or bigquery.credentials_file.", args, getenv, stdout, stderr); err != nil {
		return nil, err
	}
	if err := cfg.Kafka.Security.LoadSecrets(getenv); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}
