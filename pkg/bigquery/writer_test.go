package bigquery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
	"github.com/strait-cdc/strait/pkg/testenv"
)

const (
	project = "proj"
	dataset = "cdc"
)

// newWriter starts a local BigQuery and a Writer talking to it through the
// real clients.
func newWriter(t *testing.T) (*bqfake.Server, *bigquery.Writer, context.Context) {
	t.Helper()
	srv, w, ctx, _ := newWriterWithMetrics(t)
	return srv, w, ctx
}

// newWriterWithMetrics is newWriter, also returning its metrics registry.
func newWriterWithMetrics(t *testing.T) (*bqfake.Server, *bigquery.Writer, context.Context, *prometheus.Registry) {
	t.Helper()
	return startWriter(t, nil, io.Discard)
}

// startWriter is newWriterWithMetrics with a configuration change (nil
// for none) and a log destination.
// Schema changes and re-created tables reach its Write API at once.
func startWriter(t *testing.T, configure func(*bigquery.Config), logTo io.Writer) (*bqfake.Server, *bigquery.Writer, context.Context, *prometheus.Registry) {
	t.Helper()
	return startWriterOn(t, []bqfake.Opt{bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0)}, configure, logTo)
}

// startWriterOn is startWriter with a server started with opts.
func startWriterOn(t *testing.T, opts []bqfake.Opt, configure func(*bigquery.Config), logTo io.Writer) (*bqfake.Server, *bigquery.Writer, context.Context, *prometheus.Registry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	srv, err := bqfake.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := &bigquery.Config{}
	cfg.Defaults()
	cfg.Project, cfg.Dataset = project, dataset
	cfg.Endpoint, cfg.WriteEndpoint, cfg.Insecure = srv.RESTURL(), srv.GRPCAddr(), true
	if configure != nil {
		configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w, err := bigquery.NewWriter(ctx, cfg, slog.New(slog.NewTextHandler(logTo, nil)), bigquery.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.Schemas = &schemaIDs
	reg.MustRegister(w.Collector()) // as the consumer does
	return srv, w, ctx, reg
}

// schemaIDs is the schema registry of every test's writers and sources:
// as in a registry, the same text has the same id in every test.
var schemaIDs testenv.Schemas

// source is one table version encoded as the producer encodes it.
type source struct {
	t       *testing.T
	table   *cdc.Table
	schemas *avro.Schemas
	enc     *avro.Encoder
	id      int // of the value schema in schemaIDs
	keyID   int // of the key schema, 0 without a key
	seq     uint64
}

func newSource(t *testing.T, table *cdc.Table) *source {
	t.Helper()
	s, err := avro.Build("strait", table)
	if err != nil {
		t.Fatal(err)
	}
	src := &source{t: t, table: table, schemas: s, id: schemaIDs.ID(s.Value)}
	if s.Key != "" {
		src.keyID = schemaIDs.ID(s.Key)
	}
	src.enc = avro.NewEncoder(table, "strait", "test", uint32(src.keyID), uint32(src.id))
	return src
}

// change encodes one event; positions increase with every call.
func (s *source) change(op cdc.Op, before, after []cdc.Value) sink.Change {
	s.t.Helper()
	s.seq++
	ev := &cdc.Event{Table: s.table, Op: op, Before: before, After: after,
		Position: cdc.Position{Epoch: 1, File: 3, Pos: 1000 * s.seq}, CommitTime: time.Unix(1700000000+int64(s.seq), 0)}
	v, err := s.enc.AppendValue(nil, ev, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return sink.Change{KeySchemaID: s.keyID, ValueSchemaID: s.id, Value: v[5:]}
}

// topic is the table topic of the source's table.
func (s *source) topic() sink.Topic {
	return sink.Topic{Name: "strait." + s.table.ID(), Prefix: "strait", Database: s.table.Database, Table: s.table.Name}
}

// allTypes has a column of every type the producer writes (the fuzz
// targets' table).
var allTypes = bigquery.AllTypes

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

var ratEqual = cmp.Comparer(func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })

// rows reads a table back without the ingestion time, which the test
// cannot know; it must be set.
func rows(t *testing.T, srv *bqfake.Server, table string) []map[string]any {
	t.Helper()
	rs, err := srv.Rows(project, dataset, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if _, ok := r[bigquery.ColIngestedAt].(time.Time); !ok {
			t.Errorf("row %v: %s not set", r, bigquery.ColIngestedAt)
		}
		delete(r, bigquery.ColIngestedAt)
	}
	return rs
}

func TestApplyTypes(t *testing.T) {
	srv, w, ctx := newWriter(t)
	src := newSource(t, allTypes)
	extreme := []cdc.Value{
		cdc.Int(1), cdc.Int(math.MinInt32), cdc.Int(-1), // u64: the 64 bits of 2^64-1
		cdc.Str("-12345678.90"), cdc.Str("-99999999999999999999999999999999999.999999999999999999999999999999"),
		cdc.Float(float64(float32(1.5e38))), cdc.Float(-math.MaxFloat64), cdc.Int(1), cdc.Int(0xABC),
		cdc.Str("zażółć 😀"), cdc.Str("\x00\xff"), cdc.Str(`{"a":[1,2]}`),
		cdc.Int(-719162), // 0001-01-01
		cdc.Int(-(838*3600 + 59*60 + 59) * 1e6), cdc.Int(253402300799999999), cdc.Int(0),
		cdc.Str("\xe6\x10\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@"),
	}
	nulls := make([]cdc.Value, len(allTypes.Columns))
	for i := range nulls {
		nulls[i] = cdc.Null
	}
	nulls[0] = cdc.Int(2)
	small := append([]cdc.Value{}, extreme...)
	small[0], small[3], small[4] = cdc.Int(3), cdc.Str("0.05"), cdc.Str("0.000000000000000000000000000001")
	if err := w.Apply(ctx, src.topic(), []sink.Change{
		src.change(cdc.OpCreate, nil, extreme), src.change(cdc.OpRead, nil, nulls), src.change(cdc.OpCreate, nil, small),
	}); err != nil {
		t.Fatal(err)
	}
	data := func(id int64, price, huge string) map[string]any {
		return map[string]any{
			"id": id, "i32": int64(math.MinInt32), "u64": rat("18446744073709551615"),
			"price": rat(price), "huge": rat(huge),
			"f32": float64(float32(1.5e38)), "f64": -math.MaxFloat64, "flag": true, "bits": []byte{0x0A, 0xBC},
			"name": "zażółć 😀", "raw": []byte{0, 0xff}, "doc": `{"a":[1,2]}`,
			"day": civil.Date{Year: 1, Month: 1, Day: 1}, "dur": int64(-(838*3600 + 59*60 + 59) * 1e6),
			"at":  civil.DateTime{Date: civil.Date{Year: 9999, Month: 12, Day: 31}, Time: civil.Time{Hour: 23, Minute: 59, Second: 59, Nanosecond: 999999000}},
			"ts":  time.Unix(0, 0).UTC(),
			"geo": map[string]any{"wkb": []byte("\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@"), "srid": int64(4326)},
		}
	}
	meta := func(r map[string]any, op string, seq uint64) map[string]any {
		r["_strait_op"] = op
		r["_strait_sequence"] = cdc.Position{Epoch: 1, File: 3, Pos: 1000 * seq}.String()
		r["_strait_source_ts"] = time.Unix(1700000000+int64(seq), 0).UTC()
		return r
	}
	allNull := map[string]any{"id": int64(2)}
	for _, c := range allTypes.Columns[1:] {
		allNull[c.Name] = nil
	}
	want := []map[string]any{
		meta(data(1, "-12345678.90", "-99999999999999999999999999999999999.999999999999999999999999999999"), "c", 1),
		meta(allNull, "r", 2),
		meta(data(3, "0.05", "0.000000000000000000000000000001"), "c", 3),
	}
	if diff := cmp.Diff(rows(t, srv, "shop_items"), want, ratEqual); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}

	md, err := srv.Table(project, dataset, "shop_items")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, f := range md.Schema.Fields {
		types[f.Name] = f.Type
	}
	wantTypes := map[string]string{
		"id": "INTEGER", "i32": "INTEGER", "u64": "NUMERIC", "price": "NUMERIC", "huge": "BIGNUMERIC",
		"f32": "FLOAT", "f64": "FLOAT", "flag": "BOOLEAN", "bits": "BYTES", "name": "STRING", "raw": "BYTES",
		"doc": "JSON", "day": "DATE", "dur": "INTEGER", "at": "DATETIME", "ts": "TIMESTAMP", "geo": "RECORD",
		"_strait_op": "STRING", "_strait_sequence": "STRING", "_strait_source_ts": "TIMESTAMP", "_strait_ingested_at": "TIMESTAMP",
	}
	if diff := cmp.Diff(types, wantTypes); diff != "" {
		t.Errorf("column types (-got +want):\n%s", diff)
	}
	got := map[string]any{"pk": md.TableConstraints.PrimaryKey.Columns, "clustering": md.Clustering.Fields, "staleness": md.MaxStaleness}
	if diff := cmp.Diff(got, map[string]any{"pk": []string{"id"}, "clustering": []string{"id"}, "staleness": "0-0 0 0:15:0"}); diff != "" {
		t.Errorf("table (-got +want):\n%s", diff)
	}
}

var users = &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Type: cdc.TypeInt64},
	{Name: "email", Type: cdc.TypeString, Nullable: true},
}}

