package bigquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	storage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strait-cdc/strait/pkg/avro"
)

// TableReader reads tables back through the BigQuery Storage Read API
// (a read session in Avro, one stream), for `producer verify`. Values come
// as canonical text (canon.go). Safe for concurrent use.
type TableReader struct {
	cfg *Config
	bq  *bigquery.Client
	rc  *storage.BigQueryReadClient
}

// ErrTableNotFound is a table that does not exist in the dataset.
var ErrTableNotFound = errors.New("table not found")

// NewTableReader connects to BigQuery's REST API (table metadata) and the
// Storage Read API: cfg.Endpoint and cfg.WriteEndpoint override them (the
// Storage Write and Read APIs share one endpoint), cfg.Insecure as for
// the writer.
func NewTableReader(ctx context.Context, cfg *Config) (*TableReader, error) {
	rest, grpcOpts := cfg.clientOptions()
	bq, err := bigquery.NewClient(ctx, cfg.Project, rest...)
	if err != nil {
		return nil, fmt.Errorf("bigquery client: %w", err)
	}
	rc, err := storage.NewBigQueryReadClient(ctx, grpcOpts...)
	if err != nil {
		bq.Close()
		return nil, fmt.Errorf("bigquery storage read client: %w", err)
	}
	return &TableReader{cfg: cfg, bq: bq, rc: rc}, nil
}

// Close closes both clients.
func (r *TableReader) Close() error {
	return errors.Join(r.rc.Close(), r.bq.Close())
}

// TableInfo describes a table to read.
type TableInfo struct {
	Name    string
	Columns []Column // top-level, in table order
	// Key is the primary key (PRIMARY KEY NOT ENFORCED): an upsert table.
	// A table without one is a changelog (append mode, or a source table
	// without a primary key).
	Key []string
	// MaxStaleness is the table's max_staleness, 0 when it has none: a
	// read of an upsert table sees it as of its last background apply,
	// at most this old ("Stream table updates with change data capture",
	// "Manage table staleness").
	MaxStaleness time.Duration
	schema       bigquery.Schema
}

// Column is a top-level column of a table.
type Column struct {
	Name string
	// Type is the REST API's type name: INTEGER, FLOAT, NUMERIC,
	// BIGNUMERIC, BOOLEAN, STRING, BYTES, JSON, DATE, DATETIME, TIME,
	// TIMESTAMP, GEOGRAPHY or RECORD.
	Type string
}

// Column returns the column called name (case-insensitive), or nil.
func (t *TableInfo) Column(name string) *Column {
	for i := range t.Columns {
		if strings.EqualFold(t.Columns[i].Name, name) {
			return &t.Columns[i]
		}
	}
	return nil
}

