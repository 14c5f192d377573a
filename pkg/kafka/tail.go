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
// format, schema id unknown to the registry, larger than
// kafka.max_record_bytes), or stands for a batch too large to read (from
// Offset on; reading goes on after it).
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
		withLog(log),
	}
	base = append(base, readLimits(cfg.MaxRecordBytes, cfg.FetchMaxBytes)...)
	client, _, regOpts, err := cfg.Security.newClient(log, base, opts...)
	if err != nil {
		return nil, err
	}
	reg, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(cfg.RegistryURL)}, regOpts...)...)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("schema registry %s: %w", cfg.RegistryURL, err)
	}
	g := &Group{log: log, client: client, registry: reg, max: cfg.MaxPollRecords, maxRecord: cfg.MaxRecordBytes, schemas: map[int]string{}}
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
	var out []TailRecord
	fetches.EachError(func(topic string, p int32, err error) {
		if tl := (*kgo.ErrDecompressTooLarge)(nil); errors.As(err, &tl) {
			t.g.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {p: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
			if t.filter.Match(topic) {
				out = append(out, TailRecord{Topic: topic, Partition: p, Offset: tl.Offset, Err: err})
			}
			return
		}
		t.g.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	var err error
	fetches.EachRecord(func(r *kgo.Record) {
		if err != nil || !t.filter.Match(r.Topic) {
			return
		}
		rec := TailRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}
		var derr error
		if size := recordSize(r); size > t.g.maxRecord {
			derr = &decodeError{ReasonTooLarge, fmt.Errorf("a record of %d bytes, over kafka.max_record_bytes=%d", size, t.g.maxRecord)}
		} else if rec.Key, derr = t.g.decode(ctx, r.Key); derr == nil {
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