func user(id int64, email string) []cdc.Value { return []cdc.Value{cdc.Int(id), cdc.Str(email)} }

func userRows(t *testing.T, srv *bqfake.Server) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range rows(t, srv, "shop_users") {
		for k := range r {
			if strings.HasPrefix(k, "_strait_") {
				delete(r, k)
			}
		}
		out = append(out, r)
	}
	return out
}

// TestApplyChanges applies inserts, updates, deletes and a primary-key
// change, then the same records again and an old change late: the table
// holds the source state each time.
func TestApplyChanges(t *testing.T) {
	srv, w, ctx, reg := newWriterWithMetrics(t)
	src := newSource(t, users)
	var tombstone sink.Change
	batch := []sink.Change{
		src.change(cdc.OpCreate, nil, user(1, "a@x")),
		src.change(cdc.OpCreate, nil, user(2, "b@x")),
		src.change(cdc.OpCreate, nil, user(3, "c@x")),
		src.change(cdc.OpUpdate, user(1, "a@x"), user(1, "a2@x")),
		src.change(cdc.OpDelete, user(2, "b@x"), nil),
		tombstone,
		// UPDATE users SET id = 4 WHERE id = 3: the producer sends a
		// delete of the old key and an insert of the new one.
		src.change(cdc.OpDelete, user(3, "c@x"), nil),
		src.change(cdc.OpCreate, nil, user(4, "c@x")),
	}
	want := []map[string]any{{"id": int64(1), "email": "a2@x"}, {"id": int64(4), "email": "c@x"}}
	if err := w.Apply(ctx, src.topic(), batch); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(userRows(t, srv), want); diff != "" {
		t.Fatalf("rows (-got +want):\n%s", diff)
	}
	// Redelivery (a crash before the commit) and a late old change.
	if err := w.Apply(ctx, src.topic(), batch); err != nil {
		t.Fatal(err)
	}
	if err := w.Apply(ctx, src.topic(), batch[:1]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(userRows(t, srv), want); diff != "" {
		t.Errorf("rows after redelivery (-got +want):\n%s", diff)
	}
	// How far the table is behind the source: the newest change applied
	// (the 7th, committed at 1700000007), not moved back by the late one.
	lag, err := testutil.GatherAndCount(reg, "strait_consumer_source_timestamp_seconds")
	if err != nil || lag != 1 {
		t.Fatalf("source timestamp series: %d (%v), want 1", lag, err)
	}
	want7 := strings.NewReader(`# HELP strait_consumer_source_timestamp_seconds Source commit time of the newest change BigQuery acknowledged, by BigQuery table: time() minus this is how far the table is behind the source.
# TYPE strait_consumer_source_timestamp_seconds gauge
strait_consumer_source_timestamp_seconds{table="shop_users"} 1.700000007e+09
`)
	if err := testutil.GatherAndCompare(reg, want7, "strait_consumer_source_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

// TestApplyRetriesTransientFailures: BigQuery refuses appends as
// unavailable, then over its throughput quota, then ends the stream as a
// connection reset does, then loses an acknowledgement; Apply retries
// each (the writer itself: managedwriter's retries are off) until the
// rows are in, each once, and counts the retries.
func TestApplyRetriesTransientFailures(t *testing.T) {
	srv, w, ctx, reg := startWriter(t, func(c *bigquery.Config) { c.RetryMaxBackoff = 20 * time.Millisecond }, io.Discard)
	src := newSource(t, users)
	faults := []func(){
		func() { srv.FailAppends(codes.Unavailable, 2) },
		func() { srv.FailAppends(codes.ResourceExhausted, 5) }, // beyond the retries on one stream
		func() { srv.CloseStreamAfter(0) },
		srv.DropNextResponse,
	}
	var want []map[string]any
	for i, fault := range faults {
		id := int64(i + 1)
		fault()
		if err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(id, "a@x"))}); err != nil {
			t.Fatalf("fault %d: %v", i, err)
		}
		want = append(want, map[string]any{"id": id, "email": "a@x"})
		if diff := cmp.Diff(userRows(t, srv), want); diff != "" {
			t.Fatalf("fault %d: rows (-got +want):\n%s", i, diff)
		}
	}
	// Each refusal, the reset and the lost acknowledgement is a retry.
	const retries = 2 + 5 + 1 + 1
	wantRetries := fmt.Sprintf(`# HELP strait_consumer_bigquery_errors_total BigQuery errors by kind: append (retried), table (the table stopped), schema (an envelope of the table BigQuery cannot hold; the table stops).
# TYPE strait_consumer_bigquery_errors_total counter
strait_consumer_bigquery_errors_total{kind="append"} %d
`, retries)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantRetries), "strait_consumer_bigquery_errors_total"); err != nil {
		t.Error(err)
	}
}

