package bqfake

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The Storage Read API ("Use the BigQuery Storage Read API to read table
// data"): CreateReadSession takes a table, the columns to read
// (selected_fields, top-level names) and a row_restriction, and answers
// with the session's Avro schema and one stream; ReadRows sends the stream's
// rows as Avro binary blocks, from an offset (to resume a broken read).
// The rows are the table's live rows when the session is created (BigQuery
// reads at a snapshot time too), sorted like Rows. A stream read to its
// end is gone (NotFound afterwards), unlike BigQuery's, which lasts six
// hours.
//
// The Avro mapping is BigQuery's ("Avro schema details"): every NULLABLE
// column is a union ["null", T]; BOOL boolean; INT64 long; FLOAT64 double;
// NUMERIC bytes decimal(38,9); BIGNUMERIC bytes decimal(77,38); STRING and
// BYTES string and bytes; JSON and GEOGRAPHY string with sqlType JSON and
// GEOGRAPHY; DATE int date; DATETIME string with logicalType datetime
// ("YYYY-MM-DDTHH:MM:SS[.ffffff]"); TIME long time-micros; TIMESTAMP long
// timestamp-micros; STRUCT a record; REPEATED an array.
//
// Only DataFormat AVRO is served, and of row_restriction only what strait
// sends: comparisons (=, <, <=, >, >=) of a column with a literal, joined by
// AND and OR, with parentheses. Literals: integers, floats, 'strings' or
// "strings" (backslash escapes), b'bytes', TRUE, FALSE, and NUMERIC,
// BIGNUMERIC, DATE, DATETIME, TIMESTAMP followed by a string. Anything else
// is InvalidArgument, as is a literal that does not fit its column's type.

// readBlockRows is how many rows one ReadRows response carries.
const readBlockRows = 1000

// readService is the Storage Read API (google.cloud.bigquery.storage.v1
// BigQueryRead): read sessions and their streams.
type readService struct {
	storagepb.UnimplementedBigQueryReadServer
	cat *catalog

	mu       sync.Mutex
	sessions map[string]*readSession // by stream name
	seq      int
}

// readSession is a created session's rows, kept until the server closes.
type readSession struct {
	fields []*bq.TableFieldSchema // the selected columns, in order
	rows   []map[string]any
}

func parseTablePath(name string) (project, ds, tbl string, err error) {
	p := strings.Split(name, "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "datasets" || p[4] != "tables" || p[1] == "" || p[3] == "" || p[5] == "" {
		return "", "", "", status.Errorf(codes.InvalidArgument, "invalid table %q: want projects/{project}/datasets/{dataset}/tables/{table}", name)
	}
	return p[1], p[3], p[5], nil
}

// CreateReadSession snapshots the selected columns of the rows matching
// the restriction.
func (r *readService) CreateReadSession(_ context.Context, req *storagepb.CreateReadSessionRequest) (*storagepb.ReadSession, error) {
	rs := req.GetReadSession()
	if rs == nil {
		return nil, status.Error(codes.InvalidArgument, "read_session is required")
	}
	if rs.GetDataFormat() != storagepb.DataFormat_AVRO {
		return nil, status.Errorf(codes.InvalidArgument, "bqfake serves data_format AVRO only, not %s", rs.GetDataFormat())
	}
	project, ds, tbl, err := parseTablePath(rs.GetTable())
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(req.GetParent(), "projects/") {
		return nil, status.Errorf(codes.InvalidArgument, "invalid parent %q: want projects/{project}", req.GetParent())
	}
	r.cat.mu.Lock()
	defer r.cat.mu.Unlock()
	t, aerr := r.cat.lookupTableLocked(project, ds, tbl)
	if aerr != nil {
		return nil, status.Error(codes.NotFound, aerr.msg)
	}
	if t.meta.Type == "VIEW" {
		return nil, status.Errorf(codes.InvalidArgument, "table %s is a view: the Storage Read API reads tables only", tableName(project, ds, tbl))
	}
	fields := t.fields()
	if sel := rs.GetReadOptions().GetSelectedFields(); len(sel) > 0 {
		fields = nil
		for _, name := range sel {
			f := findField(t.fields(), name)
			if f == nil {
				return nil, status.Errorf(codes.InvalidArgument, "selected field %q is not a column of %s", name, tableName(project, ds, tbl))
			}
			fields = append(fields, f)
		}
	}
	var cond expr
	if text := rs.GetReadOptions().GetRowRestriction(); text != "" {
		if cond, err = parseRestriction(text, t.fields()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "row_restriction %q: %v", text, err)
		}
	}
	view, err := r.readViewLocked(t, tableName(project, ds, tbl))
	if err != nil {
		return nil, err
	}
	sess := &readSession{fields: fields, rows: view.matching(cond)}
	schema, err := avroSchema(fields)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	r.mu.Lock()
	if r.sessions == nil {
		r.sessions = map[string]*readSession{}
	}
	r.seq++
	name := fmt.Sprintf("projects/%s/locations/%s/sessions/s%d", project, strings.ToLower(r.cat.cfg.location), r.seq)
	stream := name + "/streams/0"
	r.sessions[stream] = sess
	r.mu.Unlock()
	return &storagepb.ReadSession{
		Name:              name,
		ExpireTime:        timestamppb.New(time.Now().Add(6 * time.Hour)),
		DataFormat:        storagepb.DataFormat_AVRO,
		Schema:            &storagepb.ReadSession_AvroSchema{AvroSchema: &storagepb.AvroSchema{Schema: schema}},
		Table:             rs.GetTable(),
		ReadOptions:       rs.GetReadOptions(),
		Streams:           []*storagepb.ReadStream{{Name: stream}},
		EstimatedRowCount: int64(len(sess.rows)),
	}, nil
}

