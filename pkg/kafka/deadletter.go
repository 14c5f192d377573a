package kafka

// The dead-letter topics: where a change goes that cannot be published to its
// table topic (producer), or applied from it (consumer), with the reason, so
// that one poison record never stops the other tables nor is silently
// dropped.
//
// Producer: <prefix>._dead_letter. A dead letter carries the change itself
// (Avro bodies plus the schemas to read them, in headers) whenever it fits,
// and always what identifies it: table, key, binlog position, GTID.
//
// Consumer: <prefix>._dead_letter.<group_id> by default, one topic per group
// because whether a record can be applied depends on the group's target
// (dataset, mode). A dead letter is the source record unchanged — key and
// value bytes as read, Confluent framing included, its headers — plus
// headers naming the source topic, partition and offset and the reason.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// Reasons a change is dead-lettered: the value of the strait.reason header
// and of the reason label of strait_producer_dead_letters_total.
const (
	// ReasonSchemaRejected: the Schema Registry refused the table's schema
	// (incompatible with the subject's compatibility level, or invalid).
	ReasonSchemaRejected = "schema_rejected"
	// ReasonTooLarge: the record exceeds kafka.max_record_bytes.
	ReasonTooLarge = "record_too_large"
	// ReasonEncode: the change could not be encoded with its table's schema.
	ReasonEncode = "encode_failed"
)

// DeadLetterTopic returns <prefix>._dead_letter.
func (pub *publisher) DeadLetterTopic() string { return pub.cfg.TopicPrefix + "._dead_letter" }

// deadLetter publishes ev to the dead-letter topic with the reason. key and
// value are the record's Avro bodies without the Confluent header (nil when
// not available or too large); their schemas travel in headers so a reader
// needs no registry.
func (pub *publisher) deadLetter(ctx context.Context, tw *tableWriter, ev *cdc.Event, reason string, cause error, key, value []byte) error {
	topic := pub.DeadLetterTopic()
	// One partition keeps dead letters in source order; they are kept by time.
	if err := pub.p.ensureTopic(ctx, topic, 1, "delete"); err != nil {
		return err
	}
	msg := fmt.Sprintf("%s.%s at %s:%d row %d: %v", ev.Table.Database, ev.Table.Name, ev.Source.File, ev.Source.Pos, ev.Source.Row, cause)
	h := []kgo.RecordHeader{
		{Key: "strait.reason", Value: []byte(reason)},
		{Key: "strait.error", Value: []byte(msg)},
		{Key: "strait.table", Value: []byte(ev.Table.ID())},
		{Key: "strait.topic", Value: []byte(tw.topic)},
		{Key: "strait.op", Value: []byte(ev.Op.String())},
		{Key: "strait.position", Value: []byte(ev.Source.File + ":" + strconv.FormatUint(ev.Source.Pos, 10))},
		{Key: "strait.row", Value: []byte(strconv.Itoa(int(ev.Source.Row)))},
		{Key: "strait.sequence", Value: ev.Position.AppendText(nil)},
		{Key: "strait.gtid", Value: []byte(ev.Source.GTID)},
	}
	if key != nil || value != nil {
		// Built again: it was built for the writer, so it builds.
		s, err := avro.Build(pub.cfg.TopicPrefix, tw.enc.Table())
		if err != nil {
			return fmt.Errorf("dead letter of %s: %w", ev.Table.ID(), err)
		}
		if key != nil {
			h = append(h, kgo.RecordHeader{Key: "strait.key.schema", Value: []byte(s.Key)})
		}
		if value != nil {
			h = append(h, kgo.RecordHeader{Key: "strait.value.schema", Value: []byte(s.Value)})
		}
	}
	if size := len(key) + len(value) + headerBytes(h); size > pub.cfg.MaxRecordBytes-recordOverhead {
		h = append(h, kgo.RecordHeader{Key: "strait.value.omitted", Value: []byte(strconv.Itoa(len(value)) + " bytes")})
		value = nil
	}
	pub.metrics.deadLetters.WithLabelValues(ev.Table.ID(), reason).Inc()
	pub.log.Error("change sent to the dead-letter topic", "topic", topic, "reason", reason, "err", msg)
	pub.p.produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value, Headers: h})
	return nil
}

// unfit returns why an encoded change cannot go to its table topic (encErr is
// the encoder's error), or "" when it can.
func (pub *publisher) unfit(tw *tableWriter, key, value []byte, encErr error) (reason string, cause error) {
	switch {
	case encErr != nil:
		return ReasonEncode, encErr
	case tw.rejected != nil:
		return ReasonSchemaRejected, tw.rejected
	case len(key)+len(value) > pub.cfg.MaxRecordBytes-recordOverhead:
		return ReasonTooLarge, fmt.Errorf("record of %d bytes exceeds kafka.max_record_bytes=%d", len(key)+len(value), pub.cfg.MaxRecordBytes)
	}
	return "", nil
}

// recordOverhead is room left under max_record_bytes for the record and
// batch framing Kafka adds around key, value and headers.
const recordOverhead = 512

func headerBytes(h []kgo.RecordHeader) int {
	n := 0
	for _, x := range h {
		n += len(x.Key) + len(x.Value) + 10
	}
	return n
}

// body strips the Confluent header (magic byte and schema id) from an
// encoded record, leaving the Avro body.
func body(b []byte) []byte {
	if len(b) < 5 {
		return nil
	}
	return b[5:]
}

