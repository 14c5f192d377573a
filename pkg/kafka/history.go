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
	"math"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/avro"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// SchemaHistoryTopic returns <prefix>._schema_history.
func (s *stateStore) SchemaHistoryTopic() string { return s.cfg.TopicPrefix + "._schema_history" }

// PublishSchemas writes schema-history entries into the open transaction;
// an entry without columns erases its table's entry (a tombstone).
func (s *stateStore) PublishSchemas(ctx context.Context, entries []cdc.TableSchema) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.p.begin(); err != nil {
		return err
	}
	topic := s.SchemaHistoryTopic()
	if err := s.p.ensureTopic(ctx, topic, 1, "compact"); err != nil {
		return err
	}
	id, err := s.registry.Register(ctx, topic+"-value", schemas.SchemaHistory)
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		var value []byte
		if e.Columns != nil {
			if value, err = s.histCodec.Append(header(uint32(id)), historyNative(e)); err != nil {
				return fmt.Errorf("schema history of %s: %w", e.ID(), err)
			}
		}
		s.p.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(e.ID()), Value: value})
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
// final. The last record of each table decides, as compaction keeps it:
// like the checkpoint, it must have been committed by this source's
// transactional id, read with the bounded reader, and hold a schema the
// producer can have written for its key; otherwise a *StateError names
// it.
func (s *stateStore) ReadSchemaHistory(ctx context.Context) (map[string]*cdc.TableSchema, error) {
	t, err := avro.Versions(schemas.SchemaHistory)
	if err != nil {
		return nil, fmt.Errorf("schema history schema: %w", err)
	}
	last := map[string]*kgo.Record{}
	var order []string
	err = s.readCommitted(ctx, s.SchemaHistoryTopic(), func(r *kgo.Record) {
		if last[string(r.Key)] == nil {
			order = append(order, string(r.Key))
		}
		last[string(r.Key)] = r
	})
	if err != nil {
		return nil, err
	}
	out := map[string]*cdc.TableSchema{}
	for _, key := range order {
		r := last[key]
		if err := s.trusted(ctx, r); err != nil {
			return nil, err
		}
		if r.Value == nil {
			continue // erased
		}
		e, err := decodeHistory(t, key, r.Value)
		if err != nil {
			return nil, refused(r, err)
		}
		out[key] = e
	}
	return out, nil
}

// maxColumns is the most columns a MySQL table has.
const maxColumns = 4096

// decodeHistory reads a framed schema-history entry with the bounded
// reader (t: schemas/schema_history.avsc, parsed) and checks it is a
// schema the producer can have written under key.
func decodeHistory(t []*avro.Type, key string, b []byte) (*cdc.TableSchema, error) {
	body, err := stateBody(b)
	if err != nil {
		return nil, err
	}
	v, err := avro.DecodeVersions(t, body)
	if err != nil {
		return nil, err
	}
	f := avro.Fields{Object: v}
	serverID, pos := f.Long("server_id"), f.Long("pos")
	s := &cdc.TableSchema{Database: f.Str("database"), Table: f.Str("table"), Columns: []cdc.SchemaColumn{},
		ServerID: uint32(serverID), File: f.Str("file"), Pos: uint64(pos), PrimaryKey: f.Strs("primary_key")}
	cols, _ := v.Get("columns").([]any)
	for _, c := range cols {
		cf := avro.Fields{Object: c.(avro.Object)}
		nullable, _ := cf.Object.Get("nullable").(bool)
		s.Columns = append(s.Columns, cdc.SchemaColumn{Name: cf.Str("name"), ColumnType: cf.Str("column_type"),
			DataType: cf.Str("data_type"), Charset: cf.Str("charset"), Nullable: nullable})
		if cf.Err != nil {
			return nil, cf.Err
		}
	}
	names := make(map[string]bool, len(s.Columns))
	for _, c := range s.Columns {
		if c.Name == "" || names[c.Name] {
			f.Fail("column %q: empty, or twice", c.Name)
		}
		names[c.Name] = true
	}
	for i, k := range s.PrimaryKey {
		if !names[k] || slices.Contains(s.PrimaryKey[:i], k) {
			f.Fail("primary key column %q: not a column, or twice", k)
		}
	}
	switch {
	case s.ID() != key || !isTableID(key):
		f.Fail("table %s under the key %q", s.ID(), key)
	case len(s.Columns) == 0 || len(s.Columns) > maxColumns:
		f.Fail("%d columns", len(s.Columns))
	case serverID < 0 || serverID > math.MaxUint32 || pos < 0:
		f.Fail("server_id %d, pos %d", serverID, pos)
	}
	if f.Err != nil {
		return nil, f.Err
	}
	return s, nil
}

// isTableID reports whether s is database.table: two names, neither empty
// (MySQL names cannot hold a dot).
func isTableID(s string) bool {
	db, table, ok := strings.Cut(s, ".")
	return ok && db != "" && table != "" && !strings.Contains(table, ".")
}
