package binlog

// A TABLE_MAP event precedes every rows event, so a source that commits one
// row per transaction sends one per row. Its optional metadata (signedness,
// character sets, column names, ENUM/SET labels, primary key) is what a
// schema is built from, but the reader builds a table's schema only when the
// TABLE_MAP differs from the one its cached schema came from. So go-mysql is
// told to skip that metadata (skipOptionalMeta, saving its five allocations
// per event), the cache compares its bytes, and only a TABLE_MAP the cache
// cannot serve has it decoded, here, into a copy of the event
// (withOptionalMeta). TestRawDecodingMatchesGoMySQL compares the result with
// go-mysql's decoding of the same events (checkOptionalMeta).

import (
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"
)

// skipOptionalMeta is the syncer's TableMapOptionalMetaDecodeFunc. Without
// the metadata go-mysql's own row decoding (used for the tables decode.go
// leaves to it) reads every integer as signed: convert.go applies the
// column's signedness.
func skipOptionalMeta([]byte) error { return nil }

// optionalMeta returns a TABLE_MAP event's optional metadata: the bytes after
// its NULL bitmap up to the end of the event, before the checksum (checksum
// bytes long). raw is the whole event, which the NULL bitmap is a part of.
func optionalMeta(e *replication.TableMapEvent, raw []byte, checksum int) ([]byte, error) {
	// Both slices reach to the end of the same buffer: the bytes after the
	// NULL bitmap, less those after the event, are the metadata.
	rest := e.NullBitmap[len(e.NullBitmap):cap(e.NullBitmap)]
	end := len(rest) - (cap(raw) - len(raw)) - checksum
	if len(raw) == 0 || end < 0 || end+checksum > len(rest) || end+checksum > 0 && &rest[end+checksum-1] != &raw[len(raw)-1] {
		return nil, fmt.Errorf("table %s.%s: cannot locate the TABLE_MAP event's optional metadata", e.Schema, e.Table)
	}
	return rest[:end:end], nil
}

// withOptionalMeta returns a copy of e with its optional metadata decoded
// from meta (the format of MySQL's Table_map_log_event: type, length, value).
func withOptionalMeta(e *replication.TableMapEvent, meta []byte) (*replication.TableMapEvent, error) {
	full := *e
	full.SignednessBitmap, full.DefaultCharset, full.ColumnCharset, full.ColumnName = nil, nil, nil, nil
	full.SetStrValue, full.EnumStrValue, full.GeometryType, full.PrimaryKey, full.PrimaryKeyPrefix = nil, nil, nil, nil, nil
	full.EnumSetDefaultCharset, full.EnumSetColumnCharset, full.VisibilityBitmap = nil, nil, nil
	for len(meta) > 0 {
		typ := meta[0]
		l, n, err := lenenc(meta[1:])
		if err != nil || uint64(len(meta)-1-n) < l {
			return nil, fmt.Errorf("table %s.%s: TABLE_MAP optional metadata field %d overruns the event", e.Schema, e.Table, typ)
		}
		v := meta[1+n : 1+n+int(l)]
		meta = meta[1+n+int(l):]
		switch typ {
		case replication.TABLE_MAP_OPT_META_SIGNEDNESS:
			full.SignednessBitmap = v
		case replication.TABLE_MAP_OPT_META_DEFAULT_CHARSET:
			full.DefaultCharset, err = defaultAndPairs(v)
		case replication.TABLE_MAP_OPT_META_COLUMN_CHARSET:
			full.ColumnCharset, err = lenencInts(v)
		case replication.TABLE_MAP_OPT_META_COLUMN_NAME:
			full.ColumnName, _, err = lenencStrings(v, -1)
			if err == nil && len(full.ColumnName) != int(e.ColumnCount) {
				err = fmt.Errorf("%d column names for %d columns", len(full.ColumnName), e.ColumnCount)
			}
		case replication.TABLE_MAP_OPT_META_SET_STR_VALUE:
			full.SetStrValue, err = labelLists(v)
		case replication.TABLE_MAP_OPT_META_ENUM_STR_VALUE:
			full.EnumStrValue, err = labelLists(v)
		case replication.TABLE_MAP_OPT_META_GEOMETRY_TYPE:
			full.GeometryType, err = lenencInts(v)
		case replication.TABLE_MAP_OPT_META_SIMPLE_PRIMARY_KEY:
			full.PrimaryKey, err = lenencInts(v)
			full.PrimaryKeyPrefix = make([]uint64, len(full.PrimaryKey))
		case replication.TABLE_MAP_OPT_META_PRIMARY_KEY_WITH_PREFIX:
			var pairs []uint64
			if pairs, err = lenencInts(v); err == nil && len(pairs)%2 != 0 {
				err = errors.New("odd primary key with prefix")
			}
			for i := 0; i+1 < len(pairs); i += 2 {
				full.PrimaryKey = append(full.PrimaryKey, pairs[i])
				full.PrimaryKeyPrefix = append(full.PrimaryKeyPrefix, pairs[i+1])
			}
		case replication.TABLE_MAP_OPT_META_ENUM_AND_SET_DEFAULT_CHARSET:
			full.EnumSetDefaultCharset, err = defaultAndPairs(v)
		case replication.TABLE_MAP_OPT_META_ENUM_AND_SET_COLUMN_CHARSET:
			full.EnumSetColumnCharset, err = lenencInts(v)
		case replication.TABLE_MAP_OPT_META_COLUMN_VISIBILITY:
			full.VisibilityBitmap = v
		}
		if err != nil {
			return nil, fmt.Errorf("table %s.%s: TABLE_MAP optional metadata field %d: %w", e.Schema, e.Table, typ, err)
		}
	}
	return &full, nil
}

