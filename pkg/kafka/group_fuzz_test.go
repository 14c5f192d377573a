package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite the seed corpora under testdata/fuzz")

// FuzzDecode feeds arbitrary record keys and values to the consumer's
// Confluent framing: a record is either split into its schema id and body
// or refused as badly framed, never a panic. (Whether the registry knows
// the id is answered from the cache: the registry is not what is fuzzed.)
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		g := newDecoder(nil, nil, nil)
		framed := len(b) >= 5 && b[0] == 0
		if framed {
			g.known[int(binary.BigEndian.Uint32(b[1:5]))] = struct{}{}
		}
		m, err := g.decode(t.Context(), b)
		var bad *decodeError
		switch {
		case b == nil:
			if err != nil || m.Body != nil {
				t.Fatalf("a tombstone: %+v, %v", m, err)
			}
		case !framed:
			if !errors.As(err, &bad) || bad.reason != ReasonBadFraming {
				t.Fatalf("% x: %v, want a %s error", b, err, ReasonBadFraming)
			}
		case err != nil:
			t.Fatalf("% x: %v", b, err)
		case m.SchemaID != int(binary.BigEndian.Uint32(b[1:5])) || !bytes.Equal(m.Body, b[5:]):
			t.Fatalf("% x: %+v", b, m)
		}
	})
}

// TestFuzzCorpus checks the seed corpus against what it is made of — the
// real encoder's key and value and bad framings of them — and rewrites it
// with -update.
func TestFuzzCorpus(t *testing.T) {
	tbl := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0},
		Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt64}, {Name: "email", Type: cdc.TypeString, Nullable: true}}}
	enc := avro.NewEncoder(tbl, "strait", "test", 7, 8)
	ev := &cdc.Event{Table: tbl, Op: cdc.OpCreate, After: []cdc.Value{cdc.Int(1), cdc.Str("a@x")},
		Position: cdc.Position{Epoch: 1, File: 3, Pos: 4}, CommitTime: time.Unix(1700000000, 0)}
	key, err := enc.AppendKey(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	value, err := enc.AppendValue(nil, ev, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	seeds := [][]byte{
		key, value,
		{},                              // empty, not a tombstone
		value[:4],                       // shorter than the header
		value[:5],                       // a header and an empty body
		append([]byte{1}, value[1:]...), // a wrong magic byte
		{0, 0xff, 0xff, 0xff, 0xff, 0},  // the largest schema id
	}
	var files []string
	for _, seed := range seeds {
		files = append(files, "go test fuzz v1\n[]byte("+strconv.Quote(string(seed))+")\n")
	}
	testenv.CheckCorpus(t, filepath.Join("testdata", "fuzz", "FuzzDecode"), files, *update)
}