// matching returns the live rows cond selects (nil: all) as snapshot
// does, sorted alike: filtered before they are sorted and copied, so that
// a session over a small key range of a large table stays cheap.
func (t *table) matching(cond expr) []map[string]any {
	var rows []*row
	if t.byKey == nil {
		rows = t.rows
	} else {
		for _, r := range t.byKey {
			if !r.deleted {
				rows = append(rows, r)
			}
		}
	}
	var out []*row
	for _, r := range rows {
		if cond == nil || cond.eval(r.values) {
			out = append(out, r)
		}
	}
	if pk := t.primaryKey(); len(pk) > 0 {
		slices.SortFunc(out, func(a, b *row) int {
			for _, c := range pk {
				if n := compareValues(a.values[c], b.values[c]); n != 0 {
					return n
				}
			}
			return cmp.Compare(a.order, b.order)
		})
	}
	res := make([]map[string]any, len(out))
	for i, r := range out {
		res[i] = fill(t.fields(), r.values)
	}
	return res
}

// ReadRows sends a stream's rows from the requested offset, in blocks.
func (r *readService) ReadRows(req *storagepb.ReadRowsRequest, stream storagepb.BigQueryRead_ReadRowsServer) error {
	r.mu.Lock()
	sess := r.sessions[req.GetReadStream()]
	r.mu.Unlock()
	if sess == nil {
		return status.Errorf(codes.NotFound, "read stream %q not found", req.GetReadStream())
	}
	off := req.GetOffset()
	if off < 0 || off > int64(len(sess.rows)) {
		return status.Errorf(codes.OutOfRange, "offset %d beyond the stream's %d rows", off, len(sess.rows))
	}
	for i := int(off); i < len(sess.rows); i += readBlockRows {
		end := min(i+readBlockRows, len(sess.rows))
		var b []byte
		for _, row := range sess.rows[i:end] {
			var err error
			if b, err = appendAvroRecord(b, sess.fields, row); err != nil {
				return status.Error(codes.Internal, err.Error())
			}
		}
		if err := stream.Send(&storagepb.ReadRowsResponse{
			Rows:     &storagepb.ReadRowsResponse_AvroRows{AvroRows: &storagepb.AvroRows{SerializedBinaryRows: b}},
			RowCount: int64(end - i),
		}); err != nil {
			return err
		}
	}
	// Read to the end: the rows are let go (BigQuery keeps a session for
	// six hours; a test server would otherwise hold every session's rows).
	r.mu.Lock()
	delete(r.sessions, req.GetReadStream())
	r.mu.Unlock()
	return nil
}

// avroSchema is the session schema of fields: a record named __root__.
func avroSchema(fields []*bq.TableFieldSchema) (string, error) {
	b, err := json.Marshal(map[string]any{"type": "record", "name": "__root__", "fields": avroFields(fields, "__root__")})
	return string(b), err
}