var errShortMeta = errors.New("truncated")

// lenenc reads a length-encoded integer and returns it and its size.
func lenenc(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errShortMeta
	}
	n := 1
	switch b[0] {
	case 0xfc:
		n = 3
	case 0xfd:
		n = 4
	case 0xfe:
		n = 9
	case 0xfb, 0xff:
		return 0, 0, fmt.Errorf("length byte %#x", b[0])
	}
	if len(b) < n {
		return 0, 0, errShortMeta
	}
	if n == 1 {
		return uint64(b[0]), 1, nil
	}
	return littleEndian(b[1:], n-1), n, nil
}

// lenencInts reads a sequence of length-encoded integers.
func lenencInts(b []byte) ([]uint64, error) {
	var out []uint64
	for len(b) > 0 {
		v, n, err := lenenc(b)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		b = b[n:]
	}
	return out, nil
}

// defaultAndPairs reads a default collation followed by (column, collation)
// pairs.
func defaultAndPairs(b []byte) ([]uint64, error) {
	v, err := lenencInts(b)
	if err == nil && len(v)%2 != 1 {
		err = fmt.Errorf("%d values, want a default and pairs", len(v))
	}
	return v, err
}

// lenencStrings reads count length-encoded strings (all of b when count is
// negative) and returns them and the bytes read.
func lenencStrings(b []byte, count int) ([][]byte, int, error) {
	out := [][]byte{}
	read := 0
	for count < 0 && read < len(b) || len(out) < count {
		l, n, err := lenenc(b[read:])
		if err != nil || uint64(len(b)-read-n) < l {
			return nil, 0, errShortMeta
		}
		end := read + n + int(l)
		out = append(out, b[read+n:end:end])
		read = end
	}
	return out, read, nil
}

// labelLists reads the ENUM or SET labels of each such column: a count, then
// as many strings.
func labelLists(b []byte) ([][][]byte, error) {
	var out [][][]byte
	for len(b) > 0 {
		count, n, err := lenenc(b)
		if err != nil || count > uint64(len(b)) {
			return nil, errShortMeta
		}
		labels, read, err := lenencStrings(b[n:], int(count))
		if err != nil {
			return nil, err
		}
		out = append(out, labels)
		b = b[n+read:]
	}
	return out, nil
}
