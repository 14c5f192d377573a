package binlog

// Row images decoded straight from the binlog into cdc.Values.
//
// go-mysql decodes every value of a rows event into an `any` (boxing
// integers, floats, times and decimal strings), builds a signedness map per
// row image and a few slices per event: about 17 allocations for a 10-column
// row, more than the rest of the producer's path together. So the reader
// installs decodeRowsLater as the syncer's RowsEventDecodeFunc: on go-mysql's
// parse goroutine it decodes only the event's header and leaves the row
// images as bytes; the reader, which knows each column's schema (signedness,
// character set, labels), decodes them with rawValue into the transaction's
// value slab. DECIMAL digits are cut from a shared arena (textArena); a
// BINARY(n) that needs its zero bytes back costs an allocation, and so does
// text in a character set other than UTF-8 (or latin1 beyond ASCII);
// nothing else allocates. Text and binary values share the event's bytes,
// as go-mysql's strings do. MariaDB's compressed rows events
// (log_bin_compress) are inflated by the reader.
//
// Every value is exactly what convert.go makes of go-mysql's value for the
// same bytes (TestRawDecodingMatchesGoMySQL reads the same events both ways,
// TestMySQL8Vectors go-mysql's own MySQL 8 test events), down to the zero
// and partial dates that become NULL. MySQL's binary JSON is rendered by
// json.go as MySQL prints it, which go-mysql does only when asked
// (RenderJSONAsMySQLText). Tables with a column of a type without a mapping
// and partial JSON updates are left to go-mysql whole: decodeRowsLater then
// decodes them as go-mysql always does (and the reader refuses them).

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// decodeRowsLater is the syncer's RowsEventDecodeFunc. It runs on go-mysql's
// parse goroutine, so it keeps no state and reads only the event and the
// TABLE_MAP go-mysql attached to it.
//
// A deferred event has e.Rows nil (go-mysql's own decoding always sets it)
// and its row images are the bytes after its last column bitmap: that
// bitmap's capacity is cut at the end of the images, so deferredImages finds
// them without an allocation per event.
func decodeRowsLater(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	last := &e.ColumnBitmap1
	if e.ColumnBitmap2 != nil {
		last = &e.ColumnBitmap2
	}
	start := pos - len(*last)
	if e.Type() == replication.EnumRowsEventTypeUnknown || // PARTIAL_UPDATE_ROWS_EVENT
		!rawDecodable(e.Table) || start < 0 ||
		len(*last) > 0 && &(*last)[0] != &data[start] { // not where the images start
		return e.DecodeData(pos, data)
	}
	*last = data[start:pos:len(data)]
	return nil
}

// deferredImages returns the row images decodeRowsLater left undecoded, or
// false when go-mysql decoded the event.
func deferredImages(e *replication.RowsEvent) ([]byte, bool) {
	if e.Rows != nil {
		return nil, false
	}
	last := e.ColumnBitmap1
	if e.ColumnBitmap2 != nil {
		last = e.ColumnBitmap2
	}
	return last[len(last):cap(last)], true
}

// compressedRows reports whether a rows event's images are zlib-compressed
// (MariaDB's log_bin_compress).
func compressedRows(t replication.EventType) bool {
	switch t {
	case replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return true
	}
	return false
}

// rawDecodable reports whether rawValue decodes every column of the table.
func rawDecodable(t *replication.TableMapEvent) bool {
	if t == nil || len(t.ColumnMeta) != len(t.ColumnType) {
		return false
	}
	for i, tp := range t.ColumnType {
		if rt, _ := realType(tp, t.ColumnMeta[i]); !rawType(rt) {
			return false
		}
	}
	return true
}

func rawType(rt byte) bool {
	switch rt {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_FLOAT,
		mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2,
		mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2,
		mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET, mysql.MYSQL_TYPE_VARCHAR,
		mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY,
		mysql.MYSQL_TYPE_JSON:
		return true
	}
	return false
}

// bitSet reports whether bit i of a little-endian bitmap is set.
func bitSet(bitmap []byte, i int) bool { return bitmap[i>>3]&(1<<(uint(i)&7)) != 0 }

