package binlog

// backfill.go: historical rows loaded into a live table (producer
// backfill): a backfill request carries up to MaxBackfillRows rows of one
// table as text, which the snapshotter checks against the table's current
// schema and publishes as snapshot rows (op r) in one transaction of their
// own, once the stream has passed the position the schema was read at
// (so that the stream's schema is the one checked), with a sequence below
// every live change: epoch 0, binlog file 0
// (the stream's files are numbered from 1), the request's offset, the
// row's index. In BigQuery an upsert with a lower _CHANGE_SEQUENCE_NUMBER
// than the row's does not overwrite it, so a backfilled row fills a gap
// (a key the table does not hold) and never replaces a newer row, nor a
// row deleted less than two days ago (BigQuery remembers deletes that
// long); a later backfill of a key wins over an earlier one. The request's
// offset is checkpointed with the transaction: exactly once.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// MaxBackfillRows bounds the rows of one backfill request.
const MaxBackfillRows = 1000

// maxBackfillBytes bounds the text of one backfill request's values.
const maxBackfillBytes = 1 << 20

// CheckBackfill checks what can be checked of a backfill request's rows
// before the table's schema is known: 1 to maxColumns distinct column
// names, 1 to MaxBackfillRows rows of one value (nil: NULL) per column,
// UTF-8 text, at most 1 MiB of it in all.
func CheckBackfill(columns []string, rows [][]*string) error {
	if len(columns) == 0 || len(columns) > maxColumns {
		return fmt.Errorf("%d columns: want 1 to %d", len(columns), maxColumns)
	}
	seen := make(map[string]bool, len(columns))
	for _, c := range columns {
		key := strings.ToLower(c)
		if c == "" || len(c) > 64 || !utf8.ValidString(c) || seen[key] {
			return fmt.Errorf("column name %.70q: empty, longer than 64 bytes, not UTF-8 or repeated", c)
		}
		seen[key] = true
	}
	if len(rows) == 0 || len(rows) > MaxBackfillRows {
		return fmt.Errorf("%d rows: want 1 to %d", len(rows), MaxBackfillRows)
	}
	size := 0
	for i, r := range rows {
		if len(r) != len(columns) {
			return fmt.Errorf("row %d has %d values for %d columns", i+1, len(r), len(columns))
		}
		for _, v := range r {
			if v == nil {
				continue
			}
			if !utf8.ValidString(*v) {
				return fmt.Errorf("row %d: a value is not UTF-8", i+1)
			}
			size += len(*v)
		}
	}
	if size > maxBackfillBytes {
		return fmt.Errorf("%d bytes of values: at most %d", size, maxBackfillBytes)
	}
	return nil
}

// BackfillRow turns a row given as text by column name (nil: NULL) into
// the values of table t, as the stream would hold them: every column of t
// not named is NULL, a name t lacks or a NULL in a NOT NULL column is an
// error, and so is a value not of its column's type (see README,
// "Operations: backfill", for each type's text).
func BackfillRow(t *cdc.Table, columns []string, values []*string) ([]cdc.Value, error) {
	row := make([]cdc.Value, len(t.Columns))
	given := make([]bool, len(t.Columns))
	for i, name := range columns {
		j := slices.IndexFunc(t.Columns, func(c cdc.Column) bool { return strings.EqualFold(c.Name, name) })
		if j < 0 {
			return nil, fmt.Errorf("table %s has no column %.70q", t.ID(), name)
		}
		c := &t.Columns[j]
		given[j] = true
		if values[i] == nil {
			row[j] = cdc.Value{Null: true}
			continue
		}
		v, err := fillValue(c, *values[i])
		if err != nil {
			return nil, fmt.Errorf("column %s (%s): %w", c.Name, c.SQLType, err)
		}
		row[j] = v
	}
	for j := range row {
		if !given[j] {
			row[j] = cdc.Value{Null: true}
		}
		if row[j].Null && !t.Columns[j].Nullable {
			return nil, fmt.Errorf("column %s is NOT NULL and the row has no value for it", t.Columns[j].Name)
		}
	}
	for _, k := range t.PrimaryKey {
		if row[k].Null {
			return nil, fmt.Errorf("primary-key column %s has no value", t.Columns[k].Name)
		}
	}
	return row, nil
}