// Describe reads a table's metadata; ErrTableNotFound when it is missing.
func (r *TableReader) Describe(ctx context.Context, name string) (*TableInfo, error) {
	md, err := r.bq.Dataset(r.cfg.Dataset).Table(name).Metadata(ctx)
	if isHTTP(err, http.StatusNotFound) {
		return nil, fmt.Errorf("%s.%s: %w", r.cfg.Dataset, name, ErrTableNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: %w", r.cfg.Dataset, name, err)
	}
	if md.Type != bigquery.RegularTable {
		return nil, fmt.Errorf("table %s.%s is a %s, not a table", r.cfg.Dataset, name, md.Type)
	}
	t := &TableInfo{Name: name, schema: md.Schema}
	for _, f := range md.Schema {
		t.Columns = append(t.Columns, Column{Name: f.Name, Type: string(f.Type)})
	}
	if md.TableConstraints != nil && md.TableConstraints.PrimaryKey != nil {
		t.Key = md.TableConstraints.PrimaryKey.Columns
	}
	if md.MaxStaleness != nil {
		t.MaxStaleness = md.MaxStaleness.ToDuration()
	}
	return t, nil
}

// readRetries is how often a broken ReadRows stream is resumed at the
// offset it reached.
const readRetries = 3

// Read reads the columns names of t's rows matching restriction (a
// GoogleSQL condition, "" for every row) and calls fn with each row's
// values in the order of names. fn may keep the slice.
func (r *TableReader) Read(ctx context.Context, t *TableInfo, names []string, restriction string, fn func([]Cell) error) error {
	table := t.Name
	where := fmt.Sprintf("%s.%s", r.cfg.Dataset, table)
	cols := make(bigquery.Schema, len(names))
	for i, n := range names {
		if cols[i] = findColumn(t.schema, n); cols[i] == nil {
			return fmt.Errorf("read %s: no column %s", where, n)
		}
	}
	sess, err := r.rc.CreateReadSession(ctx, &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + r.cfg.Project,
		ReadSession: &storagepb.ReadSession{
			Table:       fmt.Sprintf("projects/%s/datasets/%s/tables/%s", r.cfg.Project, r.cfg.Dataset, table),
			DataFormat:  storagepb.DataFormat_AVRO,
			ReadOptions: &storagepb.ReadSession_TableReadOptions{SelectedFields: names, RowRestriction: restriction},
		},
		MaxStreamCount: 1,
	})
	if err != nil {
		return fmt.Errorf("read session on %s (restriction %q): %w", where, restriction, err)
	}
	if len(sess.GetStreams()) == 0 {
		return nil // BigQuery's answer when nothing matches
	}
	root, err := avro.Parse(sess.GetAvroSchema().GetSchema())
	if err != nil {
		return fmt.Errorf("read session on %s: %w", where, err)
	}
	if root.Kind != "record" {
		return fmt.Errorf("read session on %s: the Avro schema is a %s, not a record", where, root.Kind)
	}
	// The session's fields come in table order, not in the order asked.
	slot := make([]int, len(root.Fields))
	fields := make([]*bigquery.FieldSchema, len(root.Fields))
	for i, f := range root.Fields {
		slot[i] = -1
		for j, c := range cols {
			if strings.EqualFold(c.Name, f.Name) {
				slot[i], fields[i] = j, c
			}
		}
		if slot[i] < 0 {
			return fmt.Errorf("read session on %s: unexpected column %s", where, f.Name)
		}
	}
	for _, st := range sess.GetStreams() {
		var offset int64
		for attempt := 0; ; attempt++ {
			n, err := r.readStream(ctx, st.GetName(), offset, root, slot, fields, len(cols), fn)
			offset += n
			if err == nil {
				break
			}
			if s, ok := status.FromError(err); !ok || s.Code() != codes.Unavailable || attempt >= readRetries {
				return fmt.Errorf("read %s at row %d: %w", where, offset, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
			}
		}
	}
	return nil
}

// readStream reads one stream from offset and returns how many rows fn
// was given.
func (r *TableReader) readStream(ctx context.Context, stream string, offset int64, root *avro.Type, slot []int, fields []*bigquery.FieldSchema, width int, fn func([]Cell) error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := r.rc.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: stream, Offset: offset})
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		resp, err := rows.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		b := resp.GetAvroRows().GetSerializedBinaryRows()
		for range resp.GetRowCount() {
			row := make([]Cell, width)
			for i, f := range root.Fields {
				if row[slot[i]], b, err = readCell(b, f.Type, fields[i], 0); err != nil {
					return n, fmt.Errorf("row %d column %s: %w", offset+n, f.Name, err)
				}
			}
			if err := fn(row); err != nil {
				return n, err
			}
			n++
		}
	}
}

