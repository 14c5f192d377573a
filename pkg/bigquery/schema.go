package bigquery

import (
	"fmt"
	"slices"
	"strings"

	"cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strait-cdc/strait/pkg/avro"
)

// The metadata columns written next to the data of every row (README,
// "Consumer"). The names start with _strait_ so that they cannot be taken
// for source columns: a source column whose name starts with _strait_ is
// renamed (ColumnName).
const (
	ColOp         = "_strait_op"          // STRING: c insert, u update, d delete, r snapshot read
	ColSequence   = "_strait_sequence"    // STRING: source.sequence, the _CHANGE_SEQUENCE_NUMBER
	ColSourceTime = "_strait_source_ts"   // TIMESTAMP: source commit time (source.ts_ms)
	ColIngestedAt = "_strait_ingested_at" // TIMESTAMP: when the consumer appended the row
)

// colRank is the column the latest-row view of a changelog ranks a key's
// changes in (and leaves out of its result); no source column has its
// name either (ColumnName).
const colRank = "_strait_rank"

// renamedPrefixes are the name prefixes, compared case-insensitively, that
// ColumnName puts _strait_ in front of: strait's own, _CHANGE_ of the CDC
// pseudocolumns (_CHANGE_TYPE, _CHANGE_SEQUENCE_NUMBER: "Stream table
// updates with change data capture"), and those "Specify a schema",
// "Column names", reserves.
var renamedPrefixes = []string{"_STRAIT_", "_CHANGE_", "_TABLE_", "_FILE_", "_PARTITION", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER"}

// ColumnName is the BigQuery name of a source column or record field (its
// Avro field name): the name itself, or _strait_ and the name when it
// starts, in any case, with a prefix BigQuery reserves or with _strait_
// (README, "Column names in BigQuery"): _CHANGE_TYPE is
// _strait__CHANGE_TYPE. Every renamed name starts with _strait__, which
// neither a name left as it is nor a metadata column does, so two columns
// never get one name.
func ColumnName(name string) string {
	upper := strings.ToUpper(name)
	for _, p := range renamedPrefixes {
		if strings.HasPrefix(upper, p) {
			return "_strait_" + name
		}
	}
	return name
}

// conv says how a value travels from its Avro encoding to the proto wire.
type conv uint8

const (
	convLong            conv = iota // int, long → int64 (INT64; TIME as µs)
	convDate                        // int days → int32 (DATE)
	convTimestampMicros             // long µs → int64 µs (TIMESTAMP)
	convTimestampMillis             // long ms → int64 µs (TIMESTAMP)
	convDateTimeMicros              // long wall-clock µs → packed civil DATETIME int64
	convDateTimeMillis              // long wall-clock ms → packed civil DATETIME int64
	convFloat                       // float → double (FLOAT64)
	convDouble                      // double → double (FLOAT64)
	convBool                        // boolean → bool
	convBytes                       // bytes → bytes (BYTES)
	convString                      // string → string (STRING, JSON)
	convEnum                        // enum index → its symbol (STRING)
	convFixed                       // fixed → bytes (BYTES)
	convDecimal                     // bytes decimal → decimal text (NUMERIC, BIGNUMERIC)
	convFixedDecimal                // fixed decimal → decimal text
	convRecord                      // record → nested message (STRUCT)
	convFloatKey                    // float key → its TextFloatKey (STRING)
	convDoubleKey                   // double key → its TextFloatKey (STRING)
	convBytesKey                    // bytes key → its TextBytes (STRING), upsert mode
	convFixedKey                    // fixed key → its TextBytes (STRING), upsert mode
)

// column is one Avro record field planned for the proto wire. A consumer
// holds a plan of every table's columns for its life, so a column keeps
// only what rows are built with: the BigQuery column it maps to is made
// from it when a table is created, patched or bound (field).
type column struct {
	name    string             // BigQuery column name: ColumnName of the Avro field name
	typ     *avro.Type         // the field's type as declared (maybe a union)
	value   *avro.Type         // the non-null type
	sub     []column           // fields of a record
	bqType  bigquery.FieldType // the BigQuery column's type
	nullIdx int32              // index of the null branch in typ, -1 if not nullable
	num     protowire.Number   // proto field number in the writer schema
	conv    conv
	keyText bool // a key column whose values are written as text (withKey)
}

// field returns the BigQuery column c maps to.
func (c *column) field() *bigquery.FieldSchema {
	f := &bigquery.FieldSchema{Name: c.name, Type: c.bqType}
	if c.keyText {
		f.Description = "strait: the source key column's value as text (README, Primary-key columns)"
	}
	for i := range c.sub {
		f.Schema = append(f.Schema, c.sub[i].field())
	}
	return f
}

// mapColumn derives the BigQuery column of an Avro field: the README's
// type-mapping table, read from the Avro side (logical types and
// Debezium's connect.name), so any Debezium-shaped schema works.
func mapColumn(name string, typ *avro.Type, depth int) (column, error) {
	name = ColumnName(name)
	v, nullIdx := typ.Nullable()
	c := column{name: name, typ: typ, value: v, nullIdx: int32(nullIdx)}
	switch v.Kind {
	case "boolean":
		c.conv, c.bqType = convBool, bigquery.BooleanFieldType
	case "int":
		c.conv, c.bqType = convLong, bigquery.IntegerFieldType
		if v.Logical == "date" {
			c.conv, c.bqType = convDate, bigquery.DateFieldType
		}
	case "long":
		c.conv, c.bqType = convLong, bigquery.IntegerFieldType
		switch v.Logical {
		case "timestamp-micros":
			c.conv, c.bqType = convTimestampMicros, bigquery.TimestampFieldType
		case "timestamp-millis":
			c.conv, c.bqType = convTimestampMillis, bigquery.TimestampFieldType
		case "local-timestamp-micros":
			c.conv, c.bqType = convDateTimeMicros, bigquery.DateTimeFieldType
		case "local-timestamp-millis":
			c.conv, c.bqType = convDateTimeMillis, bigquery.DateTimeFieldType
		}
		// io.debezium.time.MicroTime (MySQL TIME) stays INT64 microseconds:
		// BigQuery's TIME holds only 00:00..23:59:59.999999, and MySQL's
		// TIME spans -838:59:59..838:59:59.
	case "float":
		c.conv, c.bqType = convFloat, bigquery.FloatFieldType
	case "double":
		c.conv, c.bqType = convDouble, bigquery.FloatFieldType
	case "bytes", "fixed":
		c.conv, c.bqType = convBytes, bigquery.BytesFieldType
		if v.Kind == "fixed" {
			c.conv = convFixed
		}
		if v.Logical == "decimal" {
			c.conv = convDecimal
			if v.Kind == "fixed" {
				c.conv = convFixedDecimal
			}
			c.bqType = decimalType(v.Precision, v.Scale)
			if c.bqType == "" {
				return c, fmt.Errorf("column %s: decimal(%d,%d) has more fractional digits than BIGNUMERIC's 38", name, v.Precision, v.Scale)
			}
		}
	case "string":
		c.conv, c.bqType = convString, bigquery.StringFieldType
		if v.ConnectName == "io.debezium.data.Json" {
			c.bqType = bigquery.JSONFieldType
		}
	case "enum":
		c.conv, c.bqType = convEnum, bigquery.StringFieldType
	case "record":
		if depth >= 15 {
			return c, fmt.Errorf("column %s: records nested deeper than BigQuery's 15 levels", name)
		}
		c.conv, c.bqType = convRecord, bigquery.RecordFieldType
		c.sub = make([]column, 0, len(v.Fields))
		for _, sf := range v.Fields {
			sc, err := mapColumn(sf.Name, sf.Type, depth+1)
			if err != nil {
				return c, fmt.Errorf("column %s: %w", name, err)
			}
			c.sub = append(c.sub, sc)
		}
	default:
		return c, fmt.Errorf("column %s: Avro type %s has no BigQuery mapping", name, v.Kind)
	}
	return c, nil
}

// decimalType picks NUMERIC (up to 29 integer and 9 fractional digits) or
// BIGNUMERIC (up to 38 fractional digits) for decimal(p,s). A decimal with
// more integer digits than BIGNUMERIC's 38 (DECIMAL(65,0)) is BIGNUMERIC
// too: the values within its range arrive exactly, the others are rejected
// row by row (checkDecimal), never rounded.
func decimalType(p, s int) bigquery.FieldType {
	switch {
	case p-s <= 29 && s <= 9:
		return bigquery.NumericFieldType
	case s <= 38:
		return bigquery.BigNumericFieldType
	}
	return ""
}

// withKey returns the plan of p for a table with primary key key
// (BigQuery names): BigQuery refuses FLOAT64 and BYTES primary-key columns
// and FLOAT64 window partitions (README, "Primary-key columns"), so a
// float or double key column becomes a STRING of TextFloatKey in both
// modes, and a binary key column a STRING of TextBytes in upsert mode (a
// changelog has no primary key and partitions by BYTES well).
func (p *valuePlan) withKey(key []string, upsert bool) *valuePlan {
	var q *valuePlan
	for i, c := range p.columns {
		if !slices.ContainsFunc(key, func(k string) bool { return strings.EqualFold(k, c.name) }) {
			continue
		}
		conv := c.conv
		switch {
		case c.conv == convFloat:
			conv = convFloatKey
		case c.conv == convDouble:
			conv = convDoubleKey
		case c.conv == convBytes && upsert:
			conv = convBytesKey
		case c.conv == convFixed && upsert:
			conv = convFixedKey
		}
		if conv == c.conv {
			continue
		}
		if q == nil {
			cp := *p
			cp.columns = slices.Clone(p.columns)
			q = &cp
		}
		q.columns[i].conv, q.columns[i].bqType, q.columns[i].keyText = conv, bigquery.StringFieldType, true
	}
	if q == nil {
		return p
	}
	return q
}

// valuePlan is a value schema (the Debezium envelope) planned for
// decoding: where the rows, the source block and the op are, and how each
// row column maps to the table.
type valuePlan struct {
	env                       *avro.Type
	before, after, source, op int // field indexes in env
	srcTime, srcSeq           int // field indexes in the source record, -1 if absent
	srcDB, srcTable           int // field indexes in the source record
	// namespace is the envelope's, <prefix>.<database>.<table>, each part
	// an Avro name (avro.Name of the source's names), which the producer
	// and Debezium both write; prefix, database and table are its parts.
	namespace, prefix, database, table string
	columns                            []column // the row record's fields, in order
}

// notEnvelopeError is a value or key schema that is not one of a change
// envelope strait can read: a problem of the record naming it, whoever
// can write a topic chooses the schema ids of its records.
type notEnvelopeError struct{ err error }

func (e *notEnvelopeError) Error() string { return e.err.Error() }
func (e *notEnvelopeError) Unwrap() error { return e.err }

func notEnvelope(format string, args ...any) error {
	return &notEnvelopeError{fmt.Errorf(format, args...)}
}

// planValue parses a value schema. A schema that is not a Debezium
// envelope is a *notEnvelopeError; an envelope whose columns BigQuery
// cannot hold is another error, a problem of its table.
func planValue(schema string) (*valuePlan, error) {
	env, err := avro.Parse(schema)
	if err != nil {
		return nil, &notEnvelopeError{err}
	}
	if env.Kind != "record" {
		return nil, notEnvelope("value schema is a %s, want the Debezium envelope record", env.Kind)
	}
	p := &valuePlan{env: env, before: env.FieldIndex("before"), after: env.FieldIndex("after"), source: env.FieldIndex("source"), op: env.FieldIndex("op"),
		srcTime: -1, srcSeq: -1, srcDB: -1, srcTable: -1}
	if p.before < 0 || p.after < 0 || p.source < 0 || p.op < 0 {
		return nil, notEnvelope("value schema %s is not a Debezium envelope (before, after, source, op)", env.Name)
	}
	parts := strings.Split(env.Name, ".")
	if len(parts) < 4 {
		return nil, notEnvelope("value schema %s: want the namespace <prefix>.<database>.<table>", env.Name)
	}
	p.namespace = env.Name[:strings.LastIndexByte(env.Name, '.')]
	p.prefix, p.database, p.table = strings.Join(parts[:len(parts)-3], "."), parts[len(parts)-3], parts[len(parts)-2]

	row, _ := env.Fields[p.after].Type.Nullable()
	if before, _ := env.Fields[p.before].Type.Nullable(); row.Kind != "record" || before != row {
		return nil, notEnvelope("value schema %s: after is a %s, want the row record of before", env.Name, row.Kind)
	}
	if src, _ := env.Fields[p.source].Type.Nullable(); src.Kind == "record" {
		p.srcTime, p.srcSeq, p.srcDB, p.srcTable = src.FieldIndex("ts_ms"), src.FieldIndex("sequence"), src.FieldIndex("db"), src.FieldIndex("table")
	}
	if p.srcDB < 0 || p.srcTable < 0 {
		return nil, notEnvelope("value schema %s: the source block lacks db or table", env.Name)
	}
	p.columns = make([]column, 0, len(row.Fields))
	for _, f := range row.Fields {
		c, err := mapColumn(f.Name, f.Type, 1)
		if err != nil {
			return nil, err
		}
		p.columns = append(p.columns, c)
	}
	numberColumns(p.columns, numFirstCol)
	return p, nil
}

// keyColumns returns the namespace of a key schema and the BigQuery names
// (ColumnName) of its fields, the primary key. It must be a record in a
// namespace (the writer checks it is the envelope's): else a
// *notEnvelopeError, or a *wrongTableError.
func keyColumns(schema string) (namespace string, columns []string, err error) {
	k, err := avro.Parse(schema)
	if err != nil {
		return "", nil, &notEnvelopeError{fmt.Errorf("key schema: %w", err)}
	}
	if k.Kind != "record" {
		return "", nil, notEnvelope("key schema is a %s, want a record", k.Kind)
	}
	i := strings.LastIndexByte(k.Name, '.')
	if i < 0 {
		return "", nil, wrongTable("key schema %s has no namespace", k.Name)
	}
	for _, f := range k.Fields {
		columns = append(columns, ColumnName(f.Name))
	}
	return k.Name[:i], columns, nil
}

// metadataColumns are the columns strait adds to every table.
func metadataColumns() bigquery.Schema {
	return bigquery.Schema{
		{Name: ColOp, Type: bigquery.StringFieldType, Description: "strait: the change's op: c insert, u update, d delete, r snapshot read"},
		{Name: ColSequence, Type: bigquery.StringFieldType, Description: "strait: the change's source sequence (epoch/file/pos/row), its _CHANGE_SEQUENCE_NUMBER"},
		{Name: ColSourceTime, Type: bigquery.TimestampFieldType, Description: "strait: the source commit time of the change"},
		{Name: ColIngestedAt, Type: bigquery.TimestampFieldType, Description: "strait: when the consumer wrote the change"},
	}
}

// sameType reports whether an existing column can take values of want, and
// if not, describes the difference.
func sameType(have, want *bigquery.FieldSchema) string {
	if have.Type != want.Type || have.Repeated != want.Repeated {
		return fmt.Sprintf("column %s is %s in BigQuery but the source now sends %s", have.Name, typeName(have), typeName(want))
	}
	for _, w := range want.Schema {
		h := findColumn(have.Schema, w.Name)
		if h == nil {
			return fmt.Sprintf("record column %s lacks field %s", have.Name, w.Name)
		}
		if d := sameType(h, w); d != "" {
			return d
		}
	}
	return ""
}

func typeName(f *bigquery.FieldSchema) string {
	s := string(f.Type)
	if f.Repeated {
		s = "REPEATED " + s
	}
	return s
}

// findColumn finds a column by name; BigQuery names are case-insensitive.
func findColumn(s bigquery.Schema, name string) *bigquery.FieldSchema {
	for _, f := range s {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}