func avroFields(fs []*bq.TableFieldSchema, path string) []any {
	out := make([]any, 0, len(fs))
	for _, f := range fs {
		t := avroFieldType(f, path+"__"+f.Name)
		switch mode(f) {
		case "REPEATED":
			t = map[string]any{"type": "array", "items": t}
		case "NULLABLE":
			t = []any{"null", t}
		}
		out = append(out, map[string]any{"name": f.Name, "type": t})
	}
	return out
}

func avroFieldType(f *bq.TableFieldSchema, path string) any {
	switch normType(f.Type) {
	case "BOOL":
		return "boolean"
	case "INT64":
		return "long"
	case "FLOAT64":
		return "double"
	case "NUMERIC":
		return map[string]any{"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 9}
	case "BIGNUMERIC":
		return map[string]any{"type": "bytes", "logicalType": "decimal", "precision": 77, "scale": 38}
	case "BYTES":
		return "bytes"
	case "JSON", "GEOGRAPHY":
		return map[string]any{"type": "string", "sqlType": normType(f.Type)}
	case "DATE":
		return map[string]any{"type": "int", "logicalType": "date"}
	case "DATETIME":
		return map[string]any{"type": "string", "logicalType": "datetime"}
	case "TIME":
		return map[string]any{"type": "long", "logicalType": "time-micros"}
	case "TIMESTAMP":
		return map[string]any{"type": "long", "logicalType": "timestamp-micros"}
	case "STRUCT":
		return map[string]any{"type": "record", "name": path, "fields": avroFields(f.Fields, path)}
	}
	return "string"
}

// appendAvroRecord appends the Avro binary encoding of a row's fields.
func appendAvroRecord(b []byte, fs []*bq.TableFieldSchema, row map[string]any) ([]byte, error) {
	for _, f := range fs {
		v := row[f.Name]
		var err error
		switch mode(f) {
		case "REPEATED":
			list, _ := v.([]any)
			if len(list) > 0 {
				b = appendAvroLong(b, int64(len(list)))
				for _, e := range list {
					if b, err = appendAvroValue(b, f, e); err != nil {
						return nil, err
					}
				}
			}
			b = appendAvroLong(b, 0)
		case "NULLABLE":
			if v == nil {
				b = appendAvroLong(b, 0)
				continue
			}
			if b, err = appendAvroValue(appendAvroLong(b, 1), f, v); err != nil {
				return nil, err
			}
		default:
			if b, err = appendAvroValue(b, f, v); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func appendAvroLong(b []byte, n int64) []byte {
	return binary.AppendUvarint(b, uint64((n<<1)^(n>>63)))
}

func appendAvroBytes(b []byte, s []byte) []byte {
	return append(appendAvroLong(b, int64(len(s))), s...)
}

func appendAvroValue(b []byte, f *bq.TableFieldSchema, v any) ([]byte, error) {
	bad := func() ([]byte, error) {
		return nil, fmt.Errorf("bqfake: column %s (%s) holds %T", f.Name, f.Type, v)
	}
	switch x := v.(type) {
	case bool:
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case int64:
		return appendAvroLong(b, x), nil
	case float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case string:
		return appendAvroBytes(b, []byte(x)), nil
	case []byte:
		return appendAvroBytes(b, x), nil
	case *big.Rat:
		scale := 9
		if normType(f.Type) == "BIGNUMERIC" {
			scale = 38
		}
		n := new(big.Int).Mul(x.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
		n.Quo(n, x.Denom()) // exact: the value has at most scale digits
		return appendAvroBytes(b, twosComplement(n)), nil
	case civil.Date:
		return appendAvroLong(b, int64(x.DaysSince(civil.Date{Year: 1970, Month: 1, Day: 1}))), nil
	case civil.DateTime:
		return appendAvroBytes(b, []byte(datetimeText(x))), nil
	case civil.Time:
		return appendAvroLong(b, int64(((x.Hour*60+x.Minute)*60+x.Second))*1_000_000+int64(x.Nanosecond/1000)), nil
	case time.Time:
		return appendAvroLong(b, x.UnixMicro()), nil
	case map[string]any:
		if !isStruct(f) {
			return bad()
		}
		return appendAvroRecord(b, f.Fields, x)
	}
	return bad()
}

// datetimeText is a DATETIME as the Avro string: microseconds only when
// there are any.
func datetimeText(x civil.DateTime) string {
	s := fmt.Sprintf("%sT%02d:%02d:%02d", x.Date, x.Time.Hour, x.Time.Minute, x.Time.Second)
	if us := x.Time.Nanosecond / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s
}

// twosComplement is n as Avro's decimal bytes: big-endian two's
// complement, as short as it can be.
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = ^(n-1): take the magnitude minus one and invert every bit.
	m := new(big.Int).Sub(new(big.Int).Neg(n), big.NewInt(1)).Bytes()
	if len(m) == 0 || m[0]&0x80 != 0 {
		m = append([]byte{0}, m...)
	}
	for i := range m {
		m[i] = ^m[i]
	}
	return m
}

// expr is a parsed row restriction.
type expr interface{ eval(row map[string]any) bool }

type andExpr []expr
type orExpr []expr

type cmpExpr struct {
	col string
	op  string
	lit any // the literal as the column's Go value type
}

func (a andExpr) eval(row map[string]any) bool {
	for _, e := range a {
		if !e.eval(row) {
			return false
		}
	}
	return true
}

func (o orExpr) eval(row map[string]any) bool {
	for _, e := range o {
		if e.eval(row) {
			return true
		}
	}
	return false
}

// eval compares as SQL does: NULL compares to nothing.
func (c *cmpExpr) eval(row map[string]any) bool {
	v := row[c.col]
	if v == nil {
		return false
	}
	n := compareValues(v, c.lit)
	switch c.op {
	case "=":
		return n == 0
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	}
	return n >= 0 // ">="
}

// parseRestriction parses the row_restriction subset described above,
// checking each comparison against the table's columns.
func parseRestriction(s string, fields []*bq.TableFieldSchema) (expr, error) {
	toks, err := lexRestriction(s)
	if err != nil {
		return nil, err
	}
	p := &restrictionParser{toks: toks, fields: fields}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i].text)
	}
	return e, nil
}

type tokKind int

const (
	tokIdent tokKind = iota // a bare or backtick-quoted name, or a keyword
	tokString
	tokBytes
	tokNumber
	tokOp
	tokParen
)

type token struct {
	kind tokKind
	text string // names unquoted, strings unescaped
}

func lexRestriction(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			out = append(out, token{tokParen, string(c)})
			i++
		case c == '<' || c == '>' || c == '=' || c == '!':
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
				j++
			}
			op := s[i:j]
			if op == "!" || op == "!=" || op == "<>" {
				return nil, fmt.Errorf("operator %s is not supported by bqfake", op)
			}
			out = append(out, token{tokOp, op})
			i = j
		case c == '`':
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				return nil, fmt.Errorf("unterminated name at %d", i)
			}
			out = append(out, token{tokIdent, s[i+1 : i+1+j]})
			i += j + 2
		case c == '\'' || c == '"' || ((c == 'b' || c == 'B') && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"')):
			kind := tokString
			if c == 'b' || c == 'B' {
				kind, i = tokBytes, i+1
			}
			text, n, err := unquote(s[i:])
			if err != nil {
				return nil, fmt.Errorf("literal at %d: %w", i, err)
			}
			out = append(out, token{kind, text})
			i += n
		case c == '-' || c == '.' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E' || (s[j] >= '0' && s[j] <= '9') || ((s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E'))) {
				j++
			}
			out = append(out, token{tokNumber, s[i:j]})
			i = j
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			j := i + 1
			for j < len(s) && (s[j] == '_' || (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			out = append(out, token{tokIdent, s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return out, nil
}

// unquote reads a quoted literal at the start of s (GoogleSQL escapes:
// \\ \' \" \n \r \t \0 and \xHH), returning its text and length.
func unquote(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '0':
				b.WriteByte(0)
			case 'x', 'X':
				if i+2 >= len(s) {
					return "", 0, fmt.Errorf("short \\x escape")
				}
				n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
				if err != nil {
					return "", 0, fmt.Errorf("bad \\x escape %q", s[i+1:i+3])
				}
				b.WriteByte(byte(n))
				i += 2
			case '\\', '\'', '"', '`', '?':
				b.WriteByte(e)
			default:
				return "", 0, fmt.Errorf("unsupported escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated literal")
}

type restrictionParser struct {
	toks   []token
	i      int
	fields []*bq.TableFieldSchema
}

func (p *restrictionParser) peekKeyword(kw string) bool {
	return p.i < len(p.toks) && p.toks[p.i].kind == tokIdent && strings.EqualFold(p.toks[p.i].text, kw)
}

func (p *restrictionParser) or() (expr, error) {
	e, err := p.and()
	if err != nil {
		return nil, err
	}
	out := orExpr{e}
	for p.peekKeyword("OR") {
		p.i++
		if e, err = p.and(); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(out) == 1 {
		return out[0], nil
	}
	return out, nil
}

func (p *restrictionParser) and() (expr, error) {
	e, err := p.factor()
	if err != nil {
		return nil, err
	}
	out := andExpr{e}
	for p.peekKeyword("AND") {
		p.i++
		if e, err = p.factor(); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(out) == 1 {
		return out[0], nil
	}
	return out, nil
}

func (p *restrictionParser) next() (token, error) {
	if p.i >= len(p.toks) {
		return token{}, fmt.Errorf("unexpected end")
	}
	p.i++
	return p.toks[p.i-1], nil
}

func (p *restrictionParser) factor() (expr, error) {
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	if t.kind == tokParen && t.text == "(" {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if t, err := p.next(); err != nil || t.text != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return e, nil
	}
	if t.kind != tokIdent {
		return nil, fmt.Errorf("want a column, got %q", t.text)
	}
	f := findField(p.fields, t.text)
	if f == nil || mode(f) == "REPEATED" || isStruct(f) {
		return nil, fmt.Errorf("unrecognized name or not a scalar column: %s", t.text)
	}
	op, err := p.next()
	if err != nil {
		return nil, err
	}
	if op.kind != tokOp {
		return nil, fmt.Errorf("want a comparison after %s, got %q", t.text, op.text)
	}
	lit, err := p.literal(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", f.Name, op.text, err)
	}
	return &cmpExpr{col: f.Name, op: op.text, lit: lit}, nil
}

// literal reads a literal and converts it to column f's Go value type.
func (p *restrictionParser) literal(f *bq.TableFieldSchema) (any, error) {
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	typ := normType(f.Type)
	mismatch := func(what string) error {
		return fmt.Errorf("no matching signature: %s literal compared with %s column", what, typ)
	}
	switch t.kind {
	case tokNumber:
		switch typ {
		case "INT64":
			n, err := strconv.ParseInt(t.text, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("integer literal %s: %w", t.text, err)
			}
			return n, nil
		case "FLOAT64":
			return strconv.ParseFloat(t.text, 64)
		case "NUMERIC", "BIGNUMERIC":
			return ratLiteral(t.text)
		}
		return nil, mismatch("number")
	case tokString:
		switch typ {
		case "STRING":
			return t.text, nil
		}
		return nil, mismatch("STRING")
	case tokBytes:
		if typ == "BYTES" {
			return []byte(t.text), nil
		}
		return nil, mismatch("BYTES")
	case tokIdent:
		kw := strings.ToUpper(t.text)
		if kw == "TRUE" || kw == "FALSE" {
			if typ != "BOOL" {
				return nil, mismatch("BOOL")
			}
			return kw == "TRUE", nil
		}
		s, err := p.next()
		if err != nil || s.kind != tokString {
			return nil, fmt.Errorf("want a string after %s", kw)
		}
		if kw != typ && !(kw == "BIGNUMERIC" && typ == "NUMERIC") && !(kw == "NUMERIC" && typ == "BIGNUMERIC") {
			return nil, mismatch(kw)
		}
		switch kw {
		case "NUMERIC", "BIGNUMERIC":
			return ratLiteral(s.text)
		case "DATE":
			d, err := civil.ParseDate(s.text)
			if err != nil {
				return nil, fmt.Errorf("DATE literal %q: %w", s.text, err)
			}
			return d, nil
		case "DATETIME":
			return parseDateTime(strings.Replace(s.text, "T", " ", 1))
		case "TIMESTAMP":
			return parseTimestamp(s.text)
		}
		return nil, fmt.Errorf("unsupported literal %s", kw)
	}
	return nil, fmt.Errorf("want a literal, got %q", t.text)
}

func ratLiteral(s string) (*big.Rat, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("numeric literal %q", s)
	}
	return r, nil
}
