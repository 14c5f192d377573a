package bqfake

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// binding maps the fields of a writer's proto message to table columns.
type binding struct {
	fields     []fieldBinding
	changeType protoreflect.FieldDescriptor // _CHANGE_TYPE, nil if absent
	changeSeq  protoreflect.FieldDescriptor // _CHANGE_SEQUENCE_NUMBER, nil if absent

	fds     []protoreflect.FieldDescriptor // the wire slots (see slots)
	index   fieldIndex                     // field number → slot
	scratch []wireField                    // parse's result, reused
}

type fieldBinding struct {
	fd     protoreflect.FieldDescriptor
	col    *bq.TableFieldSchema
	typ    string   // normalized column type
	nested *binding // for RECORD columns
}

// Kinds each column type accepts ("Supported protocol buffer and Arrow
// data types"). NUMERIC and BIGNUMERIC take no float or double here: a
// decimal must not pass through binary floating point.
var (
	signedKinds   = []protoreflect.Kind{protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind}
	unsignedKinds = []protoreflect.Kind{protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind}
	intKinds      = append(append([]protoreflect.Kind{}, signedKinds...), unsignedKinds...)

	allowedKinds = map[string][]protoreflect.Kind{
		"INT64":      append([]protoreflect.Kind{protoreflect.EnumKind}, intKinds...),
		"FLOAT64":    {protoreflect.DoubleKind, protoreflect.FloatKind},
		"BOOL":       append([]protoreflect.Kind{protoreflect.BoolKind}, intKinds...),
		"STRING":     {protoreflect.StringKind, protoreflect.EnumKind},
		"BYTES":      {protoreflect.BytesKind, protoreflect.StringKind},
		"NUMERIC":    append([]protoreflect.Kind{protoreflect.StringKind, protoreflect.BytesKind}, intKinds...),
		"BIGNUMERIC": append([]protoreflect.Kind{protoreflect.StringKind, protoreflect.BytesKind}, intKinds...),
		"DATE":       {protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.StringKind},
		"DATETIME":   {protoreflect.StringKind, protoreflect.Int64Kind},
		"TIME":       {protoreflect.StringKind, protoreflect.Int64Kind},
		"TIMESTAMP":  {protoreflect.Int64Kind, protoreflect.StringKind},
		"JSON":       {protoreflect.StringKind},
		"GEOGRAPHY":  {protoreflect.StringKind},
	}
)

// bindTable checks a writer schema against a table and binds it. The
// errors are those BigQuery gives for a schema mismatch.
func bindTable(md protoreflect.MessageDescriptor, t *table) (*binding, error) {
	b, err := bind(md, t.fields(), "", true)
	if err != nil {
		return nil, err
	}
	if (b.changeType != nil || b.changeSeq != nil) && len(t.primaryKey()) == 0 {
		// "Change data capture": CDC needs a primary key on the table.
		return nil, fmt.Errorf("%s and %s are only allowed on a table with a primary key; %s has none", colChangeType, colChangeSeq, t.meta.Id)
	}
	if b.changeType != nil && len(t.fields()) > maxCDCColumns {
		return nil, fmt.Errorf("CDC writes are not supported on a table with more than %d top-level columns; %s has %d", maxCDCColumns, t.meta.Id, len(t.fields()))
	}
	return b, nil
}

func bind(md protoreflect.MessageDescriptor, cols []*bq.TableFieldSchema, path string, top bool) (*binding, error) {
	b := &binding{}
	used := make(map[string]bool)
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		name := string(fd.Name())
		if top && (strings.EqualFold(name, colChangeType) || strings.EqualFold(name, colChangeSeq)) {
			if fd.Kind() != protoreflect.StringKind || fd.IsList() {
				return nil, fmt.Errorf("pseudo-column %s must be a singular string field", name)
			}
			if strings.EqualFold(name, colChangeType) {
				b.changeType = fd
			} else {
				b.changeSeq = fd
			}
			continue
		}
		col := findField(cols, name)
		if col == nil {
			return nil, fmt.Errorf("Input schema has more fields than BigQuery schema, extra fields: '%s%s'", path, name)
		}
		full := path + col.Name
		if used[col.Name] {
			return nil, fmt.Errorf("two proto fields map to column %s", full)
		}
		used[col.Name] = true
		fb, err := bindField(fd, col, full)
		if err != nil {
			return nil, err
		}
		b.fields = append(b.fields, fb)
	}
	for _, c := range cols {
		if mode(c) == "REQUIRED" && !used[c.Name] {
			return nil, fmt.Errorf("the proto schema misses required column %s%s", path, c.Name)
		}
	}
	b.indexFields()
	return b, nil
}

