package kafka

// tail.go reads table topics outside any consumer group, for `consumer
// tail`: nothing is committed, so tailing never moves a group.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Tail is a direct (group-less) reader of the selected table topics:
// read_committed, new matching topics and partitions picked up as they
// appear. Poll is called from one goroutine.
//
// Tail chooses every partition's first offset itself instead of leaving
// it to franz-go's reset offset: franz-go resolves a reset lazily, after
// NewTail returned, and "from now" by time then by end offset in two
// requests, so a record committed in between was skipped.
type Tail struct {
	log       *slog.Logger
	client    *kgo.Client
	admin     *kadm.Client
	dec       *decoder
	texts     map[int]string // the schemas of the records read, by id
	filter    *TopicFilter
	max       int           // records per poll
	maxRecord int           // kafka.max_record_bytes
	refresh   time.Duration // how often new topics are looked for
	next      time.Time     // when they are looked for next
	reading   map[string]map[int32]bool
}

// TailFrom is where a Tail starts in the partitions that exist when it
// starts. Partitions that appear later are read from their start.
type TailFrom int

const (
	// TailFromNow starts at the records committed after NewTail returns:
	// at each partition's last stable offset, the end a read_committed
	// reader can reach.
	TailFromNow TailFrom = iota
	// TailFromBeginning starts at the first record Kafka keeps.
	TailFromBeginning
)

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
	// KeySchema and ValueSchema are the texts of Key's and Value's
	// schemas; empty when their Body is nil.
	KeySchema, ValueSchema string
	Err                    error
}

// NewTail connects and fixes where reading starts in every partition of
// the topics f selects: once it returns, every record committed later is
// read.
func NewTail(ctx context.Context, cfg *GroupConfig, f *TopicFilter, from TailFrom, log *slog.Logger, opts ...kgo.Opt) (*Tail, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Only for a partition whose records were deleted under it.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
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
	t := &Tail{log: log, client: client, admin: kadm.NewClient(client), dec: newDecoder(log, reg, func(bool) {}), texts: map[int]string{}, filter: f,
		max: cfg.MaxPollRecords, maxRecord: cfg.MaxRecordBytes, refresh: cfg.TopicRefresh, next: time.Now().Add(cfg.TopicRefresh),
		reading: map[string]map[int32]bool{}}
	if err := t.addPartitions(ctx, from); err != nil {
		client.Close()
		return nil, err
	}
	return t, nil
}

// Close closes the client.
func (t *Tail) Close() { t.client.Close() }

// addPartitions starts reading the selected partitions not read yet: at
// their start, or at their last stable offset for TailFromNow.
func (t *Tail) addPartitions(ctx context.Context, from TailFrom) error {
	listed, err := t.admin.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	add := map[string]map[int32]kgo.Offset{}
	var topics []string
	listed.EachPartition(func(p kadm.PartitionDetail) {
		if listed[p.Topic].Err != nil || !t.filter.Match(p.Topic) || t.reading[p.Topic][p.Partition] {
			return
		}
		if add[p.Topic] == nil {
			add[p.Topic] = map[int32]kgo.Offset{}
			topics = append(topics, p.Topic)
		}
		add[p.Topic][p.Partition] = kgo.NewOffset().AtStart()
	})
	if from == TailFromNow && len(topics) > 0 {
		ends, err := t.admin.ListCommittedOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return fmt.Errorf("list end offsets: %w", err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			if _, ok := add[o.Topic][o.Partition]; ok {
				add[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
			}
		})
	}
	for topic, ps := range add {
		if t.reading[topic] == nil {
			t.reading[topic] = map[int32]bool{}
		}
		for p := range ps {
			t.reading[topic][p] = true
		}
	}
	t.client.AddConsumePartitions(add)
	return nil
}

// Poll waits for records and returns them, in offset order per partition,
// looking for new topics every kafka.topic_refresh meanwhile. An error
// means the registry or the brokers are unreachable, or ctx ended; the
// records of the poll are then lost to this reader.
func (t *Tail) Poll(ctx context.Context) ([]TailRecord, error) {
	for {
		if !time.Now().Before(t.next) {
			// A failed look is only a delay: the next one finds the
			// topics, and from their start.
			if err := t.addPartitions(ctx, TailFromBeginning); err != nil && ctx.Err() == nil {
				t.log.Warn("looking for new topics", "err", err, "retry_in", t.refresh.String())
			}
			t.next = time.Now().Add(t.refresh)
		}
		pollCtx, cancel := context.WithDeadline(ctx, t.next)
		fetches := t.client.PollRecords(pollCtx, t.max)
		cancel()
		if fetches.IsClientClosed() {
			return nil, errors.New("kafka client closed")
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if pollCtx.Err() == nil || fetches.NumRecords() > 0 {
			return t.decode(ctx, fetches)
		}
	}
}

// decode turns a poll's fetches into records, skipping a batch too large
// to read (it becomes a record with Err).
func (t *Tail) decode(ctx context.Context, fetches kgo.Fetches) ([]TailRecord, error) {
	var out []TailRecord
	fetches.EachError(func(topic string, p int32, err error) {
		if tl := (*kgo.ErrDecompressTooLarge)(nil); errors.As(err, &tl) {
			t.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {p: {Epoch: tl.Epoch, Offset: tl.NextOffset}}})
			out = append(out, TailRecord{Topic: topic, Partition: p, Offset: tl.Offset, Err: err})
			return
		}
		t.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	var err error
	fetches.EachRecord(func(r *kgo.Record) {
		if err != nil {
			return
		}
		rec := TailRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}
		var derr error
		if size := recordSize(r); size > t.maxRecord {
			derr = &decodeError{ReasonTooLarge, fmt.Errorf("a record of %d bytes, over kafka.max_record_bytes=%d", size, t.maxRecord)}
		} else if rec.Key, derr = t.dec.decode(ctx, r.Key); derr == nil {
			rec.Value, derr = t.dec.decode(ctx, r.Value)
		}
		if derr == nil && rec.Key.Body != nil {
			rec.KeySchema, derr = t.text(ctx, rec.Key.SchemaID)
		}
		if derr == nil && rec.Value.Body != nil {
			rec.ValueSchema, derr = t.text(ctx, rec.Value.SchemaID)
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

// text returns the text of schema id, kept for the records to come.
func (t *Tail) text(ctx context.Context, id int) (string, error) {
	if s, ok := t.texts[id]; ok {
		return s, nil
	}
	s, err := t.dec.take(ctx, id)
	if err == nil {
		t.texts[id] = s
	}
	return s, err
}
