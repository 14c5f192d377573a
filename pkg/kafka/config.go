package kafka

import (
	"errors"
	"fmt"
	"time"
)

// Config is where and how change records are published.
type Config struct {
	// Brokers are the bootstrap brokers (host:port).
	Brokers []string `yaml:"brokers" help:"Kafka bootstrap brokers, comma-separated host:port"`
	// TopicPrefix starts every topic name: <prefix>.<database>.<table>,
	// <prefix>._schema_changes. Default "strait".
	TopicPrefix string `yaml:"topic_prefix" help:"prefix of every topic name"`
	// Partitions of a new table topic; default 6.
	Partitions int `yaml:"partitions" help:"partitions of each new table topic"`
	// ReplicationFactor of new topics; -1 (the default) takes the broker's default.
	ReplicationFactor int `yaml:"replication_factor" help:"replication factor of new topics (-1: broker default)"`
	// CleanupPolicy of new table topics: compact (default), delete or "compact,delete".
	CleanupPolicy string `yaml:"cleanup_policy" help:"cleanup.policy of new table topics"`
	// MinCompactionLag keeps the full history of recent changes replayable
	// before compaction keeps only the latest per key; default 168h (7 days).
	MinCompactionLag time.Duration `yaml:"min_compaction_lag" help:"min.compaction.lag.ms of new table topics"`
	// Tombstones sends a null-value record after each delete so compaction
	// drops the row; default true.
	Tombstones bool `yaml:"tombstones" help:"send a tombstone after each delete"`
	// RegistryURL is the Confluent-compatible Schema Registry.
	RegistryURL string `yaml:"schema_registry_url" help:"Schema Registry URL"`
	// Transactions publishes in Kafka transactions, each closed by a
	// checkpoint: exactly once for read_committed readers, and the producer
	// resumes where it stopped. Default true; off gives at-least-once
	// publishing without resume (brokers without transactions).
	Transactions bool `yaml:"transactions" help:"publish in Kafka transactions with a checkpoint (exactly once, resume after a stop)"`
	// TransactionMaxRecords, TransactionMaxBytes and TransactionLinger bound
	// one Kafka transaction: whole source transactions are added until one
	// bound is reached. Defaults 20,000 records, 8 MiB, 100ms.
	TransactionMaxRecords int           `yaml:"transaction_max_records" help:"commit a Kafka transaction after this many change records"`
	TransactionMaxBytes   int           `yaml:"transaction_max_bytes" help:"commit a Kafka transaction after this many key and value bytes"`
	TransactionLinger     time.Duration `yaml:"transaction_linger" help:"commit a Kafka transaction at most this long after its first record"`
	// TransactionTimeout is the broker-side timeout of an open transaction;
	// default 1m.
	TransactionTimeout time.Duration `yaml:"transaction_timeout" help:"broker-side timeout of an open Kafka transaction"`
	// HeartbeatInterval is how often the current position and source time
	// go to <prefix>._heartbeat; 0 turns heartbeats off. Default 10s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" help:"interval of position records in <prefix>._heartbeat (0: off)"`
	// MaxRecordBytes is the largest record the producer sends; default 16 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes" help:"largest record sent (producer.max.request.size)"`
	// Security is TLS and authentication for the brokers and the registry:
	// keys kafka.tls.*, kafka.sasl.*, kafka.schema_registry_tls.*,
	// kafka.schema_registry_auth.* (security.go).
	Security Security `yaml:",inline"`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	c.TopicPrefix = "strait"
	c.Partitions = 6
	c.ReplicationFactor = -1
	c.CleanupPolicy = "compact"
	c.MinCompactionLag = 7 * 24 * time.Hour
	c.Tombstones = true
	c.MaxRecordBytes = 16 << 20
	c.Transactions = true
	c.HeartbeatInterval = 10 * time.Second
	c.TransactionMaxRecords = 20000
	c.TransactionMaxBytes = 8 << 20 // with source.snapshot_chunk_bytes, what bounds the producer's memory (README, "Performance")
	c.TransactionLinger = 100 * time.Millisecond
	c.TransactionTimeout = time.Minute
}

// Validate reports every problem of the configuration, naming the key.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: required"))
	}
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("kafka.topic_prefix: required"))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("kafka.partitions: %d, want at least 1", c.Partitions))
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
		errs = append(errs, fmt.Errorf("kafka.replication_factor: %d, want -1 or at least 1", c.ReplicationFactor))
	}
	switch c.CleanupPolicy {
	case "compact", "delete", "compact,delete", "delete,compact":
	default:
		errs = append(errs, fmt.Errorf("kafka.cleanup_policy: %q, want compact, delete or compact,delete", c.CleanupPolicy))
	}
	if c.TransactionMaxRecords < 1 {
		errs = append(errs, fmt.Errorf("kafka.transaction_max_records: %d, want at least 1", c.TransactionMaxRecords))
	}
	if c.TransactionMaxBytes < 1 {
		errs = append(errs, fmt.Errorf("kafka.transaction_max_bytes: %d, want at least 1", c.TransactionMaxBytes))
	}
	if c.TransactionLinger <= 0 || c.TransactionTimeout <= c.TransactionLinger {
		errs = append(errs, fmt.Errorf("kafka.transaction_linger (%s) and kafka.transaction_timeout (%s): want 0 < linger < timeout", c.TransactionLinger, c.TransactionTimeout))
	}
	if c.RegistryURL == "" {
		errs = append(errs, errors.New("kafka.schema_registry_url: required"))
	}
	errs = append(errs, c.Security.Validate(), registryURLPassword(c.RegistryURL))
	return errors.Join(errs...)
}
