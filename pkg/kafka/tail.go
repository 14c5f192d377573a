package kafka

// tail.go reads table topics outside any consumer group, for `consumer
// tail`: nothing is committed, so tailing never moves a group.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Tail is a direct (group-less) reader of the selected table topics:
// read_committed, new matching topics picked up as they appear. Poll is
// called from one goroutine.
type Tail struct {
	filter *TopicFilter
	g      *Group // its client is not a group member; Poll reuses its schema cache
}

// TailRecord is one record read by Tail. Err is set, and Key and Value
// are empty, when the record cannot be decoded (not in the Confluent wire
// format, schema id unknown to the registry).
type TailRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Time      time.Time // the Kafka record timestamp
	Key       Message
	Value     Message // Body nil: a tombstone
	Err       error
}

// NewTail starts reading the topics f selects: from their first records
// when fromBeginning, else from the records at or after now (by record
// timestamp), which also reads a topic created later from its start.
func NewTail(cfg *GroupConfig, f *TopicFilter, fromBeginning bool, log *slog.Logger, opts ...kgo.Opt) (*Tail, error) {
	start := kgo.NewOffset().AfterMilli(time.Now().UnixMilli())
	if fromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(f.Patterns()...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(start),
		kgo.MetadataMaxAge(cfg.TopicRefresh),
		kgo.MetadataMinAge(min(cfg.TopicRefresh, 5*time.Second)),
		kgo.WithLogger(kslog.New(log)),
	}
	client, _, regOpts, err := cfg.Security.newClient(log, base, opts...)
	if err != nil {
		return nil, err
	}
	reg, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(cfg.RegistryURL)}, regOpts...)...)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("schema registry %s: %w", cfg.RegistryURL, err)
	}
	g := &Group{log: log, client: client, registry: reg, max: cfg.MaxPollRecords, schemas: map[int]string{}}
	return &Tail{filter: f, g: g}, nil
}

// Ping checks that a broker answers.
func (t *Tail) Ping(ctx context.Context) error { return t.g.client.Ping(ctx) }

// Close closes the client.
func (t *Tail) Close() { t.g.client.Close() }

// Poll waits for records and returns those of selected topics, in offset
// order per partition. An error means the registry is unreachable or ctx
// ended; the records of the poll are then lost to this reader.
func (t *Tail) Poll(ctx context.Context) ([]TailRecord, error) {
	fetches := t.g.client.PollRecords(ctx, t.g.max)
	if fetches.IsClientClosed() {
		return nil, errors.New("kafka client closed")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fetches.EachError(func(topic string, p int32, err error) {
		t.g.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	var out []TailRecord
	var err error
	fetches.EachRecord(func(r *kgo.Record) {
		if err != nil || !t.filter.Match(r.Topic) {
			return
		}
		rec := TailRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}
		var derr error
		if rec.Key, derr = t.g.decode(ctx, r.Key); derr == nil {
			rec.Value, derr = t.g.decode(ctx, r.Value)
		}
		var bad *decodeError
		switch {
		case errors.As(derr, &bad):
			rec = TailRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp, Err: derr}
		case derr != nil:
			err = derr
			return
		}
		out = append(out, rec)
	})
	return out, err
}
