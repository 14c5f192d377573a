// Package avrotest checks Avro records we own — the producer's state
// records (checkpoint, schema history) — against checked-in golden files:
// a producer upgraded across a refactor must read what the previous one
// wrote, and write what the previous one would read.
package avrotest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strait-cdc/strait/pkg/avro"
)

// GoldenRecord returns the checked-in state record testdata/golden/<name>.avro
// (typ its schema), after checking it against encoded, what the encoder
// writes now, and against its JSON form <name>.json; with update it writes
// encoded, maps sorted, and its JSON form instead.
//
// goavro writes a map's entries in Go's map order, which varies from run
// to run, so the files hold every map sorted by key (CanonicalRecord) and
// a fresh encoding is compared after the same sort (SameRecord): byte for
// byte apart from the order of map entries, which Avro leaves to the
// writer.
func GoldenRecord(t *testing.T, name string, typ *avro.Type, encoded []byte, update bool) []byte {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".avro")
	sorted, err := CanonicalRecord(typ, encoded)
	if err != nil {
		t.Fatalf("the encoder's record does not read: %v", err)
	}
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		text, err := jsonForm(typ, sorted)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, sorted, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "golden", name+".json"), text, 0o644); err != nil {
			t.Fatal(err)
		}
		return sorted
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run Golden -update writes it)", err)
	}
	text, err := jsonForm(typ, b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if want, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json")); err != nil || !bytes.Equal(text, want) {
		t.Errorf("%s.json is not the decoded form of %s (err %v)", name, path, err)
	}
	return b
}

// SameRecord fails t unless got, a framed record encoded now, is want
// apart from the order of map entries.
func SameRecord(t *testing.T, typ *avro.Type, got, want []byte) {
	t.Helper()
	sorted, err := CanonicalRecord(typ, got)
	if err != nil {
		t.Fatalf("the encoder's record does not read: %v", err)
	}
	if !bytes.Equal(sorted, want) {
		t.Errorf("encoded again, the record differs from the golden one:\n got % x\nwant % x", sorted, want)
	}
}

// jsonForm is the framed record b decoded, as indented JSON.
func jsonForm(typ *avro.Type, b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%d bytes: not framed", len(b))
	}
	v, err := avro.Decode(typ, b[5:])
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	return append(out, '\n'), err
}

// CanonicalRecord returns the framed record b (magic byte, schema id, Avro
// body of typ) with the entries of every map sorted by key, each map
// written as goavro writes one: a single block of all its entries, then
// the end block.
func CanonicalRecord(typ *avro.Type, b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%d bytes: not framed", len(b))
	}
	out, rest, err := sortMaps(append([]byte{}, b[:5]...), typ, b[5:])
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the record", len(rest))
	}
	return out, err
}

// sortMaps appends the value of type typ at the start of b to out, its
// maps sorted, and returns the bytes after it.
func sortMaps(out []byte, typ *avro.Type, b []byte) ([]byte, []byte, error) {
	switch typ.Kind {
	case "record":
		var err error
		for _, f := range typ.Fields {
			if out, b, err = sortMaps(out, f.Type, b); err != nil {
				return nil, nil, err
			}
		}
		return out, b, nil
	case "union":
		i, rest, err := avro.ReadBranch(b, typ)
		if err != nil {
			return nil, nil, err
		}
		return sortMaps(append(out, b[:len(b)-len(rest)]...), typ.Branches[i], rest)
	case "array", "map":
		type entry struct{ name, key, value []byte } // key: name as encoded
		var entries []entry
		for {
			n, rest, err := avro.ReadLong(b)
			if err != nil {
				return nil, nil, err
			}
			b = rest
			if n == 0 {
				break
			}
			if n < 0 { // a block with its size in bytes
				n = -n
				if _, b, err = avro.ReadLong(b); err != nil {
					return nil, nil, err
				}
			}
			for range n {
				var e entry
				if typ.Kind == "map" {
					name, rest, err := avro.ReadBytes(b)
					if err != nil {
						return nil, nil, err
					}
					e.name, e.key, b = name, b[:len(b)-len(rest)], rest
				}
				if e.value, b, err = sortMaps(nil, typ.Items, b); err != nil {
					return nil, nil, err
				}
				entries = append(entries, e)
			}
		}
		if typ.Kind == "map" {
			slices.SortFunc(entries, func(x, y entry) int { return bytes.Compare(x.name, y.name) })
		}
		if len(entries) > 0 {
			out = binary.AppendVarint(out, int64(len(entries))) // zig-zag, as Avro's long
		}
		for _, e := range entries {
			out = append(append(out, e.key...), e.value...)
		}
		return append(out, 0), b, nil
	default:
		rest, err := avro.Skip(b, typ)
		if err != nil {
			return nil, nil, err
		}
		return append(out, b[:len(b)-len(rest)]...), rest, nil
	}
}
