package binlog

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz and the golden schema-history records under testdata/golden")

func newHistoryCodec(t testing.TB) *HistoryCodec {
	t.Helper()
	c, err := NewHistoryCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// header frames a body as the Kafka state store does: magic byte 0, schema
// id 7.
var header = []byte{0, 0, 0, 0, 7}

// framedHistory is the record of s as the Kafka state store writes it.
func framedHistory(t testing.TB, c *HistoryCodec, s *cdc.TableSchema) []byte {
	t.Helper()
	b, err := c.Append(append([]byte{}, header...), s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errNotFramed is a record the Kafka state store refuses before its body
// is decoded: not in the Confluent wire format.
var errNotFramed = errors.New("not a framed record")

// decodeFramed decodes a framed schema-history record under key.
func decodeFramed(c *HistoryCodec, key string, b []byte) (*cdc.TableSchema, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, errNotFramed
	}
	return c.Decode(key, b[5:])
}

// FuzzSchemaHistory feeds arbitrary records, under a key, to the
// producer's schema-history decoder: a record is refused, or read into an
// entry that encodes to a record read back the same — never a panic, a
// hang or an allocation sized by a count the record claims. (It was
// pkg/kafka's, with its corpus; FuzzCheckpoint is pkg/pipeline's.)
func FuzzSchemaHistory(f *testing.F) {
	c := newHistoryCodec(f)
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		s, err := decodeFramed(c, key, b)
		if err != nil {
			return
		}
		again, err := decodeFramed(c, key, framedHistory(t, c, s))
		if err != nil {
			t.Fatalf("an entry read from % x does not read back: %v", b, err)
		}
		if diff := cmp.Diff(again, s); diff != "" {
			t.Fatalf("read back differently (-again +first):\n%s", diff)
		}
	})
}

// realHistory is a schema-history entry as the producer writes it.
var realHistory = &cdc.TableSchema{Database: "shop", Table: "users", PrimaryKey: []string{"id"}, ServerID: 7, File: "mysql-bin.000003", Pos: 99,
	Columns: []cdc.SchemaColumn{{Name: "id", ColumnType: "bigint(20) unsigned", DataType: "bigint"},
		{Name: "email", ColumnType: "varchar(255)", DataType: "varchar", Charset: "utf8mb4", Nullable: true}}}

// TestHistoryCorpus checks the seed corpus of FuzzSchemaHistory against
// what it is made of — the real encoder's records and hostile or
// impossible variants, each refused for its reason — and rewrites it with
// -update.
func TestHistoryCorpus(t *testing.T) {
	c := newHistoryCodec(t)
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // 2^31-1, zig-zag
	hist := framedHistory(t, c, realHistory)
	withHist := func(change func(*cdc.TableSchema)) []byte {
		s := *realHistory
		s.Columns = append([]cdc.SchemaColumn{}, s.Columns...)
		change(&s)
		return framedHistory(t, c, &s)
	}
	histSeeds := []struct {
		key  string
		b    []byte
		want error
	}{
		{"shop.users", hist, nil},
		// database "a", table "b", then 2^31-1 columns: the 14 bytes that
		// killed the producer at every start.
		{"a.b", append(append([]byte{}, header...), append([]byte{2, 'a', 2, 'b'}, huge...)...), avro.ErrTooMany},
		{"shop.orders", hist, avro.ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.Columns[1].Name = "id" }), avro.ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.PrimaryKey = []string{"missing"} }), avro.ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.Columns = []cdc.SchemaColumn{}; s.PrimaryKey = nil }), avro.ErrInvalid},
		{"shop.users", hist[:3], nil}, // not framed: an error of its own
	}
	var files []string
	for i, s := range histSeeds {
		got, err := decodeFramed(c, s.key, s.b)
		switch {
		case i == len(histSeeds)-1:
			if err == nil {
				t.Errorf("history seed %d: read", i)
			}
		case s.want == nil && err != nil:
			t.Errorf("history seed %d: %v", i, err)
		case s.want == nil:
			if diff := cmp.Diff(got, realHistory); diff != "" {
				t.Errorf("history seed %d (-got +want):\n%s", i, diff)
			}
		case !errors.Is(err, s.want):
			t.Errorf("history seed %d: %v, want %v", i, err, s.want)
		}
		files = append(files, fmt.Sprintf("go test fuzz v1\nstring(%s)\n[]byte(%s)\n", strconv.Quote(s.key), strconv.Quote(string(s.b))))
	}
	testenv.CheckCorpus(t, filepath.Join("testdata", "fuzz", "FuzzSchemaHistory"), files, *update)
}
