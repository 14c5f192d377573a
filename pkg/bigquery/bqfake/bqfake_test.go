package bqfake_test

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
)

const (
	project = "proj"
	dsID    = "ds"
)

// env is one server with both real clients connected to it.
type env struct {
	srv *bqfake.Server
	bq  *bigquery.Client
	mw  *managedwriter.Client
	ctx context.Context
}

// newEnv starts a server with opts. Schema changes and re-created tables
// reach its Write API at once unless opts say otherwise: the delays are
// delays_test.go's subject.
func newEnv(t *testing.T, opts ...bqfake.Opt) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	srv, err := bqfake.New(append([]bqfake.Opt{bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	bqc, err := bigquery.NewClient(ctx, project, srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bqc.Close() })
	mw, err := managedwriter.NewClient(ctx, project, srv.GRPCClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mw.Close() })
	if err := bqc.Dataset(dsID).Create(ctx, &bigquery.DatasetMetadata{Location: "EU"}); err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, bq: bqc, mw: mw, ctx: ctx}
}

func (e *env) createTable(t *testing.T, name string, md *bigquery.TableMetadata) {
	t.Helper()
	if err := e.bq.Dataset(dsID).Table(name).Create(e.ctx, md); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func (e *env) rows(t *testing.T, table string) []map[string]any {
	t.Helper()
	rows, err := e.srv.Rows(project, dsID, table)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// writer is a managed default stream with the message used to build rows.
type writer struct {
	ms *managedwriter.ManagedStream
	md protoreflect.MessageDescriptor
}

// newWriter opens the default stream of table with a writer schema built
// like production code builds it: table schema → adapt proto2 descriptor
// → adapt.NormalizeDescriptor; cdc adds the two pseudo-columns.
func (e *env) newWriter(t *testing.T, table string, schema bigquery.Schema, cdc bool, opts ...managedwriter.WriterOption) *writer {
	t.Helper()
	ts, err := adapt.BQSchemaToStorageTableSchema(schema)
	if err != nil {
		t.Fatal(err)
	}
	if cdc {
		ts, err = adapt.BQSchemaToStorageTableSchema(append(schema,
			&bigquery.FieldSchema{Name: "_CHANGE_TYPE", Type: bigquery.StringFieldType},
			&bigquery.FieldSchema{Name: "_CHANGE_SEQUENCE_NUMBER", Type: bigquery.StringFieldType}))
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(ts, "root")
	if err != nil {
		t.Fatal(err)
	}
	md := d.(protoreflect.MessageDescriptor)
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		t.Fatal(err)
	}
	return e.openWriter(t, table, dp, md, opts...)
}

// newRawWriter opens the default stream with a hand-written writer schema.
func (e *env) newRawWriter(t *testing.T, table string, dp *descriptorpb.DescriptorProto, opts ...managedwriter.WriterOption) *writer {
	t.Helper()
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("test.proto"),
		MessageType: []*descriptorpb.DescriptorProto{dp},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.openWriter(t, table, dp, fd.Messages().Get(0), opts...)
}

func (e *env) openWriter(t *testing.T, table string, dp *descriptorpb.DescriptorProto, md protoreflect.MessageDescriptor, opts ...managedwriter.WriterOption) *writer {
	t.Helper()
	opts = append([]managedwriter.WriterOption{
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(project, dsID, table)),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(dp),
	}, opts...)
	ms, err := e.mw.NewManagedStream(e.ctx, opts...)
	if err != nil {
		t.Fatalf("open stream to %s: %v", table, err)
	}
	t.Cleanup(func() { ms.Close() })
	return &writer{ms: ms, md: md}
}

// append sends rows as one request and waits for its result.
func (w *writer) append(ctx context.Context, t *testing.T, rows ...map[string]any) (*managedwriter.AppendResult, error) {
	t.Helper()
	data := make([][]byte, len(rows))
	for i, r := range rows {
		data[i] = encode(t, w.md, r)
	}
	res, err := w.ms.AppendRows(ctx, data)
	if err != nil {
		return nil, err
	}
	_, err = res.GetResult(ctx)
	return res, err
}

// encode builds one serialized row; values are int64, float64, bool,
// string, []byte or map[string]any for a nested message.
func encode(t *testing.T, md protoreflect.MessageDescriptor, vals map[string]any) []byte {
	t.Helper()
	b, err := proto.Marshal(message(t, md, vals))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func message(t *testing.T, md protoreflect.MessageDescriptor, vals map[string]any) *dynamicpb.Message {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	for k, v := range vals {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			t.Fatalf("no field %s in %s", k, md.FullName())
		}
		var pv protoreflect.Value
		switch x := v.(type) {
		case int64:
			switch fd.Kind() {
			case protoreflect.Int32Kind:
				pv = protoreflect.ValueOfInt32(int32(x))
			default:
				pv = protoreflect.ValueOfInt64(x)
			}
		case map[string]any:
			pv = protoreflect.ValueOfMessage(message(t, fd.Message(), x))
		default:
			pv = protoreflect.ValueOf(v)
		}
		m.Set(fd, pv)
	}
	return m
}

// field and msg write descriptors by hand, for schemas adapt would not make.
func field(name string, typ descriptorpb.FieldDescriptorProto_Type, num int32) *descriptorpb.FieldDescriptorProto {
	return &descriptorpb.FieldDescriptorProto{
		Name:   proto.String(name),
		Number: proto.Int32(num),
		Type:   typ.Enum(),
		Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
	}
}

func msg(fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
	return &descriptorpb.DescriptorProto{Name: proto.String("row"), Field: fields}
}

const (
	tInt64  = descriptorpb.FieldDescriptorProto_TYPE_INT64
	tString = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBytes  = descriptorpb.FieldDescriptorProto_TYPE_BYTES
)

// ratEqual compares NUMERIC values, which Rows returns as *big.Rat.
var ratEqual = cmp.Comparer(func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("error code = %v (%v), want %v", got, err, want)
	}
}