func bindField(fd protoreflect.FieldDescriptor, col *bq.TableFieldSchema, full string) (fieldBinding, error) {
	fb := fieldBinding{fd: fd, col: col, typ: normType(col.Type)}
	if fd.IsMap() {
		return fb, fmt.Errorf("proto field for column %s is a map, which BigQuery does not accept", full)
	}
	if fd.IsList() != (mode(col) == "REPEATED") {
		return fb, fmt.Errorf("proto field for column %s: repeated=%v but the column mode is %s", full, fd.IsList(), mode(col))
	}
	isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
	if fb.typ == "STRUCT" {
		if !isMsg {
			return fb, fmt.Errorf("proto field for RECORD column %s has type %v, want a message", full, fd.Kind())
		}
		nb, err := bind(fd.Message(), col.Fields, full+".", false)
		if err != nil {
			return fb, err
		}
		fb.nested = nb
		return fb, nil
	}
	if isMsg {
		// BigQuery does not unwrap well-known wrapper types: a
		// google.protobuf.Int64Value is a RECORD with a "value" column.
		return fb, fmt.Errorf("proto field for %s column %s is message %s", fb.typ, full, fd.Message().FullName())
	}
	for _, k := range allowedKinds[fb.typ] {
		if k == fd.Kind() {
			return fb, nil
		}
	}
	return fb, fmt.Errorf("proto field for %s column %s has incompatible type %v", fb.typ, full, fd.Kind())
}

// decodeRow reads one serialized row with the writer's schema (see
// wire.go) and turns it into a change.
func (b *binding) decodeRow(raw []byte) (change, error) {
	ws, err := b.parse(raw)
	if err != nil {
		return change{}, fmt.Errorf("cannot parse the row with the writer schema: %v", err)
	}
	vals, err := b.decode(ws, "")
	if err != nil {
		return change{}, err
	}
	c := change{values: vals}
	n := len(b.fields)
	if ct, ok := stringField(&ws[n], b.changeType); ok {
		// "Change data capture": _CHANGE_TYPE accepts only UPSERT and
		// DELETE. A NULL one is taken as UPSERT.
		switch ct {
		case "UPSERT":
		case "DELETE":
			c.del = true
		default:
			return change{}, fmt.Errorf("%s must be UPSERT or DELETE, got %q", colChangeType, ct)
		}
	}
	if sq, ok := stringField(&ws[n+1], b.changeSeq); ok {
		if c.seq, err = parseSeq(sq); err != nil {
			return change{}, err
		}
	}
	return c, nil
}

// stringField reads a pseudo-column: its value if set or defaulted.
func stringField(w *wireField, fd protoreflect.FieldDescriptor) (string, bool) {
	switch {
	case fd == nil:
		return "", false
	case w.set:
		return w.val.String(), true
	case fd.HasDefault():
		return fd.Default().String(), true
	}
	return "", false
}

// decodeMessage reads a nested message's encoding.
func (b *binding) decodeMessage(raw []byte, path string) (map[string]any, error) {
	ws, err := b.parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the row with the writer schema: %v", err)
	}
	return b.decode(ws, path)
}

func (b *binding) decode(ws []wireField, path string) (map[string]any, error) {
	out := make(map[string]any, len(b.fields))
	for i := range b.fields {
		f := &b.fields[i]
		v, err := f.value(&ws[i], path+f.col.Name)
		if err != nil {
			return nil, err
		}
		out[f.col.Name] = v
	}
	return out, nil
}