// fillValue parses the text s of a value of column c.
func fillValue(c *cdc.Column, s string) (cdc.Value, error) {
	switch c.Type {
	case cdc.TypeInt32:
		n, err := strconv.ParseInt(s, 10, 32)
		return cdc.Value{Int: n}, err
	case cdc.TypeInt64:
		n, err := strconv.ParseInt(s, 10, 64)
		return cdc.Value{Int: n}, err
	case cdc.TypeUint64:
		n, err := strconv.ParseUint(s, 10, 64)
		return cdc.Value{Int: int64(n)}, err
	case cdc.TypeBool:
		switch s {
		case "0", "false":
			return cdc.Value{Int: 0}, nil
		case "1", "true":
			return cdc.Value{Int: 1}, nil
		}
		return cdc.Value{}, errors.New("want 0, 1, true or false")
	case cdc.TypeDecimal:
		return fillDecimal(c, s)
	case cdc.TypeFloat32, cdc.TypeFloat64:
		bits := 64
		if c.Type == cdc.TypeFloat32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(s, bits)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = errors.New("not a finite number")
		}
		return cdc.Value{Float: f}, err
	case cdc.TypeString:
		return fillString(c, s)
	case cdc.TypeBytes:
		b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
		if err != nil || !strings.HasPrefix(s, "0x") {
			return cdc.Value{}, errors.New("want 0x and hexadecimal digits")
		}
		return cdc.Value{Str: string(b)}, nil
	case cdc.TypeJSON:
		if !json.Valid([]byte(s)) {
			return cdc.Value{}, errors.New("not JSON")
		}
		return cdc.Value{Str: s}, nil
	case cdc.TypeDate:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return cdc.Value{}, errors.New("want YYYY-MM-DD")
		}
		return cdc.Value{Int: d.Unix() / 86400}, nil
	case cdc.TypeDateTime, cdc.TypeTimestamp:
		return fillTime(c, s)
	}
	return cdc.Value{}, fmt.Errorf("a %s column is not loaded from text (leave it out or NULL)", c.Type)
}

// fillDecimal checks decimal text against the column's precision and
// scale: [-]digits[.digits].
func fillDecimal(c *cdc.Column, s string) (cdc.Value, error) {
	digits := strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(digits, ".")
	ok := whole != "" && strings.Trim(whole, "0123456789") == "" && strings.Trim(frac, "0123456789") == "" &&
		(frac != "" || !strings.Contains(digits, "."))
	if !ok {
		return cdc.Value{}, errors.New("want [-]digits[.digits]")
	}
	if n := len(strings.TrimLeft(whole, "0")); n > c.Precision-c.Scale || len(frac) > c.Scale {
		return cdc.Value{}, fmt.Errorf("%s does not fit DECIMAL(%d,%d)", s, c.Precision, c.Scale)
	}
	return cdc.Value{Str: s}, nil
}

// fillString checks an ENUM's label or a SET's labels (comma-separated);
// other text is taken as it is.
func fillString(c *cdc.Column, s string) (cdc.Value, error) {
	if len(c.Values) == 0 {
		return cdc.Value{Str: s}, nil
	}
	labels := []string{s}
	if strings.HasPrefix(strings.ToLower(c.SQLType), "set") {
		labels = strings.Split(s, ",")
		if s == "" {
			labels = nil
		}
	}
	for _, l := range labels {
		if !slices.Contains(c.Values, l) {
			return cdc.Value{}, fmt.Errorf("%.70q is not one of its labels", l)
		}
	}
	return cdc.Value{Str: s}, nil
}

// fillTime parses YYYY-MM-DD HH:MM:SS[.ffffff] (or with a T): a DATETIME's
// wall clock, a TIMESTAMP's in UTC (or with its offset, RFC 3339).
func fillTime(c *cdc.Column, s string) (cdc.Value, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", time.RFC3339Nano} {
		if layout == time.RFC3339Nano && c.Type != cdc.TypeTimestamp {
			break
		}
		if t, err := time.Parse(layout, s); err == nil {
			if t.Nanosecond()%1000 != 0 {
				break
			}
			return cdc.Value{Int: t.UnixMicro()}, nil
		}
	}
	return cdc.Value{}, errors.New("want YYYY-MM-DD HH:MM:SS[.ffffff]")
}