func wantHTTP(t *testing.T, err error, want int) {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error = %v, want *googleapi.Error %d", err, want)
	}
	if gerr.Code != want {
		t.Fatalf("HTTP code = %d (%v), want %d", gerr.Code, gerr, want)
	}
}

var cdcSchema = bigquery.Schema{
	{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
	{Name: "name", Type: bigquery.StringFieldType},
}

func cdcTable() *bigquery.TableMetadata {
	return &bigquery.TableMetadata{
		Schema:           cdcSchema,
		TableConstraints: &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: []string{"id"}}},
		Clustering:       &bigquery.Clustering{Fields: []string{"id"}},
	}
}

func TestTableMetadata(t *testing.T) {
	e := newEnv(t)
	staleness := &bigquery.IntervalValue{Minutes: 15}
	e.createTable(t, "orders", &bigquery.TableMetadata{
		Schema: bigquery.Schema{
			{Name: "tenant", Type: bigquery.StringFieldType, Required: true},
			{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
			{Name: "total", Type: bigquery.NumericFieldType},
			{Name: "tags", Type: bigquery.StringFieldType, Repeated: true},
			{Name: "addr", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
				{Name: "city", Type: bigquery.StringFieldType},
			}},
		},
		TableConstraints: &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: []string{"tenant", "id"}}},
		Clustering:       &bigquery.Clustering{Fields: []string{"tenant", "id"}},
		MaxStaleness:     staleness,
		Labels:           map[string]string{"owner": "strait"},
	})
	e.createTable(t, "orders_latest", &bigquery.TableMetadata{ViewQuery: "SELECT * FROM ds.orders"})

	md, err := e.bq.Dataset(dsID).Table("orders").Metadata(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"pk":         md.TableConstraints.PrimaryKey.Columns,
		"clustering": md.Clustering.Fields,
		"staleness":  md.MaxStaleness.String(),
		"labels":     md.Labels,
		"type":       md.Type,
		"location":   md.Location,
		"fields":     len(md.Schema),
		"nested":     md.Schema[4].Schema[0].Name,
		"repeated":   md.Schema[3].Repeated,
		"required":   md.Schema[0].Required,
	}
	want := map[string]any{
		"pk":         []string{"tenant", "id"},
		"clustering": []string{"tenant", "id"},
		"staleness":  staleness.String(),
		"labels":     map[string]string{"owner": "strait"},
		"type":       bigquery.RegularTable,
		"location":   "EU",
		"fields":     5,
		"nested":     "city",
		"repeated":   true,
		"required":   true,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("metadata (-got +want):\n%s", diff)
	}

	view, err := e.bq.Dataset(dsID).Table("orders_latest").Metadata(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if view.Type != bigquery.ViewTable || view.ViewQuery != "SELECT * FROM ds.orders" {
		t.Errorf("view = %v %q, want VIEW with its query", view.Type, view.ViewQuery)
	}

	var names []string
	for it := e.bq.Dataset(dsID).Tables(e.ctx); ; {
		tb, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tb.TableID)
	}
	if diff := cmp.Diff(names, []string{"orders", "orders_latest"}); diff != "" {
		t.Errorf("tables (-got +want):\n%s", diff)
	}

	srvMeta, err := e.srv.Table(project, dsID, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if srvMeta.Id != "proj:ds.orders" {
		t.Errorf("Server.Table id = %q", srvMeta.Id)
	}

	t.Run("errors", func(t *testing.T) {
		ds := e.bq.Dataset(dsID)
		tests := []struct {
			name string
			call func() error
			want int
		}{
			{"dataset exists", func() error { return ds.Create(e.ctx, nil) }, http.StatusConflict},
			{"dataset missing", func() error { _, err := e.bq.Dataset("nope").Metadata(e.ctx); return err }, http.StatusNotFound},
			{"table exists", func() error { return ds.Table("orders").Create(e.ctx, cdcTable()) }, http.StatusConflict},
			{"table missing", func() error { _, err := ds.Table("nope").Metadata(e.ctx); return err }, http.StatusNotFound},
			{"table in missing dataset", func() error { return e.bq.Dataset("nope").Table("t").Create(e.ctx, cdcTable()) }, http.StatusNotFound},
			{"delete missing", func() error { return ds.Table("nope").Delete(e.ctx) }, http.StatusNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { wantHTTP(t, tt.call(), tt.want) })
		}
	})

	if err := e.bq.Dataset(dsID).Table("orders_latest").Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.bq.Dataset(dsID).Table("orders_latest").Metadata(e.ctx)
	wantHTTP(t, err, http.StatusNotFound)
}