// rejectedWriter is the writer of a table version whose schema the registry
// refused: its changes are encoded (schema id 0) only to be dead-lettered.
func (pub *publisher) rejectedWriter(t *cdc.Table, topic string, err error) *tableWriter {
	pub.metrics.errors.WithLabelValues("registry").Inc()
	pub.log.Error("schema registry refused the table's schema: its changes go to the dead-letter topic until the subject accepts it (restart after fixing)",
		"table", t.ID(), "topic", topic, "dead_letter_topic", pub.DeadLetterTopic(), "err", err)
	return &tableWriter{topic: topic, rejected: err,
		enc: avro.NewEncoder(t, pub.cfg.TopicPrefix, pub.version, 0, 0), counts: pub.metrics.table(t.ID())}
}

// deadLetterMaxBytes is the largest dead letter the consumer sends, the
// producer's default kafka.max_record_bytes: any record it published fits.
const deadLetterMaxBytes = 16 << 20

// DeadLetters returns the consumer's dead-letter topic:
// kafka.dead_letter_topic, default <prefix>._dead_letter.<group_id>.
func (c *GroupConfig) DeadLetters() string {
	if c.DeadLetterTopic != "" {
		return c.DeadLetterTopic
	}
	return c.TopicPrefix + "._dead_letter." + topicPart(c.GroupID)
}

// groupDeadLetters writes the group's dead letters, with the group's
// client. Safe from any goroutine.
type groupDeadLetters struct {
	client    *kgo.Client
	admin     *kadm.Client
	log       *slog.Logger
	topic     string
	groupID   string
	principal string // User:<name> for authorization errors; "" unknown

	mu    sync.Mutex
	ready bool // topic exists (or could not be created: producing says why)
}

// send writes bad to the dead-letter topic and returns once Kafka
// acknowledged every one (then their offsets may be committed). Each dead
// letter is the source record's key, value and headers, plus strait.reason,
// strait.error, strait.topic, strait.partition, strait.offset,
// strait.timestamp (of the source record, ms) and strait.group. A value too
// large for the topic is left out (strait.value.omitted says its size). A
// batch too large to read has no record: its dead letter has the headers,
// strait.next_offset the offset after the batch, and reading the
// partition goes on there.
func (d *groupDeadLetters) send(ctx context.Context, bad []BadRecord) error {
	if len(bad) == 0 {
		return nil
	}
	d.ensureTopic(ctx)
	recs := make([]*kgo.Record, len(bad))
	for i, b := range bad {
		var h []kgo.RecordHeader
		r := &kgo.Record{Topic: d.topic}
		if b.raw != nil {
			h = append(h, b.raw.Headers...)
			r.Key, r.Value = b.raw.Key, b.raw.Value
		}
		h = append(h,
			kgo.RecordHeader{Key: "strait.reason", Value: []byte(b.Reason)},
			kgo.RecordHeader{Key: "strait.error", Value: []byte(b.Err.Error())},
			kgo.RecordHeader{Key: "strait.topic", Value: []byte(b.Topic)},
			kgo.RecordHeader{Key: "strait.partition", Value: strconv.AppendInt(nil, int64(b.Partition), 10)},
			kgo.RecordHeader{Key: "strait.offset", Value: strconv.AppendInt(nil, b.Offset, 10)},
			kgo.RecordHeader{Key: "strait.group", Value: []byte(d.groupID)},
		)
		if b.raw != nil {
			h = append(h, kgo.RecordHeader{Key: "strait.timestamp", Value: strconv.AppendInt(nil, b.raw.Timestamp.UnixMilli(), 10)})
		}
		if b.skip != nil {
			h = append(h, kgo.RecordHeader{Key: "strait.next_offset", Value: strconv.AppendInt(nil, b.skip.Offset, 10)})
		}
		r.Headers = h
		recs[i] = r
	}
	var errs []error
	for i, res := range d.client.ProduceSync(ctx, recs...) {
		err := res.Err
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			r := recs[i]
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "strait.value.omitted", Value: []byte(strconv.Itoa(len(r.Value)) + " bytes")})
			r.Value = nil
			err = d.client.ProduceSync(ctx, r).FirstErr()
		}
		if err != nil {
			err = authorization(err, d.principal, access{topic: d.topic, topicOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"})
			errs = append(errs, fmt.Errorf("dead letter of %s/%d@%d to %s: %w", bad[i].Topic, bad[i].Partition, bad[i].Offset, d.topic, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, b := range bad {
		if b.skip != nil { // franz-go stopped reading the partition at the batch
			d.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{b.Topic: {b.Partition: *b.skip}})
		}
	}
	return nil
}

// ensureTopic creates the dead-letter topic unless it exists:
// one partition (dead letters in the order they were found), deleted by
// time, records as large as deadLetterMaxBytes. A failure is only logged:
// the topic may exist and the group lack the right to create topics;
// producing then says what is wrong.
func (d *groupDeadLetters) ensureTopic(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ready {
		return
	}
	cleanup, maxBytes := "delete", strconv.Itoa(deadLetterMaxBytes+recordOverhead)
	resp, err := d.admin.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &cleanup, "max.message.bytes": &maxBytes}, d.topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case ctx.Err() != nil:
		return // try again with the next dead letters
	case err == nil:
		d.log.Info("topic created", "topic", d.topic, "partitions", 1, "cleanup.policy", cleanup)
	case errors.Is(err, kerr.TopicAlreadyExists):
	case errors.Is(err, kerr.TopicAuthorizationFailed) && topicExists(ctx, d.admin, d.topic):
	default:
		d.log.Warn("cannot create the dead-letter topic", "topic", d.topic,
			"err", authorization(err, d.principal, access{topic: d.topic, topicOp: "CREATE", clusterOp: "CREATE"}))
	}
	d.ready = true
}
