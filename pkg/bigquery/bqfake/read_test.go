package bqfake_test

import (
	"errors"
	"io"
	"math/big"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	storage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/descriptorpb"
)

// readEnv is a table of several types with rows, and a Storage Read
// client; rows are decoded with goavro, an Avro implementation of its own.
type readEnv struct {
	*env
	rc *storage.BigQueryReadClient
}

const tDouble, tBool = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, descriptorpb.FieldDescriptorProto_TYPE_BOOL

func newReadEnv(t *testing.T) *readEnv {
	e := newEnv(t)
	rc, err := storage.NewBigQueryReadClient(e.ctx, e.srv.GRPCClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	schema := bigquery.Schema{
		{Name: "k1", Type: bigquery.IntegerFieldType, Required: true},
		{Name: "k2", Type: bigquery.StringFieldType, Required: true},
		{Name: "n", Type: bigquery.NumericFieldType},
		{Name: "bn", Type: bigquery.BigNumericFieldType},
		{Name: "d", Type: bigquery.DateFieldType},
		{Name: "dt", Type: bigquery.DateTimeFieldType},
		{Name: "ts", Type: bigquery.TimestampFieldType},
		{Name: "j", Type: bigquery.JSONFieldType},
		{Name: "f", Type: bigquery.FloatFieldType},
		{Name: "by", Type: bigquery.BytesFieldType},
		{Name: "b", Type: bigquery.BooleanFieldType},
	}
	e.createTable(t, "typed", &bigquery.TableMetadata{Schema: schema, MaxStaleness: &bigquery.IntervalValue{Minutes: 15},
		TableConstraints: &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: []string{"k1", "k2"}}}})
	w := e.newRawWriter(t, "typed", msg(field("k1", tInt64, 1), field("k2", tString, 2), field("n", tString, 3), field("bn", tString, 4),
		field("d", tString, 5), field("dt", tString, 6), field("ts", tString, 7), field("j", tString, 8), field("f", tDouble, 9),
		field("by", tBytes, 10), field("b", tBool, 11)))
	rows := []map[string]any{
		{"k1": int64(1), "k2": "a", "n": "-12.5", "bn": "0.00000000000000000000000000000000000001", "d": "2024-02-29",
			"dt": "2024-02-29 23:59:59.000001", "ts": "2024-02-29T12:00:00.5Z", "j": `{"a":1}`, "f": 1.5, "by": []byte{0, 255}, "b": true},
		{"k1": int64(1), "k2": "b"},
		{"k1": int64(2), "k2": "a", "n": "99999999999999999999999999999.999999999", "dt": "2024-01-01 00:00:00"},
		{"k1": int64(3), "k2": "it's"},
	}
	if _, err := w.append(e.ctx, t, rows...); err != nil {
		t.Fatal(err)
	}
	return &readEnv{env: e, rc: rc}
}

// read reads the rows a session with these options returns, decoded by
// goavro, as maps from column to goavro's native value (unions unwrapped).
func (e *readEnv) read(t *testing.T, opts *storagepb.ReadSession_TableReadOptions) ([]map[string]any, error) {
	t.Helper()
	sess, err := e.rc.CreateReadSession(e.ctx, &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + project,
		ReadSession: &storagepb.ReadSession{
			Table:       "projects/" + project + "/datasets/" + dsID + "/tables/typed",
			DataFormat:  storagepb.DataFormat_AVRO,
			ReadOptions: opts,
		},
		MaxStreamCount: 1,
	})
	if err != nil {
		return nil, err
	}
	codec, err := goavro.NewCodec(sess.GetAvroSchema().GetSchema())
	if err != nil {
		t.Fatalf("goavro rejects the session schema: %v\n%s", err, sess.GetAvroSchema().GetSchema())
	}
	var out []map[string]any
	for _, st := range sess.GetStreams() {
		rows, err := e.rc.ReadRows(e.ctx, &storagepb.ReadRowsRequest{ReadStream: st.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		for {
			resp, err := rows.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b := resp.GetAvroRows().GetSerializedBinaryRows()
			for range resp.GetRowCount() {
				var v any
				if v, b, err = codec.NativeFromBinary(b); err != nil {
					t.Fatalf("goavro: %v", err)
				}
				row := map[string]any{}
				for k, x := range v.(map[string]any) {
					if u, ok := x.(map[string]any); ok { // a union branch
						for _, y := range u {
							x = y
						}
					}
					row[k] = x
				}
				out = append(out, row)
			}
			if len(b) != 0 {
				t.Fatalf("%d bytes left after %d rows", len(b), resp.GetRowCount())
			}
		}
	}
	return out, nil
}

func TestReadTypes(t *testing.T) {
	e := newReadEnv(t)
	got, err := e.read(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 2, 29, 12, 0, 0, 500_000_000, time.UTC)
	want := []map[string]any{
		{"k1": int64(1), "k2": "a", "n": big.NewRat(-25, 2), "bn": new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)),
			"d": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "dt": "2024-02-29T23:59:59.000001", "ts": ts, "j": `{"a":1}`,
			"f": 1.5, "by": []byte{0, 255}, "b": true},
		{"k1": int64(1), "k2": "b", "n": nil, "bn": nil, "d": nil, "dt": nil, "ts": nil, "j": nil, "f": nil, "by": nil, "b": nil},
		{"k1": int64(2), "k2": "a", "n": new(big.Rat).SetFrac(new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil), big.NewInt(1)), big.NewInt(1e9)),
			"bn": nil, "d": nil, "dt": "2024-01-01T00:00:00", "ts": nil, "j": nil, "f": nil, "by": nil, "b": nil},
		{"k1": int64(3), "k2": "it's", "n": nil, "bn": nil, "d": nil, "dt": nil, "ts": nil, "j": nil, "f": nil, "by": nil, "b": nil},
	}
	if diff := cmp.Diff(got, want, ratEqual); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}

