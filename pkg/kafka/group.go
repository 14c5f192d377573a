package kafka

// group.go is the reading side: a consumer-group member that polls the
// table topics, resolves each record's schemas through the registry, and
// commits offsets only when told to.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kslog"
)

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
}

// Defaults fills unset fields with their defaults.
func (c *GroupConfig) Defaults() {
	c.GroupID = "strait-bigquery"
	c.TopicPrefix = "strait"
	c.TopicRefresh = time.Minute
	c.MaxPollRecords = 50000
}

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
	if c.MaxPollRecords < 1 {
		errs = append(errs, fmt.Errorf("kafka.max_poll_records: %d, want at least 1", c.MaxPollRecords))
	}
	return errors.Join(errs...)
}

// Group is a member of the consumer group reading the table topics:
// cooperative-sticky balancing, read_committed (only records of committed
// producer transactions), no automatic commits. Rebalances wait while a
// polled batch is processed (until AllowRebalance), so a partition never
// changes hands between its records being applied and its offsets being
// committed. Poll and Commit are called from one goroutine.
type Group struct {
	log      *slog.Logger
	client   *kgo.Client
	registry *sr.Client
	max      int
	schemas  map[int]string // schema text by id; ids never change meaning
}

// NewGroup joins the group. opts are extra client options (security,
// tests).
func NewGroup(cfg *GroupConfig, log *slog.Logger, opts ...kgo.Opt) (*Group, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.GroupID),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(TopicPattern(cfg.TopicPrefix)),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The producer writes in transactions: their commit markers take
		// offsets. Seeing them lets Commit move past them, so a drained
		// partition shows no lag.
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(cfg.TopicRefresh),
		kgo.MetadataMinAge(min(cfg.TopicRefresh, 5*time.Second)),
		kgo.WithLogger(kslog.New(log)),
	}
	client, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	reg, err := sr.NewClient(sr.URLs(cfg.RegistryURL))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("schema registry %s: %w", cfg.RegistryURL, err)
	}
	return &Group{log: log, client: client, registry: reg, max: cfg.MaxPollRecords, schemas: map[int]string{}}, nil
}

// TopicPattern is the regular expression of the table topics of prefix:
// every <prefix>.<database>.<table>, none of the internal <prefix>._...
func TopicPattern(prefix string) string {
	return `^` + regexp.QuoteMeta(prefix) + `\.[^_].*`
}

// Ping checks that a broker answers.
func (g *Group) Ping(ctx context.Context) error { return g.client.Ping(ctx) }

// Close leaves the group and closes the client. Commit first.
func (g *Group) Close() { g.client.Close() }

// Message is a record key or value in the Confluent wire format, split.
type Message struct {
	SchemaID int
	Schema   string // the Avro schema, from the registry
	Body     []byte // the Avro binary body; nil for a null value (tombstone)
}

// Record is one polled record.
type Record struct {
	Partition int32
	Offset    int64
	Key       Message
	Value     Message
}

// TopicBatch is the records of one topic from one poll, in offset order
// per partition. Err is set when a record could not be decoded (corrupt
// framing, unknown schema id): the batch then holds the records before it.
type TopicBatch struct {
	Topic   string
	Records []Record
	Err     error

	polled []*kgo.Record // the records and transaction markers, in offset order: what Commit commits
}

// Poll waits for records and returns them by topic. After processing them
// call Commit for what was applied, then AllowRebalance.
func (g *Group) Poll(ctx context.Context) ([]*TopicBatch, error) {
	fetches := g.client.PollRecords(ctx, g.max)
	if fetches.IsClientClosed() {
		return nil, errors.New("kafka client closed")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fetches.EachError(func(topic string, p int32, err error) {
		g.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	var out []*TopicBatch
	byTopic := map[string]*TopicBatch{}
	var err error
	fetches.EachRecord(func(r *kgo.Record) {
		if err != nil {
			return
		}
		tb := byTopic[r.Topic]
		if tb == nil {
			tb = &TopicBatch{Topic: r.Topic}
			byTopic[r.Topic] = tb
			out = append(out, tb)
		}
		if tb.Err != nil {
			return
		}
		if r.Attrs.IsControl() {
			tb.polled = append(tb.polled, r)
			return
		}
		rec := Record{Partition: r.Partition, Offset: r.Offset}
		var derr error
		if rec.Key, derr = g.decode(ctx, r.Key); derr == nil {
			rec.Value, derr = g.decode(ctx, r.Value)
		}
		var perm *badRecordError
		switch {
		case errors.As(derr, &perm):
			tb.Err = fmt.Errorf("record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, derr)
		case derr != nil:
			err = derr // the registry is unreachable: nothing can be decoded
		default:
			tb.Records = append(tb.Records, rec)
			tb.polled = append(tb.polled, r)
		}
	})
	return out, err
}

// badRecordError is a record that can never be decoded.
type badRecordError struct{ err error }

func (e *badRecordError) Error() string { return e.err.Error() }
func (e *badRecordError) Unwrap() error { return e.err }

// decode splits a framed message and looks up its schema (cached by id).
func (g *Group) decode(ctx context.Context, b []byte) (Message, error) {
	if b == nil {
		return Message{}, nil
	}
	if len(b) < 5 || b[0] != 0 {
		return Message{}, &badRecordError{errors.New("not in the Confluent wire format (magic byte 0, schema id)")}
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s, ok := g.schemas[id]
	if !ok {
		sch, err := g.registry.SchemaByID(ctx, id)
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return Message{}, &badRecordError{fmt.Errorf("schema id %d: unknown to the registry", id)}
		}
		if err != nil {
			return Message{}, fmt.Errorf("schema id %d: %w", id, err)
		}
		s = sch.Schema
		g.schemas[id] = s
	}
	return Message{SchemaID: id, Schema: s, Body: b[5:]}, nil
}

// Commit commits, for every partition in batches, the offset after its
// last record: call it only once every record of batches is applied.
func (g *Group) Commit(ctx context.Context, batches []*TopicBatch) error {
	var recs []*kgo.Record
	for _, tb := range batches {
		recs = append(recs, tb.polled...)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := g.client.CommitRecords(ctx, recs...); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

// AllowRebalance lets a waiting rebalance go on; call it after Commit.
func (g *Group) AllowRebalance() { g.client.AllowRebalance() }

// Pause stops fetching topic until the process restarts: its table stopped
// and its uncommitted records are read again after the restart.
func (g *Group) Pause(topic string) { g.client.PauseFetchTopics(topic) }