// readCell decodes one Avro value of column f into canonical text.
func readCell(b []byte, t *avro.Type, f *bigquery.FieldSchema, depth int) (Cell, []byte, error) {
	if depth > avro.MaxNesting {
		return Cell{}, nil, avro.ErrNesting
	}
	if v, nullIdx := t.Nullable(); nullIdx >= 0 {
		br, rest, err := avro.ReadBranch(b, t)
		if err != nil {
			return Cell{}, nil, err
		}
		if br == nullIdx {
			return Cell{Null: true}, rest, nil
		}
		t, b = v, rest
	}
	if t.Kind == "array" {
		var items []string
		for {
			n, rest, err := avro.ReadLong(b)
			if err != nil {
				return Cell{}, nil, err
			}
			b = rest
			if n == 0 {
				return Cell{Text: "[" + strings.Join(items, ",") + "]"}, b, nil
			}
			if n < 0 { // a block with its size in bytes
				n = -n
				if _, b, err = avro.ReadLong(b); err != nil {
					return Cell{}, nil, err
				}
			}
			for range n {
				var c Cell
				if c, b, err = readCell(b, t.Items, f, depth+1); err != nil {
					return Cell{}, nil, err
				}
				items = append(items, c.Text)
			}
		}
	}
	switch t.Kind {
	case "boolean":
		if len(b) < 1 {
			return Cell{}, nil, avro.ErrShort
		}
		return Cell{Text: TextBool(b[0] != 0)}, b[1:], nil
	case "int", "long":
		n, rest, err := avro.ReadLong(b)
		if err != nil {
			return Cell{}, nil, err
		}
		switch {
		case t.Logical == "date":
			return Cell{Text: TextDate(n)}, rest, nil
		case t.Logical == "timestamp-micros":
			return Cell{Text: TextTimestamp(n)}, rest, nil
		case t.Logical == "time-micros":
			return Cell{Text: time.UnixMicro(n).UTC().Format("15:04:05.000000")}, rest, nil
		}
		return Cell{Text: TextInt64(n)}, rest, nil
	case "double":
		v, rest, err := avro.ReadDouble(b)
		return Cell{Text: TextFloat(v)}, rest, err
	case "float":
		v, rest, err := avro.ReadFloat(b)
		return Cell{Text: TextFloat(v)}, rest, err
	case "bytes":
		v, rest, err := avro.ReadBytes(b)
		if err != nil {
			return Cell{}, nil, err
		}
		if t.Logical == "decimal" {
			return Cell{Text: TextDecimal(decimalFromAvro(v, t.Scale))}, rest, nil
		}
		return Cell{Text: TextBytes(v)}, rest, nil
	case "string":
		v, rest, err := avro.ReadBytes(b)
		if err != nil {
			return Cell{}, nil, err
		}
		s := string(v)
		switch {
		case t.Logical == "datetime" || f.Type == bigquery.DateTimeFieldType:
			dt, err := parseCivilDateTime(s)
			if err != nil {
				return Cell{}, nil, err
			}
			return Cell{Text: dt}, rest, nil
		case f.Type == bigquery.JSONFieldType:
			s = TextJSON(s)
		}
		return Cell{Text: s}, rest, nil
	case "record":
		names := make([]string, len(t.Fields))
		cells := make([]Cell, len(t.Fields))
		for i, sf := range t.Fields {
			names[i] = sf.Name
			sub := findColumn(f.Schema, sf.Name)
			if sub == nil {
				sub = &bigquery.FieldSchema{Name: sf.Name}
			}
			var err error
			if cells[i], b, err = readCell(b, sf.Type, sub, depth+1); err != nil {
				return Cell{}, nil, err
			}
		}
		return Cell{Text: TextRecord(names, cells)}, b, nil
	}
	return Cell{}, nil, fmt.Errorf("avro type %s is not read", t.Kind)
}

// decimalFromAvro turns Avro decimal bytes (big-endian two's complement of
// the unscaled value) into decimal text.
func decimalFromAvro(b []byte, scale int) string {
	return string(avro.AppendDecimalText(nil, b, scale))
}

// parseCivilDateTime reads BigQuery's DATETIME text
// (YYYY-MM-DD[T ]HH:MM:SS[.ffffff]) into canonical text.
func parseCivilDateTime(s string) (string, error) {
	t, err := time.Parse("2006-01-02T15:04:05.999999", strings.Replace(s, " ", "T", 1))
	if err != nil {
		return "", fmt.Errorf("DATETIME %q: %w", s, err)
	}
	return TextDateTime(t.UnixMicro()), nil
}