func TestReadRestriction(t *testing.T) {
	e := newReadEnv(t)
	tests := []struct {
		name, restriction string
		want              []string // k1/k2 of the rows
	}{
		{"all", "", []string{"1/a", "1/b", "2/a", "3/it's"}},
		{"composite range", "(k1 > 1 OR (k1 = 1 AND k2 > 'a')) AND (k1 < 3 OR (k1 = 3 AND `k2` <= 'it\\'s'))", []string{"1/b", "2/a", "3/it's"}},
		{"numeric literal", "n >= NUMERIC '-12.5' AND n < BIGNUMERIC '100'", []string{"1/a"}},
		{"date, datetime, timestamp", "d = DATE '2024-02-29' AND dt > DATETIME '2024-02-29 23:59:59' AND ts <= TIMESTAMP '2024-02-29 12:00:00.5+00:00'", []string{"1/a"}},
		{"bytes and bool", "by >= b'\\x00' AND b = TRUE", []string{"1/a"}},
		{"null matches nothing", "n < 0 OR n >= 0", []string{"1/a", "2/a"}},
		{"nothing", "k1 > 3", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := e.read(t, &storagepb.ReadSession_TableReadOptions{SelectedFields: []string{"k2", "k1"}, RowRestriction: tt.restriction})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				if len(r) != 2 {
					t.Errorf("row has columns %v, want k1 and k2", r)
				}
				got = append(got, big.NewInt(r["k1"].(int64)).String()+"/"+r["k2"].(string))
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("keys (-got +want):\n%s", diff)
			}
		})
	}
}

func TestReadRejects(t *testing.T) {
	e := newReadEnv(t)
	for _, r := range []string{
		"k1 != 1", "nosuch = 1", "k1 = 'a'", "k2 = 1", "k1 = 1 AND", "(k1 = 1", "LOWER(k2) = 'a'", "k1 IN (1, 2)", "k1 = 1 k2 = 'a'", "d = DATE '2024-02-30'",
	} {
		_, err := e.read(t, &storagepb.ReadSession_TableReadOptions{RowRestriction: r})
		if code(err) != codes.InvalidArgument {
			t.Errorf("restriction %q: error %v, want InvalidArgument", r, err)
		}
	}
	if _, err := e.read(t, &storagepb.ReadSession_TableReadOptions{SelectedFields: []string{"nosuch"}}); code(err) != codes.InvalidArgument {
		t.Errorf("unknown selected field: error %v, want InvalidArgument", err)
	}
	_, err := e.rc.CreateReadSession(e.ctx, &storagepb.CreateReadSessionRequest{
		Parent:      "projects/" + project,
		ReadSession: &storagepb.ReadSession{Table: "projects/" + project + "/datasets/" + dsID + "/tables/typed", DataFormat: storagepb.DataFormat_ARROW},
	})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.rc.CreateReadSession(e.ctx, &storagepb.CreateReadSessionRequest{
		Parent:      "projects/" + project,
		ReadSession: &storagepb.ReadSession{Table: "projects/" + project + "/datasets/" + dsID + "/tables/missing", DataFormat: storagepb.DataFormat_AVRO},
	})
	wantCode(t, err, codes.NotFound)
}

// TestReadOffset resumes a stream at an offset, as the client does after
// a broken read; a stream read to its end is gone.
func TestReadOffset(t *testing.T) {
	e := newReadEnv(t)
	sess, err := e.rc.CreateReadSession(e.ctx, &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + project,
		ReadSession: &storagepb.ReadSession{
			Table:       "projects/" + project + "/datasets/" + dsID + "/tables/typed",
			DataFormat:  storagepb.DataFormat_AVRO,
			ReadOptions: &storagepb.ReadSession_TableReadOptions{SelectedFields: []string{"k1"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stream := sess.GetStreams()[0].GetName()
	recv := func(offset int64) (int64, []byte, error) {
		rows, err := e.rc.ReadRows(e.ctx, &storagepb.ReadRowsRequest{ReadStream: stream, Offset: offset})
		if err != nil {
			return 0, nil, err
		}
		var n int64
		var b []byte
		for {
			resp, err := rows.Recv()
			if errors.Is(err, io.EOF) {
				return n, b, nil
			}
			if err != nil {
				return n, b, err
			}
			n += resp.GetRowCount()
			b = append(b, resp.GetAvroRows().GetSerializedBinaryRows()...)
		}
	}
	if _, _, err := recv(5); code(err) != codes.OutOfRange {
		t.Errorf("offset 5 of 4 rows: error %v, want OutOfRange", err)
	}
	n, b, err := recv(3)
	if err != nil || n != 1 || string(b) != "\x06" { // k1 = 3, zig-zag
		t.Errorf("from offset 3: %d rows %x, %v; want the row of k1 = 3", n, b, err)
	}
	if _, _, err := recv(0); code(err) != codes.NotFound {
		t.Errorf("a stream read to its end: error %v, want NotFound", err)
	}
}