// value reads one column. An unset singular field is NULL unless its
// descriptor has a default (how adapt.NormalizeDescriptor expresses proto3
// implicit presence), which is then the value.
func (f *fieldBinding) value(w *wireField, name string) (any, error) {
	if f.fd.IsList() {
		if f.nested != nil {
			out := make([]any, len(w.msgs))
			for i, raw := range w.msgs {
				v, err := f.nested.decodeMessage(raw, name+".")
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			return out, nil
		}
		out := make([]any, len(w.list))
		for i, pv := range w.list {
			v, err := f.convert(pv, name)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	var pv protoreflect.Value
	switch {
	case w.set && f.nested != nil:
		return f.nested.decodeMessage(w.msgs[0], name+".")
	case w.set:
		pv = w.val
	case f.fd.HasDefault():
		pv = f.fd.Default()
	case mode(f.col) == "REQUIRED":
		return nil, fmt.Errorf("required field %s is missing", name)
	default:
		return nil, nil
	}
	return f.convert(pv, name)
}

func (f *fieldBinding) convert(pv protoreflect.Value, name string) (any, error) {
	v, err := convertValue(f.typ, f.fd.Kind(), pv, f.fd)
	if err != nil {
		return nil, fmt.Errorf("field %s: %v", name, err)
	}
	if n := f.col.MaxLength; n > 0 {
		switch x := v.(type) {
		case string:
			if int64(utf8.RuneCountInString(x)) > n {
				return nil, fmt.Errorf("field %s: value is longer than the column's max length %d", name, n)
			}
		case []byte:
			if int64(len(x)) > n {
				return nil, fmt.Errorf("field %s: value is longer than the column's max length %d", name, n)
			}
		}
	}
	return v, nil
}

// convertValue checks one proto value against a column type and returns
// its Go value (see Server.Rows).
func convertValue(typ string, kind protoreflect.Kind, pv protoreflect.Value, fd protoreflect.FieldDescriptor) (any, error) {
	switch typ {
	case "INT64":
		return intValue(kind, pv)
	case "FLOAT64":
		return pv.Float(), nil
	case "BOOL":
		if kind == protoreflect.BoolKind {
			return pv.Bool(), nil
		}
		n, err := intValue(kind, pv)
		return n != 0, err
	case "STRING":
		if kind == protoreflect.EnumKind {
			ev := fd.Enum().Values().ByNumber(pv.Enum())
			if ev == nil {
				return nil, fmt.Errorf("unknown enum number %d", pv.Enum())
			}
			return string(ev.Name()), nil
		}
		return utf8String(pv.String())
	case "BYTES":
		if kind == protoreflect.StringKind {
			return []byte(pv.String()), nil
		}
		return append([]byte{}, pv.Bytes()...), nil
	case "NUMERIC", "BIGNUMERIC":
		return decimalValue(typ, kind, pv)
	case "DATE":
		if kind == protoreflect.StringKind {
			d, err := civil.ParseDate(pv.String())
			if err != nil {
				return nil, fmt.Errorf("invalid DATE %q", pv.String())
			}
			return checkDate(d)
		}
		return dateFromDays(pv.Int())
	case "DATETIME":
		if kind == protoreflect.Int64Kind {
			return packedDateTime(pv.Int())
		}
		return parseDateTime(pv.String())
	case "TIME":
		if kind == protoreflect.Int64Kind {
			return packedTime(pv.Int())
		}
		return parseTime(pv.String())
	case "TIMESTAMP":
		if kind == protoreflect.StringKind {
			return parseTimestamp(pv.String())
		}
		return timestampMicros(pv.Int())
	case "JSON":
		s, err := utf8String(pv.String())
		if err != nil {
			return nil, err
		}
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("invalid JSON text %q", truncate(s))
		}
		return s, nil
	case "GEOGRAPHY":
		return geography(pv.String())
	}
	return nil, fmt.Errorf("unsupported column type %s", typ)
}

func intValue(kind protoreflect.Kind, pv protoreflect.Value) (int64, error) {
	switch kind {
	case protoreflect.EnumKind:
		return int64(pv.Enum()), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if pv.Uint() > math.MaxInt64 {
			return 0, fmt.Errorf("value %d overflows INT64", pv.Uint())
		}
		return int64(pv.Uint()), nil
	}
	return pv.Int(), nil
}

func utf8String(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("invalid UTF-8 in STRING value")
	}
	return s, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// decimalScale is the number of fractional digits each decimal type holds
// ("Data types": NUMERIC is (38, 9), BIGNUMERIC (76.76, 38)); it is also
// the scale of the packed byte encoding.
var decimalScale = map[string]int64{"NUMERIC": 9, "BIGNUMERIC": 38}

// decimalIntDigits is how many integer digits every value of each decimal
// type may have: NUMERIC holds 29, BIGNUMERIC 38 (and part of a 39th).
var decimalIntDigits = map[string]int{"NUMERIC": 29, "BIGNUMERIC": 38}

// plainDecimal reports whether s is [-+]digits[.digits] and counts its
// integer digits (leading zeros left out) and fractional digits.
func plainDecimal(s string) (intDigits, fracDigits int, ok bool) {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || dot && frac == "" || !allDigits(whole) || !allDigits(frac) {
		return 0, 0, false
	}
	return len(strings.TrimLeft(whole, "0")), len(frac), true
}

// pow10s are the powers of ten an int64 holds.
var pow10s = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// smallDecimal returns plain decimal text (see plainDecimal) without its
// point as an int64, when it has at most 18 digits.
func smallDecimal(s string) (int64, bool) {
	neg := s[0] == '-'
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if digits := len(s) - strings.Count(s, "."); digits > 18 {
		return 0, false
	}
	var m int64
	for i := 0; i < len(s); i++ {
		if s[i] != '.' {
			m = m*10 + int64(s[i]-'0')
		}
	}
	if neg {
		m = -m
	}
	return m, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var decimalText = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

var (
	numericMax    = new(big.Rat).SetFrac(new(big.Int).Sub(pow10(38), big.NewInt(1)), pow10(9)) // 29 integer digits, 9 fractional
	bigNumericMax = new(big.Rat).SetFrac(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1)), pow10(38))
	bigNumericMin = new(big.Rat).SetFrac(new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 255)), pow10(38))
)