// backfill is the backfill request waiting to be published.
type backfill struct {
	req  SnapshotRequest
	read bool // rows and info are read, at high
	rows [][]cdc.Value
	info *tableInfo
	high binlogPos
}

// backfillStep carries the waiting backfill request on, between source
// transactions, the stream at at: its rows are checked against the
// table's schema, read with the server's position after it, and published
// into tx (reporting true) once the stream has reached that position, so
// that the stream has taken every change of the schema before it (a DDL
// of the table streamed in between has them checked again). When a row
// does not fit, nothing is published and the request is recorded as
// failed.
func (sn *Snapshotter) backfillStep(ctx context.Context, tx *Tx, at streamAt) (bool, error) {
	f := sn.fill
	offset := f.req.Next - 1
	table := f.req.Tables[0]
	if !f.read {
		err := sn.readBackfill(ctx, f)
		if err != nil && (ctx.Err() != nil || connectionLost(err)) {
			return false, fmt.Errorf("backfill of %s: %w", table, err) // the run restarts and reads the request again
		}
		if err != nil {
			sn.failed = withFailure(sn.failed, table, offset, fmt.Errorf("backfill: %w", err))
			sn.metrics.countSnapshotFailure(table)
			sn.log.Error("backfill refused: nothing published for it; producer snapshot -list shows it", "table", table, "request", offset, "err", err)
			f.rows = nil
			f.high = binlogPos{}
		}
	}
	if (binlogPos{file: at.file, pos: at.pos}).before(f.high) {
		return false, nil // stream on to the schema's position
	}
	now := time.Now()
	for i, row := range f.rows {
		n := len(tx.Events)
		tx.Events = append(tx.Events, cdc.Event{Table: f.info.table, Op: cdc.OpRead, After: row,
			Position:   cdc.Position{Pos: uint64(offset), Row: uint64(i)}, // below every live change: see the file comment
			Source:     cdc.Source{ServerID: at.serverID, Row: uint32(n), Snapshot: true},
			CommitTime: now})
	}
	if len(f.rows) > 0 {
		sn.metrics.countSnapshotRows(table, len(f.rows))
		sn.log.Info("backfill published", "table", table, "request", offset, "rows", len(f.rows))
	}
	sn.requests, sn.fill = f.req.Next, nil
	st := sn.State()
	tx.Snapshot, tx.File, tx.EndPos, tx.CommitTime = &st, at.file, at.pos, now
	return true, nil
}

// readBackfill reads the schema of the request's table on a session of
// its own, then the server's position, and turns the request's rows into
// the table's values.
func (sn *Snapshotter) readBackfill(ctx context.Context, f *backfill) error {
	conn, err := snapshotConn(ctx, sn.dialer)
	if err != nil {
		return err
	}
	defer conn.Close()
	db, table := splitID(f.req.Tables[0])
	ts, err := readSchema(conn, db, table)
	if err != nil {
		return err
	}
	if len(ts.Columns) == 0 {
		return fmt.Errorf("table %s does not exist", f.req.Tables[0])
	}
	info, err := snapshotInfo(ts, sn.full)
	if err != nil {
		return err
	}
	if !info.table.HasKey() {
		return fmt.Errorf("table %s has no primary key: a backfilled row would be one more row, not a gap filled", info.table.ID())
	}
	high, err := binlogPosition(conn)
	if err != nil {
		return err
	}
	rows := make([][]cdc.Value, len(f.req.Rows))
	for i, r := range f.req.Rows {
		if rows[i], err = BackfillRow(info.table, f.req.Columns, r); err != nil {
			return fmt.Errorf("row %d: %w", i+1, err)
		}
	}
	f.rows, f.info, f.high, f.read = rows, info, high, true
	return nil
}