// imageNulls returns the NULL bitmap at the start of a row image with the
// columns of present, and the image's values after it.
func imageNulls(present, image []byte, columns int) (nulls, values []byte, err error) {
	count := 0
	for i := range columns {
		if bitSet(present, i) {
			count++
		}
	}
	n := (count + 7) / 8
	if len(image) < n {
		return nil, nil, errors.New("row image ends inside its NULL bitmap")
	}
	return image[:n], image[n:], nil
}

func need(data []byte, n int) error {
	if len(data) < n {
		return fmt.Errorf("row image ends inside a value (%d of %d bytes)", len(data), n)
	}
	return nil
}

// littleEndian reads an n-byte little-endian unsigned integer.
func littleEndian(b []byte, n int) uint64 {
	var v uint64
	for i := range n {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

// bigEndian reads an n-byte big-endian unsigned integer.
func bigEndian(b []byte, n int) uint64 {
	var v uint64
	for i := range n {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// bytesString returns b as a string sharing its memory: the event's bytes are
// never written again (go-mysql's own strings share them too).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// rawImage decodes the row image at the start of images (decode.go), whose
// columns are those set in present (the others are NULL, as go-mysql has
// them), and returns the images after it.
func (s *stream) rawImage(tx *Tx, st *tableState, present, images []byte, h *replication.EventHeader) ([]cdc.Value, []byte, error) {
	info := st.info
	nulls, data, err := imageNulls(present, images, len(info.table.Columns))
	if err != nil {
		return nil, nil, fmt.Errorf("table %s at %s:%d: %w", info.table.ID(), s.file, h.LogPos, err)
	}
	row := tx.row(len(info.table.Columns))
	k := 0 // index among the present columns
	for i := range row {
		if !bitSet(present, i) {
			row[i] = cdc.Null
			continue
		}
		k++
		if bitSet(nulls, k-1) {
			row[i] = cdc.Null
			continue
		}
		val, n, err := st.conv.rawValue(info, i, data, &s.text)
		if row[i], err = s.checkValue(info, i, val, err, h); err != nil {
			return nil, nil, err
		}
		data = data[n:]
	}
	return row, data, nil
}

// checkValue applies the rule for an unrepresentable value (NULL, counted)
// and names the column of any other decoding error.
func (s *stream) checkValue(info *tableInfo, i int, val cdc.Value, err error, h *replication.EventHeader) (cdc.Value, error) {
	if errors.Is(err, errUnrepresentable) {
		s.metrics.countUnrepresentable(info.table, info.table.Columns[i].Name)
		return cdc.Null, nil
	}
	if err != nil {
		return cdc.Value{}, fmt.Errorf("decode %s column %s (%s) at %s:%d: %w", info.table.ID(), info.table.Columns[i].Name, info.table.Columns[i].Type, s.file, h.LogPos, err)
	}
	return val, nil
}

// textArena hands out short strings carved from shared chunks, so that one
// allocation serves many DECIMAL values and GTIDs. A chunk is only ever
// appended to, never reused: a string stays valid however long it is kept
// (keeping its chunk alive). Used by the reader's goroutine only.
type textArena struct{ chunk []byte }

func (a *textArena) string(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case len(b) > 256:
		return string(b)
	case cap(a.chunk)-len(a.chunk) < len(b):
		a.chunk = make([]byte, 0, 4096)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return unsafe.String(&a.chunk[start], len(b))
}

// rawValue decodes column i's value at the start of data into its canonical
// form and returns the bytes it took, also along with errUnrepresentable.
// DECIMAL digits are cut from arena.
func (cv *converter) rawValue(info *tableInfo, i int, data []byte, arena *textArena) (cdc.Value, int, error) {
	ci := &info.cols[i]
	col := &info.table.Columns[i]
	switch ci.binType {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		n := intWidth(ci.binType)
		if err := need(data, n); err != nil {
			return cdc.Value{}, 0, err
		}
		return cdc.Int(withSign(littleEndian(data, n), n, ci.unsigned)), n, nil
	case mysql.MYSQL_TYPE_YEAR:
		if err := need(data, 1); err != nil {
			return cdc.Value{}, 0, err
		}
		y := int64(data[0])
		if y != 0 {
			y += 1900
		}
		return cdc.Int(y), 1, nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		s, n, err := decimalText(data, int(ci.meta>>8), int(ci.meta&0xFF), arena)
		return cdc.Str(s), n, err
	case mysql.MYSQL_TYPE_FLOAT:
		if err := need(data, 4); err != nil {
			return cdc.Value{}, 0, err
		}
		return cdc.Float(float64(math.Float32frombits(uint32(littleEndian(data, 4))))), 4, nil
	case mysql.MYSQL_TYPE_DOUBLE:
		if err := need(data, 8); err != nil {
			return cdc.Value{}, 0, err
		}
		return cdc.Float(math.Float64frombits(littleEndian(data, 8))), 8, nil
	case mysql.MYSQL_TYPE_BIT:
		nbits := int(ci.meta>>8)*8 + int(ci.meta&0xFF)
		n := (nbits + 7) / 8
		if n < 1 || n > 8 || nbits <= 1 && n != 1 {
			return cdc.Value{}, 0, fmt.Errorf("invalid bit length %d", n)
		}
		if err := need(data, n); err != nil {
			return cdc.Value{}, 0, err
		}
		return cdc.Int(int64(bigEndian(data, n))), n, nil
	case mysql.MYSQL_TYPE_ENUM:
		n := int(ci.meta & 0xFF)
		if n != 1 && n != 2 {
			return cdc.Value{}, 0, fmt.Errorf("unknown ENUM packlen=%d", n)
		}
		if err := need(data, n); err != nil {
			return cdc.Value{}, 0, err
		}
		v, err := enumLabel(col, int64(littleEndian(data, n)))
		return v, n, err
	case mysql.MYSQL_TYPE_SET:
		n := int(ci.meta & 0xFF)
		if n < 1 || n > 8 {
			return cdc.Value{}, 0, fmt.Errorf("invalid SET length %d", n)
		}
		if err := need(data, n); err != nil {
			return cdc.Value{}, 0, err
		}
		v, err := setLabels(col, int64(littleEndian(data, n)))
		return v, n, err
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING:
		prefix := 1
		if ci.length >= 256 {
			prefix = 2
		}
		if err := need(data, prefix); err != nil {
			return cdc.Value{}, 0, err
		}
		return cv.text(info, i, data, prefix)
	case mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY:
		prefix := int(ci.meta)
		if prefix < 1 || prefix > 4 {
			return cdc.Value{}, 0, fmt.Errorf("invalid blob packlen = %d", prefix)
		}
		if err := need(data, prefix); err != nil {
			return cdc.Value{}, 0, err
		}
		return cv.text(info, i, data, prefix)
	case mysql.MYSQL_TYPE_JSON:
		prefix := int(ci.meta)
		if prefix < 1 || prefix > 4 {
			return cdc.Value{}, 0, fmt.Errorf("invalid JSON packlen = %d", prefix)
		}
		if err := need(data, prefix); err != nil {
			return cdc.Value{}, 0, err
		}
		n := prefix + int(littleEndian(data, prefix))
		if err := need(data, n); err != nil {
			return cdc.Value{}, 0, err
		}
		if n == prefix {
			// MySQL logs an empty document for a JSON NULL inserted
			// into a NOT NULL column by a non-strict mode: JSON's null,
			// as in convert.go.
			return cdc.Str("null"), n, nil
		}
		s, err := jsonText(data[prefix:n])
		return cdc.Str(s), n, err
	}
	us, n, err := temporal(ci, data)
	if err != nil {
		return cdc.Value{}, n, err
	}
	return cdc.Int(us), n, nil
}

// intWidth is the byte width of an integer type (8 for BIGINT and any
// other type).
func intWidth(tp byte) int {
	switch tp {
	case mysql.MYSQL_TYPE_TINY:
		return 1
	case mysql.MYSQL_TYPE_SHORT:
		return 2
	case mysql.MYSQL_TYPE_INT24:
		return 3
	case mysql.MYSQL_TYPE_LONG:
		return 4
	}
	return 8
}

// withSign reads the n-byte integer v as signed unless unsigned; an unsigned
// BIGINT keeps its 64 bits (TypeUint64 reads them back unsigned).
func withSign(v uint64, n int, unsigned bool) int64 {
	if unsigned || n == 8 {
		return int64(v)
	}
	shift := 64 - 8*uint(n)
	return int64(v<<shift) >> shift
}

// text decodes a length-prefixed string or blob: text by the column's
// character set, binary as is (BINARY(n) padded back to n bytes), spatial
// values as their bytes.
func (cv *converter) text(info *tableInfo, i int, data []byte, prefix int) (cdc.Value, int, error) {
	l := int(littleEndian(data, prefix))
	n := prefix + l
	if err := need(data, n); err != nil {
		return cdc.Value{}, 0, err
	}
	s := bytesString(data[prefix:n])
	switch info.table.Columns[i].Type {
	case cdc.TypeString, cdc.TypeJSON: // MariaDB's JSON is text (kinds.go)
		if d := cv.decoders[i]; d != nil {
			s, err := d(s)
			return cdc.Str(s), n, err
		}
	case cdc.TypeBytes:
		if w := info.cols[i].fixedLen; len(s) < w {
			s += strings.Repeat("\x00", w-len(s))
		}
	}
	return cdc.Str(s), n, nil
}

// dig2bytes is the bytes a group of 0..9 decimal digits takes.
var dig2bytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// decimalText renders a binary DECIMAL(precision, scale) as MySQL prints it
// ("-12.50", "0.0001"): go-mysql's rendering, digit for digit.
func decimalText(data []byte, precision, scale int, arena *textArena) (string, int, error) {
	var out [80]byte
	s, n, err := appendDecimal(out[:0], data, precision, scale)
	if err != nil {
		return "", 0, err
	}
	return arena.string(s), n, nil
}

// appendDecimal appends the digits of a binary DECIMAL(precision, scale)
// and returns the bytes it took.
func appendDecimal(s []byte, data []byte, precision, scale int) ([]byte, int, error) {
	integral := precision - scale
	fullInt, fullFrac := integral/9, scale/9
	restInt, restFrac := integral-fullInt*9, scale-fullFrac*9
	if integral < 0 {
		return nil, 0, fmt.Errorf("invalid DECIMAL(%d,%d)", precision, scale)
	}
	size := fullInt*4 + dig2bytes[restInt] + fullFrac*4 + dig2bytes[restFrac]
	var b [40]byte // a DECIMAL(65,30) takes 30
	if size > len(b) || size == 0 {
		return nil, 0, fmt.Errorf("invalid DECIMAL(%d,%d)", precision, scale)
	}
	if err := need(data, size); err != nil {
		return nil, 0, err
	}
	// The sign is the first bit, inverted; a negative number has all its
	// other bits inverted too.
	copy(b[:], data[:size])
	negative := b[0]&0x80 == 0
	b[0] ^= 0x80
	if negative {
		for j := range size {
			b[j] ^= 0xFF
		}
		s = append(s, '-')
	}
	group := func(pos, n int) uint64 { return bigEndian(b[pos:], n) }
	pos := dig2bytes[restInt]
	leading := true // no digit written yet
	if v := group(0, pos); v != 0 {
		leading = false
		s = strconv.AppendUint(s, v, 10)
	}
	for range fullInt {
		v := group(pos, 4)
		pos += 4
		switch {
		case !leading:
			if v > 999_999_999 {
				return nil, 0, errors.New("invalid DECIMAL digits")
			}
			s = appendPadded(s, v, 9)
		case v != 0:
			leading = false
			s = strconv.AppendUint(s, v, 10)
		}
	}
	if leading {
		s = append(s, '0')
	}
	if pos < size {
		s = append(s, '.')
		for range fullFrac {
			v := group(pos, 4)
			pos += 4
			if v > 999_999_999 {
				return nil, 0, errors.New("invalid DECIMAL digits")
			}
			s = appendPadded(s, v, 9)
		}
		if n := dig2bytes[restFrac]; n > 0 {
			s = appendPadded(s, group(pos, n), restFrac)
			pos += n
		}
	}
	return s, pos, nil
}

// appendPadded appends v in decimal, zero-padded on the left to width digits.
func appendPadded(s []byte, v uint64, width int) []byte {
	var d [20]byte
	digits := strconv.AppendUint(d[:0], v, 10)
	for range width - len(digits) {
		s = append(s, '0')
	}
	return append(s, digits...)
}

const (
	usPerSecond = 1_000_000
	usPerDay    = 86_400 * usPerSecond
)

// temporal decodes DATE, TIME, DATETIME and TIMESTAMP values (old and
// fractional formats) into days (DATE) or microseconds, with go-mysql's
// rules: a zero date or a date with a zero part is errUnrepresentable, a
// DATETIME before 1970 passes through the text go-mysql renders it as
// (keeping dec fractional digits).
func temporal(ci *colInfo, data []byte) (int64, int, error) {
	dec := int(ci.meta)
	switch ci.binType {
	case mysql.MYSQL_TYPE_DATE:
		if err := need(data, 3); err != nil {
			return 0, 0, err
		}
		v := littleEndian(data, 3)
		if v == 0 {
			return 0, 3, errUnrepresentable
		}
		y, m, d := int64(v/(16*32)), int64(v/32%16), int64(v%32)
		if y > 9999 {
			return 0, 3, fmt.Errorf("date %04d-%02d-%02d: want YYYY-MM-DD", y, m, d)
		}
		if y == 0 || m == 0 || d == 0 {
			return 0, 3, errUnrepresentable
		}
		return daysFromCivil(y, m, d), 3, nil
	case mysql.MYSQL_TYPE_TIMESTAMP:
		if err := need(data, 4); err != nil {
			return 0, 0, err
		}
		sec := int64(littleEndian(data, 4))
		if sec == 0 {
			return 0, 4, errUnrepresentable
		}
		return sec * usPerSecond, 4, nil
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		n := 4 + (dec+1)/2
		if err := need(data, n); err != nil {
			return 0, 0, err
		}
		sec := int64(bigEndian(data, 4))
		if sec == 0 {
			return 0, n, errUnrepresentable
		}
		return sec*usPerSecond + fraction(data[4:], dec), n, nil
	case mysql.MYSQL_TYPE_DATETIME:
		if err := need(data, 8); err != nil {
			return 0, 0, err
		}
		v := littleEndian(data, 8)
		if v == 0 {
			return 0, 8, errUnrepresentable
		}
		d, t := v/1_000_000, v%1_000_000
		year, month, day := int64(d/10000), int64(d%10000/100), int64(d%100)
		clock := (int64(t/10000)*60+int64(t%10000/100))*60 + int64(t%100)
		if month == 0 || day == 0 {
			if year > 9999 {
				return 0, 8, fmt.Errorf("date %d-%02d-%02d: want YYYY-MM-DD", year, month, day)
			}
			return 0, 8, errUnrepresentable
		}
		return daysFromCivil(year, month, day)*usPerDay + clock*usPerSecond, 8, nil
	case mysql.MYSQL_TYPE_DATETIME2:
		n := 5 + (dec+1)/2
		if err := need(data, n); err != nil {
			return 0, 0, err
		}
		if dec > 6 {
			return 0, n, fmt.Errorf("DATETIME(%d): at most 6 fractional digits", dec)
		}
		intPart := int64(bigEndian(data, 5)) - 0x8000000000
		frac := fraction(data[5:], dec)
		if intPart == 0 {
			return 0, n, errUnrepresentable
		}
		tmp := intPart<<24 + frac
		if tmp < 0 {
			tmp = -tmp
		}
		ymdhms := tmp >> 24
		ymd, hms := ymdhms>>17, ymdhms%(1<<17)
		day, month, year := ymd%(1<<5), (ymd>>5)%13, (ymd>>5)/13
		clock := ((hms>>12)*60+(hms>>6)%(1<<6))*60 + hms%(1<<6)
		// go-mysql returns a time.Time from 1970 on, text before (and for
		// a zero month or day), the text keeping dec fractional digits.
		if intPart < 107420450816 || month == 0 || day == 0 {
			if year > 9999 {
				return 0, n, fmt.Errorf("date %d-%02d-%02d: want YYYY-MM-DD", year, month, day)
			}
			if year == 0 || month == 0 || day == 0 {
				return 0, n, errUnrepresentable
			}
			var err error
			if frac, err = textFraction(frac, dec); err != nil {
				return 0, n, err
			}
		}
		return daysFromCivil(year, month, day)*usPerDay + clock*usPerSecond + frac, n, nil
	case mysql.MYSQL_TYPE_TIME:
		if err := need(data, 3); err != nil {
			return 0, 0, err
		}
		v := int64(littleEndian(data, 3))
		return ((v/10000*60+v%10000/100)*60 + v%100) * usPerSecond, 3, nil
	case mysql.MYSQL_TYPE_TIME2:
		n := 3 + (dec+1)/2
		if err := need(data, n); err != nil {
			return 0, 0, err
		}
		us, err := time2(data, dec)
		return us, n, err
	}
	return 0, 0, fmt.Errorf("binlog type %d has no raw decoding", ci.binType)
}

// fraction reads the fractional seconds of a TIMESTAMP2 or DATETIME2 (dec
// digits in (dec+1)/2 big-endian bytes) as microseconds.
func fraction(b []byte, dec int) int64 {
	switch dec {
	case 1, 2:
		return int64(b[0]) * 10000
	case 3, 4:
		return int64(bigEndian(b, 2)) * 100
	case 5, 6:
		return int64(bigEndian(b, 3))
	}
	return 0
}

// textFraction is what go-mysql's text of a fraction keeps: the six digits
// of us with the last 6-dec cut off, read back as microseconds.
func textFraction(us int64, dec int) (int64, error) {
	if us == 0 || dec == 0 {
		return 0, nil
	}
	var d [20]byte
	s := appendPadded(d[:0], uint64(us), 6)
	s = s[:len(s)-(6-dec)]
	if len(s) > 6 {
		return 0, fmt.Errorf("fraction %d: more than 6 digits", us)
	}
	for len(s) < 6 {
		s = append(s, '0')
	}
	v, _ := strconv.ParseInt(string(s), 10, 64)
	return v, nil
}

// time2 decodes a fractional-format TIME into microseconds, negative and
// beyond 24 hours included.
func time2(b []byte, dec int) (int64, error) {
	var tmp, intPart, frac int64
	switch dec {
	case 1, 2:
		intPart = int64(bigEndian(b, 3)) - 0x800000
		frac = int64(b[3])
		if intPart < 0 && frac != 0 {
			// Negative values store the fraction reversed.
			intPart++
			frac -= 0x100
		}
		tmp = intPart<<24 + frac*10000
	case 3, 4:
		intPart = int64(bigEndian(b, 3)) - 0x800000
		frac = int64(bigEndian(b[3:], 2))
		if intPart < 0 && frac != 0 {
			intPart++
			frac -= 0x10000
		}
		tmp = intPart<<24 + frac*100
	case 5, 6:
		tmp = int64(bigEndian(b, 6)) - 0x800000000000
		intPart = 1 // not the zero shortcut below
	default:
		intPart = int64(bigEndian(b, 3)) - 0x800000
		tmp = intPart << 24
	}
	if intPart == 0 && frac == 0 {
		return 0, nil
	}
	sign := int64(1)
	if tmp < 0 {
		tmp, sign = -tmp, -1
	}
	hms := tmp >> 24
	clock := (((hms>>12)%(1<<10))*60+(hms>>6)%(1<<6))*60 + hms%(1<<6)
	us, err := textFraction(tmp%(1<<24), dec)
	if err != nil {
		return 0, err
	}
	return sign * (clock*usPerSecond + us), nil
}
