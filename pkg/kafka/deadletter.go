package kafka

// The dead-letter topic: where a change goes that cannot be published to its
// table topic, with the reason, so that one poison record never stops the
// other tables nor is silently dropped. A dead letter carries the change
// itself (Avro bodies plus the schemas to read them, in headers) whenever it
// fits, and always what identifies it: table, key, binlog position, GTID.

import (
	"context"
	"fmt"
	"strconv"

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
func (w *Writer) DeadLetterTopic() string { return w.cfg.TopicPrefix + "._dead_letter" }

// deadLetter publishes ev to the dead-letter topic with the reason. key and
// value are the record's Avro bodies without the Confluent header (nil when
// not available or too large); their schemas travel in headers so a reader
// needs no registry.
func (w *Writer) deadLetter(ctx context.Context, tw *tableWriter, ev *cdc.Event, reason string, cause error, key, value []byte) error {
	topic := w.DeadLetterTopic()
	// One partition keeps dead letters in source order; they are kept by time.
	if err := w.ensureTopic(ctx, topic, 1, "delete"); err != nil {
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
	if key != nil {
		h = append(h, kgo.RecordHeader{Key: "strait.key.schema", Value: []byte(tw.schemas.Key)})
	}
	if value != nil {
		h = append(h, kgo.RecordHeader{Key: "strait.value.schema", Value: []byte(tw.schemas.Value)})
	}
	if size := len(key) + len(value) + headerBytes(h); size > w.cfg.MaxRecordBytes-recordOverhead {
		h = append(h, kgo.RecordHeader{Key: "strait.value.omitted", Value: []byte(strconv.Itoa(len(value)) + " bytes")})
		value = nil
	}
	w.metrics.deadLetters.WithLabelValues(ev.Table.ID(), reason).Inc()
	w.log.Error("change sent to the dead-letter topic", "topic", topic, "reason", reason, "err", msg)
	w.produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value, Headers: h})
	return nil
}

// unfit returns why an encoded change cannot go to its table topic (encErr is
// the encoder's error), or "" when it can.
func (w *Writer) unfit(tw *tableWriter, key, value []byte, encErr error) (reason string, cause error) {
	switch {
	case encErr != nil:
		return ReasonEncode, encErr
	case tw.rejected != nil:
		return ReasonSchemaRejected, tw.rejected
	case len(key)+len(value) > w.cfg.MaxRecordBytes-recordOverhead:
		return ReasonTooLarge, fmt.Errorf("record of %d bytes exceeds kafka.max_record_bytes=%d", len(key)+len(value), w.cfg.MaxRecordBytes)
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
func (w *Writer) rejectedWriter(t *cdc.Table, topic string, s *avro.Schemas, err error) *tableWriter {
	w.metrics.errors.WithLabelValues("registry").Inc()
	w.log.Error("schema registry refused the table's schema: its changes go to the dead-letter topic until the subject accepts it (restart after fixing)",
		"table", t.ID(), "topic", topic, "dead_letter_topic", w.DeadLetterTopic(), "err", err)
	return &tableWriter{topic: topic, schemas: *s, rejected: err,
		enc: avro.NewEncoder(t, w.cfg.TopicPrefix, w.version, 0, 0), pub: w.metrics.table(t.ID())}
}