func pow10(n int64) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(n), nil) }

// decimalValue reads a NUMERIC or BIGNUMERIC value: decimal text, the
// packed encoding (the value times 10^scale as a little-endian two's
// complement integer), or an integer.
func decimalValue(typ string, kind protoreflect.Kind, pv protoreflect.Value) (*big.Rat, error) {
	scale := decimalScale[typ]
	r := new(big.Rat)
	switch kind {
	case protoreflect.StringKind:
		s := pv.String()
		if intDigits, fracDigits, ok := plainDecimal(s); ok && int64(fracDigits) <= scale && intDigits <= decimalIntDigits[typ] {
			// Plain text within the type's digits: in range, no
			// rounding; skip the checks below.
			if m, ok := smallDecimal(s); ok {
				return r.SetFrac64(m, pow10s[fracDigits]), nil
			}
			if _, ok := r.SetString(s); ok {
				return r, nil
			}
		}
		if _, ok := r.SetString(s); !ok || !decimalText.MatchString(s) {
			return nil, fmt.Errorf("invalid %s value %q", typ, truncate(s))
		}
	case protoreflect.BytesKind:
		b := pv.Bytes()
		be := make([]byte, len(b))
		for i, c := range b {
			be[len(b)-1-i] = c
		}
		n := new(big.Int).SetBytes(be)
		if len(b) > 0 && b[len(b)-1]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		r.SetFrac(n, pow10(scale))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		r.SetInt(new(big.Int).SetUint64(pv.Uint()))
	default:
		r.SetInt64(pv.Int())
	}
	if !new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(scale))).IsInt() {
		return nil, fmt.Errorf("%s value %s has more than %d fractional digits", typ, r.FloatString(int(scale)+1), scale)
	}
	lo, hi := new(big.Rat).Neg(numericMax), numericMax
	if typ == "BIGNUMERIC" {
		lo, hi = bigNumericMin, bigNumericMax
	}
	if r.Cmp(lo) < 0 || r.Cmp(hi) > 0 {
		return nil, fmt.Errorf("%s value %s is out of range", typ, r.FloatString(int(scale)))
	}
	return r, nil
}

var (
	minDate = civil.Date{Year: 1, Month: 1, Day: 1}
	maxDate = civil.Date{Year: 9999, Month: 12, Day: 31}
	epoch   = civil.Date{Year: 1970, Month: 1, Day: 1}
)

// checkDate enforces the DATE range 0001-01-01 to 9999-12-31.
func checkDate(d civil.Date) (civil.Date, error) {
	if !d.IsValid() || d.Before(minDate) || d.After(maxDate) {
		return civil.Date{}, fmt.Errorf("DATE %s is out of range 0001-01-01..9999-12-31", d)
	}
	return d, nil
}

func dateFromDays(days int64) (civil.Date, error) {
	if days < int64(minDate.DaysSince(epoch)) || days > int64(maxDate.DaysSince(epoch)) {
		return civil.Date{}, fmt.Errorf("DATE of %d days since 1970-01-01 is out of range", days)
	}
	return epoch.AddDays(int(days)), nil
}

var (
	dateTimeText = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$`)
	timeText     = regexp.MustCompile(`^\d{2}:\d{2}:\d{2}(\.\d{1,6})?$`)
	timestampTxt = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?) ?(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$`)
)

