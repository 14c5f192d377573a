package bigquery

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Canonical text: one text per BigQuery value, so that a value read back
// from BigQuery (TableReader) and the value the consumer writes for a
// source value (`producer verify` formats the source side with the same
// functions) compare equal exactly when BigQuery holds what the pipeline
// should have written.

// Cell is one value in canonical text; Null marks SQL NULL.
type Cell struct {
	Text string
	Null bool
}

// TextInt64 is an INT64: decimal digits.
func TextInt64(n int64) string { return strconv.FormatInt(n, 10) }

// TextDecimal is a NUMERIC or BIGNUMERIC given as decimal text ("-12.50"):
// no '+', no leading zeros before the point but one, no trailing zeros
// after it, no point without a fraction, and zero without a sign.
func TextDecimal(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out
}

// TextFloat is a FLOAT64: the shortest text that reads back as the same
// float64.
func TextFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TextFloatKey is a FLOAT or DOUBLE primary-key value as the STRING
// strait writes it (README, "Primary-key columns"): TextFloat, but −0 is
// 0, the same key in MySQL.
func TextFloatKey(f float64) string { return string(appendFloatKey(nil, f)) }

// TextBool is a BOOL: true or false.
func TextBool(b bool) string { return strconv.FormatBool(b) }

// TextBytes is BYTES: 0x and lower-case hex.
func TextBytes(b []byte) string { return "0x" + hex.EncodeToString(b) }

// TextDate is a DATE given as days since 1970-01-01: YYYY-MM-DD.
func TextDate(days int64) string {
	return time.Unix(days*86400, 0).UTC().Format(time.DateOnly)
}

// TextDateTime is a DATETIME given as wall-clock microseconds since
// 1970-01-01 00:00: YYYY-MM-DD HH:MM:SS.ffffff.
func TextDateTime(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000000")
}

// TextTimestamp is a TIMESTAMP given as microseconds since the Unix
// epoch: YYYY-MM-DD HH:MM:SS.ffffff UTC.
func TextTimestamp(us int64) string { return TextDateTime(us) + " UTC" }

// TextJSON is a JSON document with insignificant whitespace removed,
// object keys sorted and numbers in one form (BigQuery's JSON type keeps
// none of them as written: it stores a number as INT64, UINT64 or FLOAT64):
// an integer as its digits, any other number as the shortest text of its
// float64. Text that is not JSON is returned as it is.
func TextJSON(s string) string {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return s
	}
	v = jsonNumbers(v)
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return s
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// TextRecord is a STRUCT: {name:text,...} in field order, NULL as null.
func TextRecord(names []string, cells []Cell) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte(':')
		if cells[i].Null {
			b.WriteString("null")
		} else {
			b.WriteString(cells[i].Text)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// jsonNumbers rewrites the numbers of a decoded document in TextJSON's
// form.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonNumbers(e)
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(n, 10))
		}
		if n, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return json.Number(strconv.FormatUint(n, 10))
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return v
}