func TestTableCreateRules(t *testing.T) {
	e := newEnv(t)
	cols := func(n int) bigquery.Schema {
		var s bigquery.Schema
		for i := range n {
			s = append(s, &bigquery.FieldSchema{Name: "c" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Type: bigquery.IntegerFieldType})
		}
		return s
	}
	names := func(s bigquery.Schema) []string {
		var out []string
		for _, f := range s {
			out = append(out, f.Name)
		}
		return out
	}
	withPK := func(s bigquery.Schema, pk ...string) *bigquery.TableMetadata {
		return &bigquery.TableMetadata{Schema: s, TableConstraints: &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: pk}}}
	}
	tests := []struct {
		name string
		md   *bigquery.TableMetadata
		want int // HTTP status; 0 = created
	}{
		{"16 key columns", withPK(cols(20), names(cols(16))...), 0},
		{"17 key columns", withPK(cols(20), names(cols(17))...), http.StatusBadRequest},
		{"key column not in schema", withPK(cols(2), "nope"), http.StatusBadRequest},
		{"repeated key column", withPK(bigquery.Schema{{Name: "a", Type: bigquery.IntegerFieldType, Repeated: true}}, "a"), http.StatusBadRequest},
		{"4 clustering columns", &bigquery.TableMetadata{Schema: cols(5), Clustering: &bigquery.Clustering{Fields: names(cols(4))}}, 0},
		{"5 clustering columns", &bigquery.TableMetadata{Schema: cols(5), Clustering: &bigquery.Clustering{Fields: names(cols(5))}}, http.StatusBadRequest},
		{"duplicate column", &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: "a", Type: bigquery.IntegerFieldType}, {Name: "A", Type: bigquery.StringFieldType}}}, http.StatusBadRequest},
		{"reserved prefix", &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: "_PARTITIONTIME", Type: bigquery.TimestampFieldType}}}, http.StatusBadRequest},
		{"record without fields", &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: "r", Type: bigquery.RecordFieldType}}}, http.StatusBadRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.bq.Dataset(dsID).Table("t"+string(rune('a'+i))).Create(e.ctx, tt.md)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				return
			}
			wantHTTP(t, err, tt.want)
		})
	}
}

func TestSchemaUpdateRules(t *testing.T) {
	base := bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
		{Name: "name", Type: bigquery.StringFieldType, Required: true},
		{Name: "addr", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{{Name: "city", Type: bigquery.StringFieldType}}},
	}
	with := func(edit func(s bigquery.Schema) bigquery.Schema) bigquery.Schema {
		cp := make(bigquery.Schema, len(base))
		for i, f := range base {
			c := *f
			cp[i] = &c
		}
		return edit(cp)
	}
	tests := []struct {
		name   string
		schema bigquery.Schema
		want   int // HTTP status; 0 = accepted
	}{
		{"add nullable column", with(func(s bigquery.Schema) bigquery.Schema {
			return append(s, &bigquery.FieldSchema{Name: "note", Type: bigquery.StringFieldType})
		}), 0},
		{"add repeated column", with(func(s bigquery.Schema) bigquery.Schema {
			return append(s, &bigquery.FieldSchema{Name: "tags", Type: bigquery.StringFieldType, Repeated: true})
		}), 0},
		{"add nullable nested column", with(func(s bigquery.Schema) bigquery.Schema {
			s[2].Schema = bigquery.Schema{{Name: "city", Type: bigquery.StringFieldType}, {Name: "zip", Type: bigquery.StringFieldType}}
			return s
		}), 0},
		{"relax required to nullable", with(func(s bigquery.Schema) bigquery.Schema { s[1].Required = false; return s }), 0},
		{"add required column", with(func(s bigquery.Schema) bigquery.Schema {
			return append(s, &bigquery.FieldSchema{Name: "note", Type: bigquery.StringFieldType, Required: true})
		}), http.StatusBadRequest},
		{"change type", with(func(s bigquery.Schema) bigquery.Schema { s[1].Type = bigquery.BytesFieldType; return s }), http.StatusBadRequest},
		{"nullable to required", with(func(s bigquery.Schema) bigquery.Schema {
			s[2].Required = true
			return s
		}), http.StatusBadRequest},
		{"nullable to repeated", with(func(s bigquery.Schema) bigquery.Schema { s[2].Repeated = true; return s }), http.StatusBadRequest},
		{"remove column", with(func(s bigquery.Schema) bigquery.Schema { return s[:2] }), http.StatusBadRequest},
		{"rename column", with(func(s bigquery.Schema) bigquery.Schema { s[1].Name = "title"; return s }), http.StatusBadRequest},
		{"change nested type", with(func(s bigquery.Schema) bigquery.Schema {
			s[2].Schema = bigquery.Schema{{Name: "city", Type: bigquery.IntegerFieldType}}
			return s
		}), http.StatusBadRequest},
	}
	e := newEnv(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "t" + string(rune('a'+i))
			e.createTable(t, name, &bigquery.TableMetadata{Schema: base})
			md, err := e.bq.Dataset(dsID).Table(name).Update(e.ctx, bigquery.TableMetadataToUpdate{Schema: tt.schema}, "")
			if tt.want != 0 {
				wantHTTP(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if diff := cmp.Diff(md.Schema, tt.schema); diff != "" {
				t.Errorf("schema after update (-got +want):\n%s", diff)
			}
		})
	}

	t.Run("etag", func(t *testing.T) {
		e.createTable(t, "etag", &bigquery.TableMetadata{Schema: base})
		tb := e.bq.Dataset(dsID).Table("etag")
		md, err := tb.Metadata(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Update(e.ctx, bigquery.TableMetadataToUpdate{Description: "one"}, md.ETag); err != nil {
			t.Fatalf("update with current etag: %v", err)
		}
		_, err = tb.Update(e.ctx, bigquery.TableMetadataToUpdate{Description: "two"}, md.ETag)
		wantHTTP(t, err, http.StatusPreconditionFailed)
	})
}

