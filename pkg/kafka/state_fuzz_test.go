package kafka

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
	"github.com/strait-cdc/strait/schemas"
)

// stateCodecs are the parsed schema and the encoder of schema-history
// records.
func stateCodecs(t testing.TB) (histType []*avro.Type, histCodec *avro.NativeEncoder) {
	var err error
	if histType, err = avro.Versions(schemas.SchemaHistory); err != nil {
		t.Fatal(err)
	}
	if histCodec, err = avro.NewNativeEncoder(schemas.SchemaHistory); err != nil {
		t.Fatal(err)
	}
	return histType, histCodec
}

func encodeWith(t testing.TB, c *avro.NativeEncoder, native map[string]any) []byte {
	b, err := c.Append(header(7), native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzSchemaHistory feeds arbitrary records, under a key, to the
// producer's schema-history decoder: a record is refused, or read into an
// entry that encodes to a record read back the same — never a panic, a
// hang or an allocation sized by a count the record claims. (FuzzCheckpoint
// is pkg/pipeline's.)
func FuzzSchemaHistory(f *testing.F) {
	histType, histCodec := stateCodecs(f)
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		s, err := decodeHistory(histType, key, b)
		if err != nil {
			return
		}
		again, err := decodeHistory(histType, key, encodeWith(t, histCodec, historyNative(s)))
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

// TestStateCorpus checks the seed corpus of FuzzSchemaHistory against
// what it is made of — the real encoder's records and hostile or
// impossible variants, each refused for its reason — and rewrites it with
// -update.
func TestStateCorpus(t *testing.T) {
	histType, histCodec := stateCodecs(t)
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // 2^31-1, zig-zag
	hist := encodeWith(t, histCodec, historyNative(realHistory))
	withHist := func(change func(*cdc.TableSchema)) []byte {
		s := *realHistory
		s.Columns = append([]cdc.SchemaColumn{}, s.Columns...)
		change(&s)
		return encodeWith(t, histCodec, historyNative(&s))
	}
	histSeeds := []struct {
		key  string
		b    []byte
		want error
	}{
		{"shop.users", hist, nil},
		// database "a", table "b", then 2^31-1 columns: the 14 bytes that
		// killed the producer at every start.
		{"a.b", append(header(7), append([]byte{2, 'a', 2, 'b'}, huge...)...), avro.ErrTooMany},
		{"shop.orders", hist, ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.Columns[1].Name = "id" }), ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.PrimaryKey = []string{"missing"} }), ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.Columns = []cdc.SchemaColumn{}; s.PrimaryKey = nil }), ErrInvalid},
		{"shop.users", hist[:3], nil}, // not framed: an error of its own
	}
	var files []string
	for i, s := range histSeeds {
		got, err := decodeHistory(histType, s.key, s.b)
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