// TestApplySchemaChange: a value schema that gains a column patches the
// table before its rows are written; until the Write API sees the new
// column (a schema delay, here on bqfake's clock) Apply returns a
// *sink.WaitError, and succeeds once it does. One that changes a type stops
// the table with an error saying what to do.
func TestApplySchemaChange(t *testing.T) {
	clock := bqfake.NewClock(time.Now())
	srv, w, ctx, _ := startWriterOn(t, []bqfake.Opt{bqfake.WithClock(clock)}, nil, io.Discard)
	v1 := newSource(t, users)
	if err := w.Apply(ctx, v1.topic(), []sink.Change{v1.change(cdc.OpCreate, nil, user(1, "a@x"))}); err != nil {
		t.Fatal(err)
	}
	grown := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: append(append([]cdc.Column{}, users.Columns...),
		cdc.Column{Name: "age", Type: cdc.TypeInt32, Nullable: true})}
	v2 := newSource(t, grown)
	v2.seq = v1.seq
	batch := []sink.Change{
		v2.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(2), cdc.Str("b@x"), cdc.Int(42)}),
		v1.change(cdc.OpUpdate, user(1, "a@x"), user(1, "a1@x")), // an old schema after the new one
	}
	err := w.Apply(ctx, v2.topic(), batch)
	var we *sink.WaitError
	if !errors.As(err, &we) || we.Table != "shop_users" || we.Reason != bigquery.WaitSchema {
		t.Fatalf("within the schema delay: err = %v, want a WaitError for shop_users, reason %s", err, bigquery.WaitSchema)
	}
	clock.Advance(bqfake.DefaultSchemaDelay)
	if err := w.Apply(ctx, v2.topic(), batch); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"id": int64(1), "email": "a1@x", "age": nil}, {"id": int64(2), "email": "b@x", "age": int64(42)}}
	if diff := cmp.Diff(userRows(t, srv), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}

	retyped := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64}, {Name: "email", Type: cdc.TypeInt64, Nullable: true},
	}}
	v3 := newSource(t, retyped)
	retypedBatch := []sink.Change{v3.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(3), cdc.Int(3)})}
	err = w.Apply(ctx, v3.topic(), retypedBatch)
	var te *sink.TableError
	if !errors.As(err, &te) || te.Table != "shop_users" || !strings.Contains(err.Error(), "column email is STRING in BigQuery but the source now sends INTEGER") ||
		!strings.Contains(err.Error(), "drop the table and replay") {
		t.Errorf("type change: err = %v, want a TableError for shop_users saying what changed and what to do", err)
	}
	// Trying again stops the table again while the cause is there;
	// other tables go on.
	if err := w.Apply(ctx, v3.topic(), retypedBatch); !errors.As(err, &te) {
		t.Errorf("the type change again: err = %v, want the TableError again", err)
	}
	other := newSource(t, &cdc.Table{Database: "shop", Name: "orders", PrimaryKey: []int{0}, Columns: users.Columns})
	if err := w.Apply(ctx, other.topic(), []sink.Change{other.change(cdc.OpCreate, nil, user(1, "o"))}); err != nil {
		t.Errorf("another table: %v", err)
	}
}

