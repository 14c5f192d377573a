package binlog

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// errUnrepresentable marks a value the canonical form cannot hold: a zero
// date or a date with a zero month or day, which MySQL accepts under some
// sql_modes but no calendar (Avro, BigQuery) has. The documented rule
// (README, "Type mapping") is to emit NULL and count it in
// strait_producer_unrepresentable_values_total.
var errUnrepresentable = errors.New("zero or partial date has no calendar value")

// converter turns go-mysql's decoded values into canonical cdc.Values.
type converter struct {
	decoders []textDecoder // per column; nil for non-text columns
}

func newConverter(info *tableInfo) (*converter, error) {
	cv := &converter{decoders: make([]textDecoder, len(info.cols))}
	for i, ci := range info.cols {
		if ci.kind.width() > 0 {
			cv.decoders[i] = kindDecoder(ci.kind)
			continue
		}
		if t := info.table.Columns[i].Type; (t == cdc.TypeString || ci.kind == kindJSON) && ci.charset != "" {
			d, err := decoderFor(ci.charset)
			if err != nil {
				return nil, err
			}
			cv.decoders[i] = d
		}
	}
	return cv, nil
}

// value converts column i's go-mysql value v.
func (cv *converter) value(info *tableInfo, i int, v any) (cdc.Value, error) {
	if v == nil {
		return cdc.Null, nil
	}
	col := &info.table.Columns[i]
	switch col.Type {
	case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeUint64, cdc.TypeBool, cdc.TypeBits:
		n, ok := asInt(v)
		if !ok {
			return cdc.Value{}, fmt.Errorf("want an integer, got %T", v)
		}
		if w := intWidth(info.cols[i].binType); info.cols[i].unsigned && w < 8 {
			// Without a signedness bitmap in the TABLE_MAP (MySQL 5.7,
			// MariaDB before 10.5) go-mysql decodes every integer as
			// signed: the column's own signedness decides, as in decode.go.
			n &= 1<<(8*w) - 1
		}
		return cdc.Int(n), nil
	case cdc.TypeFloat32, cdc.TypeFloat64:
		switch f := v.(type) {
		case float32:
			return cdc.Float(float64(f)), nil
		case float64:
			return cdc.Float(f), nil
		}
		return cdc.Value{}, fmt.Errorf("want a float, got %T", v)
	case cdc.TypeDecimal:
		s, ok := v.(string)
		if !ok {
			return cdc.Value{}, fmt.Errorf("want decimal digits, got %T", v)
		}
		return cdc.Str(s), nil
	case cdc.TypeString:
		switch info.cols[i].binType {
		case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
			n, ok := asInt(v)
			if !ok {
				return cdc.Value{}, fmt.Errorf("want an ENUM index or SET bitmap, got %T", v)
			}
			if info.cols[i].binType == mysql.MYSQL_TYPE_ENUM {
				return enumLabel(col, n)
			}
			return setLabels(col, n)
		}
		s, err := cv.decoders[i](asString(v))
		if err != nil {
			return cdc.Value{}, err
		}
		return cdc.Str(s), nil
	case cdc.TypeBytes:
		s := asString(v)
		if n := info.cols[i].fixedLen; len(s) < n {
			// BINARY(n) loses its trailing zero bytes in the binlog;
			// SELECT returns them, so do we.
			s += strings.Repeat("\x00", n-len(s))
		}
		return cdc.Str(s), nil
	case cdc.TypeJSON, cdc.TypeGeometry:
		if _, partial := v.(string); !partial && info.cols[i].binType == mysql.MYSQL_TYPE_JSON {
			if _, ok := v.([]byte); !ok {
				return cdc.Value{}, errors.New("partial JSON update (binlog_row_value_options=PARTIAL_JSON) is not supported: set binlog_row_value_options='' on the source")
			}
		}
		s := asString(v)
		if d := cv.decoders[i]; d != nil { // MariaDB's JSON: text in its character set
			var err error
			if s, err = d(s); err != nil {
				return cdc.Value{}, err
			}
		}
		if info.cols[i].binType == mysql.MYSQL_TYPE_JSON && s == "" {
			s = "null" // MySQL logs an empty document for JSON NULL inserted by a non-strict mode
		}
		return cdc.Str(s), nil
	case cdc.TypeDate:
		s, ok := v.(string)
		if !ok {
			return cdc.Value{}, fmt.Errorf("want a date string, got %T", v)
		}
		days, err := parseDate(s)
		if err != nil {
			return cdc.Value{}, err
		}
		return cdc.Int(days), nil
	case cdc.TypeTime:
		s, ok := v.(string)
		if !ok {
			return cdc.Value{}, fmt.Errorf("want a time string, got %T", v)
		}
		us, err := parseDuration(s)
		if err != nil {
			return cdc.Value{}, err
		}
		return cdc.Int(us), nil
	case cdc.TypeDateTime, cdc.TypeTimestamp:
		switch t := v.(type) {
		case time.Time:
			return cdc.Int(t.UnixMicro()), nil
		case string:
			// go-mysql renders DATETIMEs before 1970 and zero values as text.
			days, err := parseDate(t[:min(len(t), 10)])
			if err != nil {
				return cdc.Value{}, err
			}
			var clock int64
			if len(t) > 11 {
				if clock, err = parseDuration(t[11:]); err != nil {
					return cdc.Value{}, err
				}
			}
			return cdc.Int(days*86_400_000_000 + clock), nil
		}
		return cdc.Value{}, fmt.Errorf("want a time, got %T", v)
	}
	return cdc.Value{}, fmt.Errorf("no conversion for %s", col.Type)
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), true // the bits of an unsigned BIGINT; TypeUint64 reads them back unsigned
	}
	return 0, false
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return fmt.Sprint(v)
}