// TestCDC applies UPSERTs and DELETEs with sequence numbers, in an order
// that exercises every ordering rule, and checks the final table.
func TestCDC(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "users", cdcTable())
	w := e.newWriter(t, "users", cdcSchema, true)

	up := func(id int64, name, seq string) map[string]any {
		r := map[string]any{"id": id, "name": name, "_CHANGE_TYPE": "UPSERT"}
		if seq != "" {
			r["_CHANGE_SEQUENCE_NUMBER"] = seq
		}
		return r
	}
	del := func(id int64, seq string) map[string]any {
		return map[string]any{"id": id, "_CHANGE_TYPE": "DELETE", "_CHANGE_SEQUENCE_NUMBER": seq}
	}
	batches := [][]map[string]any{
		{up(1, "v10", "0/1/10"), up(2, "first", "2"), up(3, "alive", "4"), up(4, "x", ""), up(5, "nine", "1/9")},
		{up(1, "older", "0/1/F")}, // 0/1/F < 0/1/10 by value: ignored
		{up(2, "second", "2")},    // equal: the later one wins
		{del(3, "5")},             // delete, tombstone at 5
		{up(3, "stale", "3")},     // older than the delete: not resurrected
		{up(4, "y", "")},          // no sequence numbers: the later one wins
		{up(5, "ten", "1/a")},     // hex, case-insensitive: a > 9
		{up(6, "gone", "1"), del(6, "2"), up(6, "back", "3")}, // one request, in order
		{del(7, "7"), up(7, "older", "6")},                    // delete of an unknown key still blocks older changes
	}
	for i, b := range batches {
		if _, err := w.append(e.ctx, t, b...); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	want := []map[string]any{
		{"id": int64(1), "name": "v10"},
		{"id": int64(2), "name": "second"},
		{"id": int64(4), "name": "y"},
		{"id": int64(5), "name": "ten"},
		{"id": int64(6), "name": "back"},
	}
	if diff := cmp.Diff(e.rows(t, "users"), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	if got := e.srv.Appends(); got != int64(len(batches)) {
		t.Errorf("Appends() = %d, want %d", got, len(batches))
	}
	if e.srv.AppendBytes() == 0 {
		t.Error("AppendBytes() = 0")
	}
}

// TestAppendTypes writes one value of every type through adapt's encoding
// and reads it back.
func TestAppendTypes(t *testing.T) {
	e := newEnv(t)
	schema := bigquery.Schema{
		{Name: "i", Type: bigquery.IntegerFieldType},
		{Name: "f", Type: bigquery.FloatFieldType},
		{Name: "b", Type: bigquery.BooleanFieldType},
		{Name: "s", Type: bigquery.StringFieldType},
		{Name: "by", Type: bigquery.BytesFieldType},
		{Name: "d", Type: bigquery.DateFieldType},
		{Name: "ts", Type: bigquery.TimestampFieldType},
		{Name: "j", Type: bigquery.JSONFieldType},
		{Name: "g", Type: bigquery.GeographyFieldType},
		{Name: "rep", Type: bigquery.IntegerFieldType, Repeated: true},
		{Name: "rec", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{{Name: "x", Type: bigquery.StringFieldType}}},
		{Name: "null", Type: bigquery.StringFieldType},
	}
	e.createTable(t, "types", &bigquery.TableMetadata{Schema: schema})
	w := e.newWriter(t, "types", schema, false)
	ts := time.Date(2024, 2, 29, 12, 30, 0, 123456000, time.UTC)
	r := map[string]any{
		"i": int64(-7), "f": 1.5, "b": true, "s": "héllo", "by": []byte{0, 1},
		"d": int64(19782), "ts": ts.UnixMicro(), "j": `{"a":1}`, "g": "POINT(1 2)",
		"rec": map[string]any{"x": "in"},
	}
	m := message(t, w.md, r)
	rep := m.Mutable(w.md.Fields().ByName("rep")).List()
	rep.Append(protoreflect.ValueOfInt64(1))
	rep.Append(protoreflect.ValueOfInt64(2))
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.ms.AppendRows(e.ctx, [][]byte{b})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.GetResult(e.ctx); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{
		"i": int64(-7), "f": 1.5, "b": true, "s": "héllo", "by": []byte{0, 1},
		"d": civil.Date{Year: 2024, Month: 2, Day: 29}, "ts": ts, "j": `{"a":1}`, "g": "POINT(1 2)",
		"rep": []any{int64(1), int64(2)}, "rec": map[string]any{"x": "in"}, "null": nil,
	}}
	if diff := cmp.Diff(e.rows(t, "types"), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}

// TestAppendRules shows, for each enforced rule, that a correct write
// passes and a wrong one fails with INVALID_ARGUMENT (row-level rules also
// with RowErrors), leaving the table unchanged.
func TestAppendRules(t *testing.T) {
	plain := &bigquery.TableMetadata{Schema: bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
		{Name: "name", Type: bigquery.StringFieldType},
	}}
	typed := &bigquery.TableMetadata{Schema: bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType},
		{Name: "amount", Type: bigquery.NumericFieldType},
		{Name: "doc", Type: bigquery.JSONFieldType},
		{Name: "day", Type: bigquery.DateFieldType},
		{Name: "at", Type: bigquery.DateTimeFieldType},
	}}
	idName := msg(field("id", tInt64, 1), field("name", tString, 2))
	cdcMsg := msg(field("id", tInt64, 1), field("name", tString, 2), field("_CHANGE_TYPE", tString, 3), field("_CHANGE_SEQUENCE_NUMBER", tString, 4))
	typedMsg := msg(field("id", tInt64, 1), field("amount", tString, 2), field("doc", tString, 3), field("day", tString, 4), field("at", tString, 5))
	huge := strings.Repeat("x", 11<<20)

	tests := []struct {
		name    string
		table   *bigquery.TableMetadata
		good    *descriptorpb.DescriptorProto
		goodRow map[string]any
		bad     *descriptorpb.DescriptorProto // nil: same as good
		badRow  map[string]any
		rowErr  bool   // the rule is per row: RowErrors expected
		why     string // in the error, or the row error when rowErr
	}{
		{
			name: "unknown field", table: plain,
			good: idName, goodRow: map[string]any{"id": int64(1)},
			bad: msg(field("id", tInt64, 1), field("nmae", tString, 2)), badRow: map[string]any{"id": int64(1)},
			why: "extra fields: 'nmae'",
		},
		{
			name: "incompatible kind", table: plain,
			good: idName, goodRow: map[string]any{"id": int64(1)},
			bad: msg(field("id", tString, 1)), badRow: map[string]any{"id": "1"},
			why: "incompatible type string",
		},
		{
			name: "required column missing from schema", table: plain,
			good: idName, goodRow: map[string]any{"id": int64(1)},
			bad: msg(field("name", tString, 2)), badRow: map[string]any{"name": "a"},
			why: "misses required column id",
		},
		{
			name: "required column unset in row", table: plain,
			good: idName, goodRow: map[string]any{"id": int64(1)},
			badRow: map[string]any{"name": "a"}, rowErr: true,
			why: "required field id is missing",
		},
		{
			name: "change type without primary key", table: plain,
			good: idName, goodRow: map[string]any{"id": int64(1)},
			bad: cdcMsg, badRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT"},
			why: "only allowed on a table with a primary key",
		},
		{
			name: "change type value", table: cdcTable(),
			good: cdcMsg, goodRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "DELETE"},
			badRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "MERGE"}, rowErr: true,
			why: `got "MERGE"`,
		},
		{
			name: "change type lower case", table: cdcTable(),
			good: cdcMsg, goodRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT"},
			badRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "upsert"}, rowErr: true,
			why: `got "upsert"`,
		},
		{
			name: "sequence number not hex", table: cdcTable(),
			good: cdcMsg, goodRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "ffffffffffffffff/0/0/0"},
			badRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "12g"}, rowErr: true,
			why: "hexadecimal digits",
		},
		{
			name: "sequence number with five sections", table: cdcTable(),
			good: cdcMsg, goodRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "1/2/3/4"},
			badRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "1/2/3/4/5"}, rowErr: true,
			why: "at most 4",
		},
		{
			name: "sequence number section of 17 digits", table: cdcTable(),
			good: cdcMsg, goodRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "1"},
			badRow: map[string]any{"id": int64(1), "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "10000000000000000"}, rowErr: true,
			why: "hexadecimal digits",
		},
		{
			name: "invalid numeric", table: typed,
			good: typedMsg, goodRow: map[string]any{"amount": "-99999999999999999999999999999.999999999"},
			badRow: map[string]any{"amount": "1.2.3"}, rowErr: true,
			why: "invalid NUMERIC",
		},
		{
			name: "numeric scale above 9", table: typed,
			good: typedMsg, goodRow: map[string]any{"amount": "0.000000001"},
			badRow: map[string]any{"amount": "0.0000000001"}, rowErr: true,
			why: "more than 9 fractional digits",
		},
		{
			name: "numeric precision above 38", table: typed,
			good: typedMsg, goodRow: map[string]any{"amount": "1e28"},
			badRow: map[string]any{"amount": "1e29"}, rowErr: true,
			why: "out of range",
		},
		{
			name: "invalid JSON", table: typed,
			good: typedMsg, goodRow: map[string]any{"doc": `{"a":[1,2]}`},
			badRow: map[string]any{"doc": `{"a":`}, rowErr: true,
			why: "invalid JSON",
		},
		{
			name: "date out of range", table: typed,
			good: typedMsg, goodRow: map[string]any{"day": "9999-12-31"},
			badRow: map[string]any{"day": "0000-12-31"}, rowErr: true,
			why: "out of range",
		},
		{
			name: "invalid datetime", table: typed,
			good: typedMsg, goodRow: map[string]any{"at": "2024-02-29 23:59:59.999999"},
			badRow: map[string]any{"at": "2023-02-29 00:00:00"}, rowErr: true,
			why: "invalid DATETIME",
		},
		{
			name: "invalid UTF-8", table: plain,
			good: idName, goodRow: map[string]any{"id": int64(1), "name": "ok"},
			badRow: map[string]any{"id": int64(1), "name": "\xff"}, rowErr: true,
			why: "invalid UTF-8",
		},
		{
			name: "request over 10 MB", table: plain,
			good: idName, goodRow: map[string]any{"id": int64(1), "name": huge[:9<<20]},
			badRow: map[string]any{"id": int64(1), "name": huge},
			why:    "limit 10485760",
		},
	}
	e := newEnv(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := "t" + string(rune('a'+i))
			e.createTable(t, table, tt.table)
			good := e.newRawWriter(t, table, tt.good)
			if _, err := good.append(e.ctx, t, tt.goodRow); err != nil {
				t.Fatalf("good write: %v", err)
			}
			before := e.rows(t, table)
			// A bad schema gets its own writer; a bad row rides behind a good
			// one, which the rejection must take down with it.
			bad, rows := good, []map[string]any{tt.goodRow, tt.badRow}
			if tt.bad != nil {
				bad, rows = e.newRawWriter(t, table, tt.bad), []map[string]any{tt.badRow}
			}
			res, err := bad.append(e.ctx, t, rows...)
			wantCode(t, err, codes.InvalidArgument)
			detail := status.Convert(err).Message()
			if tt.rowErr {
				full, _ := res.FullResponse(e.ctx)
				if len(full.GetRowErrors()) != 1 || full.GetRowErrors()[0].GetIndex() != 1 {
					t.Fatalf("row errors = %v, want one for row 1", full.GetRowErrors())
				}
				detail = full.GetRowErrors()[0].GetMessage()
			}
			if !strings.Contains(detail, tt.why) {
				t.Errorf("error %q does not say %q", detail, tt.why)
			}
			if diff := cmp.Diff(e.rows(t, table), before, ratEqual); diff != "" {
				t.Errorf("rejected request changed the table (-got +want):\n%s", diff)
			}
		})
	}
}

