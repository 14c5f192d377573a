package kafka

import (
	"errors"
	"fmt"
	"regexp"
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
	// ProducerLinger is how long a batch of records waits for more before
	// it is sent (franz-go's ProducerLinger, Kafka's linger.ms); default
	// 5ms. Nothing of a Kafka transaction is visible before its commit,
	// which sends every batch at once, so up to TransactionLinger it adds
	// no latency: with writes spread over thousands of tables, a linger
	// as long as the transaction's sends a few large requests instead of
	// many of one record per partition (README, "Many tables").
	ProducerLinger time.Duration `yaml:"producer_linger" help:"how long a batch of records waits for more before it is sent (up to transaction_linger: no added latency)"`
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
	c.ProducerLinger = 5 * time.Millisecond
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
	if c.ProducerLinger < 0 || c.ProducerLinger >= c.TransactionTimeout {
		errs = append(errs, fmt.Errorf("kafka.producer_linger (%s): want 0 ≤ linger < kafka.transaction_timeout (%s)", c.ProducerLinger, c.TransactionTimeout))
	}
	if c.RegistryURL == "" {
		errs = append(errs, errors.New("kafka.schema_registry_url: required"))
	}
	errs = append(errs, c.Security.Validate(), registryURLPassword(c.RegistryURL))
	return errors.Join(errs...)
}

// GroupConfig is how the consumer reads the table topics.
type GroupConfig struct {
	// Brokers are the bootstrap brokers (host:port).
	Brokers []string `yaml:"brokers" help:"Kafka bootstrap brokers, comma-separated host:port"`
	// GroupID is the consumer group; default "strait-bigquery". Groups
	// with different ids read the same topics independently (fan-out).
	GroupID string `yaml:"group_id" help:"consumer group id"`
	// TopicPrefix selects the table topics: every topic matching
	// ^<prefix>\.[^_].* (internal topics start with '_'); default "strait".
	TopicPrefix string `yaml:"topic_prefix" help:"prefix of the table topics to read"`
	// RegistryURL is the Confluent-compatible Schema Registry.
	RegistryURL string `yaml:"schema_registry_url" help:"Schema Registry URL"`
	// TopicRefresh is how often new topics matching the prefix are looked
	// for; default 1m.
	TopicRefresh time.Duration `yaml:"topic_refresh" help:"how often new table topics are discovered"`
	// MaxPollRecords bounds the records handled per poll (memory and
	// latency of one round); default 50000.
	MaxPollRecords int `yaml:"max_poll_records" help:"most records handled per poll"`
	// SessionTimeout is how long the group waits for a member that stopped
	// heartbeating (a killed process) before its partitions move to the
	// others; default 45s.
	SessionTimeout time.Duration `yaml:"session_timeout" help:"how long a silent member keeps its partitions"`
	// RebalanceTimeout is how long a rebalance waits for the members to
	// rejoin — also for a member that was killed, which never does — and
	// so how long a member may take to finish the batch it is applying;
	// default 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout" help:"how long a rebalance waits for members (and a member may take to finish its batch)"`
	// FetchMaxBytes bounds one fetch response (compressed bytes); franz-go
	// buffers one ahead of the polls, and polled records keep their
	// fetch's batches in memory until committed; default 4 MiB, at most
	// 64 MiB. Memory grows with it (see maxFetchBytes).
	FetchMaxBytes int `yaml:"fetch_max_bytes" help:"largest fetch response, in bytes"`
	// MaxRecordBytes is the largest record (key, value and headers) the
	// group reads, and the most a fetched batch may decompress to: a
	// larger record is a bad record (record_too_large), a larger batch one
	// too (batch_too_large). Default 16 MiB, the producer's
	// kafka.max_record_bytes; at most 256 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes" help:"largest record read, and most a fetched batch decompresses to"`
	// DeadLetterTopic receives the records this group cannot apply (see
	// deadletter.go); default <prefix>._dead_letter.<group_id>, one per
	// group because whether a record can be applied depends on the group's
	// target. It must not match the table topics' pattern.
	DeadLetterTopic string `yaml:"dead_letter_topic" help:"topic of the records the group cannot apply (default <topic_prefix>._dead_letter.<group_id>)"`
	// Security is TLS and authentication for the brokers and the registry,
	// as the producer's (security.go).
	Security Security `yaml:",inline"`
}