// TestStreamClosesDuringOutage: closing a table's stream while the Storage
// Write API is unreachable does not wait for it to come back. An append
// abandoned there (its context ended) leaves managedwriter reconnecting,
// with retries that only the writer's Close ends, under the connection's
// lock, which closing a stream takes: a consumer stopped during an outage
// waited for BigQuery in the watermark's error path (CI,
// TestStopDuringBigQueryOutage). Once BigQuery answers the rows land.
func TestStreamClosesDuringOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := bqfake.New(bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	write := testenv.NewForwarder(t, srv.GRPCAddr())
	write.Up(t)
	cfg := &bigquery.Config{}
	cfg.Defaults()
	cfg.Project, cfg.Dataset = project, dataset
	cfg.Endpoint, cfg.WriteEndpoint, cfg.Insecure = srv.RESTURL(), write.Addr, true
	cfg.StreamIdleTimeout, cfg.RetryMaxBackoff = time.Nanosecond, 10*time.Millisecond
	w, err := bigquery.NewWriter(ctx, cfg, slog.New(slog.DiscardHandler), bigquery.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	w.Schemas = &schemaIDs
	src := newSource(t, users)
	if err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(1, "a@x"))}); err != nil {
		t.Fatal(err)
	}

	write.Down()
	short, stop := context.WithTimeout(ctx, time.Second)
	err = w.Apply(short, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(2, "b@x"))})
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("apply while the Write API is down: %v, want its context's end", err)
	}
	idle := make(chan struct{})
	go func() { w.CloseIdle(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		write.Up(t) // so that the close, and the test, end
		<-idle
		w.Close()
		t.Fatal("closing an idle stream waited for the Write API to come back")
	}

	write.Up(t)
	if err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(2, "b@x"))}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"id": int64(1), "email": "a@x"}, {"id": int64(2), "email": "b@x"}}
	if diff := cmp.Diff(userRows(t, srv), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
}