// TestSchemaEvolution adds a column while a writer is open: the old writer
// keeps working and is told the new schema; a new writer can fill it.
func TestSchemaEvolution(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "users", cdcTable())
	old := e.newWriter(t, "users", cdcSchema, true)
	if _, err := old.append(e.ctx, t, map[string]any{"id": int64(1), "name": "a", "_CHANGE_TYPE": "UPSERT"}); err != nil {
		t.Fatal(err)
	}
	grown := append(append(bigquery.Schema{}, cdcSchema...), &bigquery.FieldSchema{Name: "email", Type: bigquery.StringFieldType})
	if _, err := e.bq.Dataset(dsID).Table("users").Update(e.ctx, bigquery.TableMetadataToUpdate{Schema: grown}, ""); err != nil {
		t.Fatal(err)
	}
	res, err := old.append(e.ctx, t, map[string]any{"id": int64(2), "name": "b", "_CHANGE_TYPE": "UPSERT"})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := res.UpdatedSchema(e.ctx); len(s.GetFields()) != 3 {
		t.Errorf("UpdatedSchema = %v, want the 3 columns", s)
	}
	w := e.newWriter(t, "users", grown, true)
	if _, err := w.append(e.ctx, t, map[string]any{"id": int64(3), "name": "c", "email": "c@x", "_CHANGE_TYPE": "UPSERT"}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": int64(1), "name": "a", "email": nil},
		{"id": int64(2), "name": "b", "email": nil},
		{"id": int64(3), "name": "c", "email": "c@x"},
	}
	if diff := cmp.Diff(e.rows(t, "users"), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}

