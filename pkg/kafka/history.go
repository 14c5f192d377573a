package kafka

// history.go: the producer's schema history (see pkg/binlog/history.go) in
// the compacted topic <prefix>._schema_history, key = database.table. Its
// entries are written in the Kafka transaction of the source transaction
// that recorded them, so a read_committed reader sees exactly the entries
// up to the last committed checkpoint: the schemas in force where the
// producer resumes.

import (
	"context"
	"fmt"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// SchemaHistoryTopic returns <prefix>._schema_history.
func (w *Writer) SchemaHistoryTopic() string { return w.cfg.TopicPrefix + "._schema_history" }

// PublishSchemas writes schema-history entries into the open transaction;
// an entry without columns erases its table's entry (a tombstone).
func (w *Writer) PublishSchemas(ctx context.Context, entries []cdc.TableSchema) error {
	if len(entries) == 0 {
		return nil
	}
	if err := w.begin(); err != nil {
		return err
	}
	topic := w.SchemaHistoryTopic()
	if err := w.ensureTopic(ctx, topic, 1, "compact"); err != nil {
		return err
	}
	id, err := w.registry.Register(ctx, topic+"-value", schemas.SchemaHistory)
	if err != nil {
		return err
	}
	for i := range entries {
		s := &entries[i]
		var value []byte
		if s.Columns != nil {
			if value, err = w.histCodec.BinaryFromNative(header(uint32(id)), historyNative(s)); err != nil {
				return fmt.Errorf("schema history of %s: %w", s.ID(), err)
			}
		}
		w.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(s.ID()), Value: value})
	}
	return nil
}

func historyNative(s *cdc.TableSchema) map[string]any {
	cols := make([]any, len(s.Columns))
	for i, c := range s.Columns {
		cols[i] = map[string]any{"name": c.Name, "column_type": c.ColumnType, "data_type": c.DataType, "charset": c.Charset, "nullable": c.Nullable}
	}
	key := make([]any, len(s.PrimaryKey))
	for i, k := range s.PrimaryKey {
		key[i] = k
	}
	return map[string]any{"database": s.Database, "table": s.Table, "columns": cols, "primary_key": key,
		"server_id": int64(s.ServerID), "file": s.File, "pos": int64(s.Pos)}
}

// ReadSchemaHistory returns the committed schema history, by
// database.table. Call after ReadCheckpoint, which makes what is read
// final.
func (w *Writer) ReadSchemaHistory(ctx context.Context) (map[string]*cdc.TableSchema, error) {
	out := map[string]*cdc.TableSchema{}
	var bad error
	err := w.readCommitted(ctx, w.SchemaHistoryTopic(), func(r *kgo.Record) {
		if r.Value == nil {
			delete(out, string(r.Key))
			return
		}
		s, err := decodeHistory(w.histCodec, r.Value)
		if err != nil {
			bad = fmt.Errorf("schema history of %s at offset %d: %w", r.Key, r.Offset, err)
			return
		}
		out[string(r.Key)] = s
	})
	if err == nil {
		err = bad
	}
	return out, err
}

func decodeHistory(codec *goavro.Codec, b []byte) (*cdc.TableSchema, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, fmt.Errorf("not a Confluent-framed record")
	}
	v, _, err := codec.NativeFromBinary(b[5:])
	if err != nil {
		return nil, err
	}
	m := v.(map[string]any)
	s := &cdc.TableSchema{Database: m["database"].(string), Table: m["table"].(string), Columns: []cdc.SchemaColumn{},
		ServerID: uint32(m["server_id"].(int64)), File: m["file"].(string), Pos: uint64(m["pos"].(int64))}
	for _, c := range m["columns"].([]any) {
		c := c.(map[string]any)
		s.Columns = append(s.Columns, cdc.SchemaColumn{Name: c["name"].(string), ColumnType: c["column_type"].(string),
			DataType: c["data_type"].(string), Charset: c["charset"].(string), Nullable: c["nullable"].(bool)})
	}
	for _, k := range m["primary_key"].([]any) {
		s.PrimaryKey = append(s.PrimaryKey, k.(string))
	}
	return s, nil
}