// Defaults fills unset fields with their defaults.
func (c *GroupConfig) Defaults() {
	c.GroupID = "strait-bigquery"
	c.TopicPrefix = "strait"
	c.TopicRefresh = time.Minute
	c.MaxPollRecords = 50000
	c.SessionTimeout = 45 * time.Second
	c.RebalanceTimeout = time.Minute
	c.FetchMaxBytes = 4 << 20
	c.MaxRecordBytes = 16 << 20
}

// Memory. What the group holds of the topics, with the defaults, against
// the container the consumer ships in (deploy/k8s/consumer.yaml: a limit
// of 1536 MiB, GOMEMLIMIT 1400MiB):
//
//   - One fetch is in flight or buffered at a time (readLimits). Its
//     response is at most fetch_max_bytes F = 4 MiB, or one batch of up
//     to max_record_bytes B = 16 MiB (a broker returns a partition's first
//     batch even when it is larger than F).
//   - It decompresses to at most D = max(24 × F, B) = 96 MiB: every batch
//     to at most B and to at most maxRatio = 24 times its size
//     (limits.go).
//   - Polled records keep their batches until committed: those of the
//     polls in flight (max_polls_in_flight P = 2) and of the buffered
//     fetch, (P + 1) × D = 288 MiB. The rows built for BigQuery from the
//     polls being applied are about as large as their values: P × D =
//     192 MiB.
//   - franz-go adds a kgo.Record per record, 168 bytes with its pointer:
//     40% more for records of 420 bytes (the benchmark's), 115 MiB here.
//   - The rest (clients, schema caches, gRPC buffers, the dead letters of
//     a poll, metrics) stays under 150 MiB.
//
// About 750 MiB in all, half the limit: in general 150 MiB + (2P + 1) × D
// plus the records' 168 bytes each. Raise the container's limit (and
// GOMEMLIMIT) with F, B or P. Records much smaller than 420 bytes cost
// franz-go more than their size (25 times for an empty record): a flood
// of them, compressed at the ratio limit, is not bounded here (README,
// "Memory" and "Kafka and Schema Registry security").
const (
	maxFetchBytes  = 64 << 20  // the largest kafka.fetch_max_bytes
	maxRecordBytes = 256 << 20 // the largest kafka.max_record_bytes
)

// Validate reports every problem of the configuration, naming the key.
func (c *GroupConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: required"))
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("kafka.group_id: required"))
	}
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("kafka.topic_prefix: required"))
	}
	if c.RegistryURL == "" {
		errs = append(errs, errors.New("kafka.schema_registry_url: required"))
	}
	if c.TopicRefresh < time.Second {
		errs = append(errs, fmt.Errorf("kafka.topic_refresh: %s, want at least 1s", c.TopicRefresh))
	}
	if c.RebalanceTimeout < time.Second {
		errs = append(errs, fmt.Errorf("kafka.rebalance_timeout: %s, want at least 1s", c.RebalanceTimeout))
	}
	if c.SessionTimeout < 2*time.Second {
		errs = append(errs, fmt.Errorf("kafka.session_timeout: %s, want at least 2s", c.SessionTimeout))
	}
	if c.MaxPollRecords < 1 {
		errs = append(errs, fmt.Errorf("kafka.max_poll_records: %d, want at least 1", c.MaxPollRecords))
	}
	if c.FetchMaxBytes < 1<<10 || c.FetchMaxBytes > maxFetchBytes {
		errs = append(errs, fmt.Errorf("kafka.fetch_max_bytes: %d, want 1024 to %d", c.FetchMaxBytes, maxFetchBytes))
	}
	if c.MaxRecordBytes < 1<<10 || c.MaxRecordBytes > maxRecordBytes {
		errs = append(errs, fmt.Errorf("kafka.max_record_bytes: %d, want 1024 to %d", c.MaxRecordBytes, maxRecordBytes))
	}
	if c.TopicPrefix != "" && regexp.MustCompile(TopicPattern(c.TopicPrefix)).MatchString(c.DeadLetters()) {
		errs = append(errs, fmt.Errorf("kafka.dead_letter_topic: %q is one of the table topics the group reads; start its last part with '_' (e.g. %s._dead_letter)", c.DeadLetterTopic, c.TopicPrefix))
	}
	errs = append(errs, c.Security.Validate(), registryURLPassword(c.RegistryURL))
	return errors.Join(errs...)
}