// TestFaults checks each injected failure against managedwriter, with and
// without its automatic retries (EnableWriteRetries). Retries back off up
// to about a second each, so every case needs at most one.
func TestFaults(t *testing.T) {
	plain := bigquery.Schema{{Name: "n", Type: bigquery.IntegerFieldType}}
	row := func(n int64) map[string]any { return map[string]any{"n": n} }
	tests := []struct {
		name    string
		retries bool
		inject  func(s *bqfake.Server)
		// results of appending rows 1, 2 and 3, each its own request
		want     []codes.Code
		wantRows []int64
	}{
		{
			name:   "resource exhausted",
			inject: func(s *bqfake.Server) { s.FailAppends(codes.ResourceExhausted, 1) },
			want:   []codes.Code{codes.ResourceExhausted, codes.OK, codes.OK}, wantRows: []int64{2, 3},
		},
		{
			name: "resource exhausted retried", retries: true,
			inject: func(s *bqfake.Server) { s.FailAppends(codes.ResourceExhausted, 1) },
			want:   []codes.Code{codes.OK, codes.OK, codes.OK}, wantRows: []int64{1, 2, 3},
		},
		{
			name:   "unavailable twice",
			inject: func(s *bqfake.Server) { s.FailAppends(codes.Unavailable, 2) },
			want:   []codes.Code{codes.Unavailable, codes.Unavailable, codes.OK}, wantRows: []int64{3},
		},
		{
			name: "invalid argument is never retried", retries: true,
			inject: func(s *bqfake.Server) { s.FailAppends(codes.InvalidArgument, 1) },
			want:   []codes.Code{codes.InvalidArgument, codes.OK, codes.OK}, wantRows: []int64{2, 3},
		},
		{
			// The lost acknowledgement: applied, yet reported as failed.
			name:   "dropped response",
			inject: func(s *bqfake.Server) { s.DropNextResponse() },
			want:   []codes.Code{codes.Unavailable, codes.OK, codes.OK}, wantRows: []int64{1, 2, 3},
		},
		{
			// Retried after the lost acknowledgement: a table without a
			// primary key gets the row twice.
			name: "dropped response retried", retries: true,
			inject: func(s *bqfake.Server) { s.DropNextResponse() },
			want:   []codes.Code{codes.OK, codes.OK, codes.OK}, wantRows: []int64{1, 1, 2, 3},
		},
		{
			name:   "stream closed after one request",
			inject: func(s *bqfake.Server) { s.CloseStreamAfter(1) },
			want:   []codes.Code{codes.OK, codes.Unavailable, codes.OK}, wantRows: []int64{1, 3},
		},
		{
			name: "stream closed after one request retried", retries: true,
			inject: func(s *bqfake.Server) { s.CloseStreamAfter(1) },
			want:   []codes.Code{codes.OK, codes.OK, codes.OK}, wantRows: []int64{1, 2, 3},
		},
	}
	e := newEnv(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := "t" + string(rune('a'+i))
			e.createTable(t, table, &bigquery.TableMetadata{Schema: plain})
			w := e.newWriter(t, table, plain, false, managedwriter.EnableWriteRetries(tt.retries))
			tt.inject(e.srv)
			var got []codes.Code
			for n := int64(1); n <= 3; n++ {
				_, err := w.append(e.ctx, t, row(n))
				got = append(got, code(err))
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("append results (-got +want):\n%s", diff)
			}
			var ns []int64
			for _, r := range e.rows(t, table) {
				ns = append(ns, r["n"].(int64))
			}
			if diff := cmp.Diff(ns, tt.wantRows); diff != "" {
				t.Errorf("rows (-got +want):\n%s", diff)
			}
		})
	}
}