// parseDateTime reads "YYYY-MM-DD[ T]HH:MM:SS[.ffffff]".
func parseDateTime(s string) (civil.DateTime, error) {
	if !dateTimeText.MatchString(s) {
		return civil.DateTime{}, fmt.Errorf("invalid DATETIME %q", truncate(s))
	}
	dt, err := civil.ParseDateTime(strings.Replace(s, " ", "T", 1))
	if err != nil {
		return civil.DateTime{}, fmt.Errorf("invalid DATETIME %q", s)
	}
	if _, err := checkDate(dt.Date); err != nil {
		return civil.DateTime{}, err
	}
	return dt, nil
}

// parseTime reads "HH:MM:SS[.ffffff]".
func parseTime(s string) (civil.Time, error) {
	if !timeText.MatchString(s) {
		return civil.Time{}, fmt.Errorf("invalid TIME %q", truncate(s))
	}
	t, err := civil.ParseTime(s)
	if err != nil || !t.IsValid() {
		return civil.Time{}, fmt.Errorf("invalid TIME %q", s)
	}
	return t, nil
}

// The packed civil-time encoding of the Storage Write API: TIME is
// hour<<32 | minute<<26 | second<<20 | micros; DATETIME adds
// year<<46 | month<<42 | day<<37 on top.
func packedTime(v int64) (civil.Time, error) {
	if v < 0 || v>>37 != 0 {
		return civil.Time{}, fmt.Errorf("invalid packed TIME %d", v)
	}
	t := unpackTime(v)
	if !t.IsValid() {
		return civil.Time{}, fmt.Errorf("invalid packed TIME %d", v)
	}
	return t, nil
}

func unpackTime(v int64) civil.Time {
	return civil.Time{
		Hour:       int(v>>32) & 0x1f,
		Minute:     int(v>>26) & 0x3f,
		Second:     int(v>>20) & 0x3f,
		Nanosecond: int(v&0xfffff) * 1000,
	}
}

func packedDateTime(v int64) (civil.DateTime, error) {
	if v < 0 || v>>60 != 0 {
		return civil.DateTime{}, fmt.Errorf("invalid packed DATETIME %d", v)
	}
	dt := civil.DateTime{
		Date: civil.Date{Year: int(v>>46) & 0x3fff, Month: time.Month(v>>42) & 0xf, Day: int(v>>37) & 0x1f},
		Time: unpackTime(v & (1<<37 - 1)),
	}
	if !dt.IsValid() {
		return civil.DateTime{}, fmt.Errorf("invalid packed DATETIME %d", v)
	}
	if _, err := checkDate(dt.Date); err != nil {
		return civil.DateTime{}, err
	}
	return dt, nil
}

// TIMESTAMP range, 0001-01-01 00:00:00 to 9999-12-31 23:59:59.999999 UTC,
// in microseconds since the Unix epoch.
const (
	minTimestampMicros = -62135596800000000
	maxTimestampMicros = 253402300799999999
)

func timestampMicros(us int64) (time.Time, error) {
	if us < minTimestampMicros || us > maxTimestampMicros {
		return time.Time{}, fmt.Errorf("TIMESTAMP %d µs since the epoch is out of range", us)
	}
	return time.UnixMicro(us).UTC(), nil
}

// parseTimestamp reads "YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|UTC|±HH[:MM]]";
// without a zone the time is UTC.
func parseTimestamp(s string) (time.Time, error) {
	m := timestampTxt.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("invalid TIMESTAMP %q", truncate(s))
	}
	zone := m[3]
	switch {
	case zone == "" || zone == "Z" || zone == "UTC":
		zone = "Z"
	case len(zone) == 3:
		zone += ":00"
	case len(zone) == 5:
		zone = zone[:3] + ":" + zone[3:]
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999Z07:00", m[1]+"T"+m[2]+zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid TIMESTAMP %q", s)
	}
	return timestampMicros(t.UnixMicro())
}

var wktKinds = []string{"POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"}

// geography accepts WKT (by its leading keyword and balanced parentheses)
// or GeoJSON (valid JSON object); it does not check the geometry itself.
func geography(s string) (string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") {
		if json.Valid([]byte(t)) {
			return s, nil
		}
		return "", fmt.Errorf("invalid GeoJSON %q", truncate(s))
	}
	up := strings.ToUpper(t)
	for _, k := range wktKinds {
		if strings.HasPrefix(up, k) && balanced(up) {
			return s, nil
		}
	}
	return "", fmt.Errorf("invalid GEOGRAPHY %q: want WKT or GeoJSON", truncate(s))
}

func balanced(s string) bool {
	depth := 0
	for _, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}