// enumLabel returns the label of ENUM index n.
func enumLabel(col *cdc.Column, n int64) (cdc.Value, error) {
	if n == 0 {
		return cdc.Str(""), nil // the "invalid value" index MySQL stores as the empty string
	}
	if n < 0 || int(n) > len(col.Values) {
		return cdc.Value{}, fmt.Errorf("ENUM index %d beyond the %d known labels", n, len(col.Values))
	}
	return cdc.Str(col.Values[n-1]), nil
}

// setLabels returns the comma-separated labels of SET bitmap n; a single
// label is returned without building a new string.
func setLabels(col *cdc.Column, n int64) (cdc.Value, error) {
	var b strings.Builder
	var one string
	count := 0
	for i := range 64 {
		if uint64(n)&(1<<uint(i)) == 0 {
			continue
		}
		if i >= len(col.Values) {
			return cdc.Value{}, fmt.Errorf("SET bit %d beyond the %d known labels", i, len(col.Values))
		}
		count++
		switch count {
		case 1:
			one = col.Values[i]
			continue
		case 2:
			b.WriteString(one)
		}
		b.WriteByte(',')
		b.WriteString(col.Values[i])
	}
	if count <= 1 {
		return cdc.Str(one), nil
	}
	return cdc.Str(b.String()), nil
}

// parseDate parses "YYYY-MM-DD" into days since 1970-01-01.
func parseDate(s string) (int64, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return 0, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	if y == 0 || m == 0 || d == 0 {
		return 0, errUnrepresentable
	}
	return daysFromCivil(y, m, d), nil
}

// parseDuration parses "[-]HHH:MM:SS[.ffffff]" into microseconds.
func parseDuration(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	h, rest, ok := strings.Cut(s, ":")
	mm, rest, ok2 := strings.Cut(rest, ":")
	sec, frac, _ := strings.Cut(rest, ".")
	hv, ok3 := digits(h)
	mv, ok4 := digits(mm)
	sv, ok5 := digits(sec)
	if !ok || !ok2 || !ok3 || !ok4 || !ok5 || len(frac) > 6 {
		return 0, fmt.Errorf("time %q: want [-]HH:MM:SS[.ffffff]", s)
	}
	fv, ok := digits(frac + "000000"[len(frac):])
	if !ok {
		return 0, fmt.Errorf("time %q: bad fraction", s)
	}
	us := ((hv*60+mv)*60+sv)*1_000_000 + fv
	if neg {
		us = -us
	}
	return us, nil
}

func digits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm), without time.Time's allocation-free but
// zone-aware machinery.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// isFinite reports whether f is a real number; MySQL never stores NaN or
// infinities, so this only guards against a corrupt event.
func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