// code is the gRPC code of an append error; a stream that ended (io.EOF
// from the send side) counts as UNAVAILABLE, which is how the server ends it.
func code(err error) codes.Code {
	if err != nil && strings.Contains(err.Error(), "EOF") {
		return codes.Unavailable
	}
	return status.Code(err)
}

// TestNumericBytes checks the packed NUMERIC encoding: little-endian two's
// complement of the value times 10^9.
func TestNumericBytes(t *testing.T) {
	e := newEnv(t)
	schema := bigquery.Schema{{Name: "v", Type: bigquery.NumericFieldType}}
	e.createTable(t, "num", &bigquery.TableMetadata{Schema: schema})
	w := e.newRawWriter(t, "num", msg(field("v", tBytes, 1)))
	// -1.5 * 10^9 = -1500000000 = 0xA697D100 as 32-bit two's complement.
	if _, err := w.append(e.ctx, t, map[string]any{"v": []byte{0x00, 0xd1, 0x97, 0xa6}}); err != nil {
		t.Fatal(err)
	}
	rows := e.rows(t, "num")
	if got := rows[0]["v"].(*big.Rat); got.Cmp(big.NewRat(-3, 2)) != 0 {
		t.Errorf("value = %s, want -3/2", got.RatString())
	}
}

// TestAppendEncodings covers the other proto encodings a column accepts.
func TestAppendEncodings(t *testing.T) {
	tests := []struct {
		name  string
		col   bigquery.FieldType
		proto descriptorpb.FieldDescriptorProto_Type
		value any
		want  any
	}{
		{"date as text", bigquery.DateFieldType, tString, "2024-02-29", civil.Date{Year: 2024, Month: 2, Day: 29}},
		{"datetime as text", bigquery.DateTimeFieldType, tString, "2024-02-29 23:59:59.5",
			civil.DateTime{Date: civil.Date{Year: 2024, Month: 2, Day: 29}, Time: civil.Time{Hour: 23, Minute: 59, Second: 59, Nanosecond: 5e8}}},
		{"datetime packed", bigquery.DateTimeFieldType, tInt64, int64(2024)<<46 | 2<<42 | 29<<37 | 12<<32 | 34<<26 | 56<<20 | 789,
			civil.DateTime{Date: civil.Date{Year: 2024, Month: 2, Day: 29}, Time: civil.Time{Hour: 12, Minute: 34, Second: 56, Nanosecond: 789000}}},
		{"time as text", bigquery.TimeFieldType, tString, "23:59:59.999999", civil.Time{Hour: 23, Minute: 59, Second: 59, Nanosecond: 999999000}},
		{"time packed", bigquery.TimeFieldType, tInt64, int64(7)<<32 | 8<<26 | 9<<20 | 10, civil.Time{Hour: 7, Minute: 8, Second: 9, Nanosecond: 10000}},
		{"timestamp with offset", bigquery.TimestampFieldType, tString, "2024-02-29 12:00:00+02:00", time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)},
		{"timestamp in UTC", bigquery.TimestampFieldType, tString, "2024-02-29T12:00:00.123456Z", time.Date(2024, 2, 29, 12, 0, 0, 123456000, time.UTC)},
		{"bignumeric as text", bigquery.BigNumericFieldType, tString, "-123.45", big.NewRat(-12345, 100)},
		{"numeric from integer", bigquery.NumericFieldType, tInt64, int64(42), big.NewRat(42, 1)},
		{"bool from integer", bigquery.BooleanFieldType, tInt64, int64(2), true},
		{"bytes from text", bigquery.BytesFieldType, tString, "ab", []byte("ab")},
		{"geography as GeoJSON", bigquery.GeographyFieldType, tString, `{"type":"Point","coordinates":[1,2]}`, `{"type":"Point","coordinates":[1,2]}`},
	}
	e := newEnv(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := "t" + string(rune('a'+i))
			e.createTable(t, table, &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: "v", Type: tt.col}}})
			w := e.newRawWriter(t, table, msg(field("v", tt.proto, 1)))
			if _, err := w.append(e.ctx, t, map[string]any{"v": tt.value}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e.rows(t, table), []map[string]any{{"v": tt.want}}, ratEqual); diff != "" {
				t.Errorf("rows (-got +want):\n%s", diff)
			}
		})
	}
}

