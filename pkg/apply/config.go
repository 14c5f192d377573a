package apply

import (
	"errors"
	"fmt"
	"time"
)

// Config is the engine's configuration: top-level keys of the consumer's
// YAML file (inlined there), plus two values the binary sets from other
// sections.
type Config struct {
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
	// WatermarkInterval is how often the group's applied-through
	// watermark (bigquery.watermark_table) is computed and, when it
	// rose, recorded; default 10s.
	WatermarkInterval time.Duration `yaml:"watermark_interval" help:"how often the applied-through watermark is computed and recorded"`

	// TopicPrefix is kafka.topic_prefix: a topic names its table as
	// <prefix>.<database>.<table>.
	TopicPrefix string `yaml:"-"`
	// WaitMaxBackoff caps the wait of a table the sink is not ready for
	// (bigquery.retry_max_backoff); the first is half a second.
	WaitMaxBackoff time.Duration `yaml:"-"`
}

// The values of on_bad_record.
const (
	onBadDeadLetter = "dead_letter"
	onBadStop       = "stop"
)

// Defaults sets the defaults of the keys.
func (c *Config) Defaults() {
	c.OnBadRecord, c.ParallelTables, c.MaxPollsInFlight, c.ShutdownTimeout = onBadDeadLetter, 8, 2, 30*time.Second
	c.StoppedRetryBackoff, c.StoppedRetryMaxBackoff = time.Minute, 30*time.Minute
	c.WatermarkInterval = 10 * time.Second
}

// Validate reports every problem of the keys, naming the key.
func (c *Config) Validate() error {
	var errs []error
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
	if c.WatermarkInterval <= 0 {
		errs = append(errs, fmt.Errorf("watermark_interval: %s, want more than 0", c.WatermarkInterval))
	}
	return errors.Join(errs...)
}
