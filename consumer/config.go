package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
)

// Config is the consumer's whole configuration (README, "Consumer").
type Config struct {
	Kafka    kafka.GroupConfig `yaml:"kafka"`
	BigQuery bigquery.Config   `yaml:"bigquery"`
	// OnBadRecord is what a record that can never be applied does (not in
	// the Confluent wire format, an unknown schema id, an Avro body that
	// cannot be read, a row over the request limit or that BigQuery
	// rejects): dead_letter (default) sends it to kafka.dead_letter_topic
	// and goes on; stop stops its table (pauses its topic) with the error.
	OnBadRecord string `yaml:"on_bad_record" help:"dead_letter or stop: what a record that can never be applied does"`
	// ParallelTables is how many tables are written at once; default 8.
	ParallelTables int `yaml:"parallel_tables" help:"tables written at once"`
	// MaxPollsInFlight is how many polls (of up to kafka.max_poll_records
	// each) are applied at once: the next poll is read while earlier ones
	// await BigQuery's acknowledgements; default 2. Memory grows with it.
	MaxPollsInFlight int `yaml:"max_polls_in_flight" help:"polls applied at once while awaiting acknowledgements"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight appends
	// before exiting without committing them; default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" help:"how long shutdown waits for in-flight appends"`
	// StoppedRetryBackoff is how long a table stopped by a BigQuery error
	// (a permission not yet granted, a request refused) waits before it
	// is tried again; the wait doubles with each failure up to
	// StoppedRetryMaxBackoff. Default 1m. A table stopped by a bad record
	// (on_bad_record: stop) stays stopped until a restart.
	StoppedRetryBackoff time.Duration `yaml:"stopped_retry_backoff" help:"first wait before a table stopped by a BigQuery error is tried again"`
	// StoppedRetryMaxBackoff caps that wait; default 30m.
	StoppedRetryMaxBackoff time.Duration `yaml:"stopped_retry_max_backoff" help:"longest wait between retries of a stopped table"`
	// HTTPAddr serves /metrics, /healthz and /readyz; default ":9465".
	HTTPAddr string `yaml:"http_addr" help:"listen address of /metrics, /healthz, /readyz"`
	// LogLevel is debug, info, warn or error; default info.
	LogLevel string `yaml:"log_level" help:"debug, info, warn or error"`
	// LogFormat is json (default) or text.
	LogFormat string `yaml:"log_format" help:"json or text"`
}

// The values of on_bad_record.
const (
	onBadDeadLetter = "dead_letter"
	onBadStop       = "stop"
)

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
	c := &Config{OnBadRecord: onBadDeadLetter, ParallelTables: 8, MaxPollsInFlight: 2, ShutdownTimeout: 30 * time.Second,
		StoppedRetryBackoff: time.Minute, StoppedRetryMaxBackoff: 30 * time.Minute, HTTPAddr: ":9465", LogLevel: "info", LogFormat: "json"}
	c.Kafka.Defaults()
	c.BigQuery.Defaults()
	return c
}

// Validate reports every problem, naming the key.
func (c *Config) Validate() error {
	errs := []error{c.Kafka.Validate(), c.BigQuery.Validate()}
	if c.OnBadRecord != onBadDeadLetter && c.OnBadRecord != onBadStop {
		errs = append(errs, fmt.Errorf("on_bad_record: %q, want %s or %s", c.OnBadRecord, onBadDeadLetter, onBadStop))
	}
	if c.ParallelTables < 1 {
		errs = append(errs, fmt.Errorf("parallel_tables: %d, want at least 1", c.ParallelTables))
	}
	if c.MaxPollsInFlight < 1 {
		errs = append(errs, fmt.Errorf("max_polls_in_flight: %d, want at least 1", c.MaxPollsInFlight))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %s, want more than 0", c.ShutdownTimeout))
	}
	if c.StoppedRetryBackoff <= 0 {
		errs = append(errs, fmt.Errorf("stopped_retry_backoff: %s, want more than 0", c.StoppedRetryBackoff))
	}
	if c.StoppedRetryMaxBackoff < c.StoppedRetryBackoff {
		errs = append(errs, fmt.Errorf("stopped_retry_max_backoff: %s, want at least stopped_retry_backoff (%s)", c.StoppedRetryMaxBackoff, c.StoppedRetryBackoff))
	}
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