// TestProto3Writer writes a proto3 message normalized by adapt: fields
// with implicit presence read as their zero value when unset (the
// normalized descriptor carries it as a default), optional ones as NULL.
func TestProto3Writer(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "p3", &bigquery.TableMetadata{Schema: bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
		{Name: "name", Type: bigquery.StringFieldType},
		{Name: "note", Type: bigquery.StringFieldType},
	}})
	note := field("note", tString, 3)
	note.Proto3Optional = proto.Bool(true)
	note.OneofIndex = proto.Int32(0)
	row := msg(field("id", tInt64, 1), field("name", tString, 2), note)
	row.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: proto.String("_note")}}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("p3.proto"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{row},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().Get(0)
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		t.Fatal(err)
	}
	w := e.openWriter(t, "p3", dp, md)
	if _, err := w.append(e.ctx, t,
		map[string]any{"id": int64(1), "name": "a", "note": "n"},
		map[string]any{"id": int64(2)},
		map[string]any{},
	); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": int64(1), "name": "a", "note": "n"},
		{"id": int64(2), "name": "", "note": nil},
		{"id": int64(0), "name": "", "note": nil},
	}
	if diff := cmp.Diff(e.rows(t, "p3"), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}

// TestRowWireFormat sends rows encoded by hand and checks they are read as
// proto.Unmarshal reads them with the writer schema: the last occurrence of
// a scalar wins, occurrences of a message merge, repeated scalars may be
// packed, fields of unknown numbers or of a wire type their kind does not
// take are ignored; bytes that are not a message fail the request.
func TestRowWireFormat(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "wire", &bigquery.TableMetadata{Schema: bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
		{Name: "name", Type: bigquery.StringFieldType},
		{Name: "tags", Type: bigquery.IntegerFieldType, Repeated: true},
		{Name: "rec", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
			{Name: "a", Type: bigquery.IntegerFieldType}, {Name: "b", Type: bigquery.StringFieldType}}},
	}})
	tags := field("tags", tInt64, 3)
	tags.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	rec := field("rec", descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, 4)
	rec.TypeName = proto.String(".row.rec_t")
	row := msg(field("id", tInt64, 1), field("name", tString, 2), tags, rec)
	row.NestedType = []*descriptorpb.DescriptorProto{{Name: proto.String("rec_t"), Field: []*descriptorpb.FieldDescriptorProto{field("a", tInt64, 1), field("b", tString, 2)}}}
	w := e.newRawWriter(t, "wire", row)

	var raw []byte
	raw = protowire.AppendTag(raw, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 7)
	for _, s := range []string{"x", "y"} {
		raw = protowire.AppendTag(raw, 2, protowire.BytesType)
		raw = protowire.AppendString(raw, s)
	}
	raw = protowire.AppendTag(raw, 2, protowire.VarintType) // wrong wire type for a string: unknown
	raw = protowire.AppendVarint(raw, 1)
	raw = protowire.AppendTag(raw, 3, protowire.BytesType) // packed 1, 2
	raw = protowire.AppendBytes(raw, []byte{1, 2})
	raw = protowire.AppendTag(raw, 3, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 3)
	recA := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5)
	recB := protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "b")
	for _, m := range [][]byte{recA, recB} {
		raw = protowire.AppendTag(raw, 4, protowire.BytesType)
		raw = protowire.AppendBytes(raw, m)
	}
	raw = protowire.AppendTag(raw, 99, protowire.Fixed32Type) // unknown number
	raw = protowire.AppendFixed32(raw, 1)

	// What proto.Unmarshal makes of it.
	ref := dynamicpb.NewMessage(w.md)
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, ref); err != nil {
		t.Fatal(err)
	}
	want := message(t, w.md, map[string]any{"id": int64(7), "name": "y", "rec": map[string]any{"a": int64(5), "b": "b"}})
	list := want.Mutable(w.md.Fields().ByName("tags")).List()
	for _, v := range []int64{1, 2, 3} {
		list.Append(protoreflect.ValueOfInt64(v))
	}
	if !proto.Equal(ref, want) {
		t.Fatalf("proto.Unmarshal reads %v, the test expects %v", ref, want)
	}

	res, err := w.ms.AppendRows(e.ctx, [][]byte{raw})
	if err == nil {
		_, err = res.GetResult(e.ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := e.rows(t, "wire")
	if diff := cmp.Diff(got, []map[string]any{{"id": int64(7), "name": "y", "tags": []any{int64(1), int64(2), int64(3)}, "rec": map[string]any{"a": int64(5), "b": "b"}}}); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}

	res, err = w.ms.AppendRows(e.ctx, [][]byte{raw[:len(raw)-2]}) // cut inside the last field
	if err == nil {
		_, err = res.GetResult(e.ctx)
	}
	wantCode(t, err, codes.InvalidArgument)
}
