package binlog

// query.go: an operator's SELECT over the source (producer backfill
// -query), for historical rows such as an archive table's. The query is
// the operator's SQL, run with the producer's credentials, so it is held
// to one read: it must start with SELECT or WITH, hold no ';' and no INTO,
// prepare as a single statement without placeholders that returns
// columns, and it runs in a read-only transaction (the server refuses a
// write there), within source.snapshot_query_timeout.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// queryStart and queryInto are CheckQuery's rules of the text.
var (
	queryStart = regexp.MustCompile(`(?is)^(select|with)\b`)
	queryInto  = regexp.MustCompile(`(?i)\binto\b`)
)

// maxQuery bounds the text of a query.
const maxQuery = 64 << 10

// CheckQuery checks the text of an operator's backfill query: one SELECT
// (or WITH ... SELECT), no ';', no INTO (it would write a file or set a
// variable). The server checks the rest (Scanner.Query).
func CheckQuery(q string) error {
	q = strings.TrimSpace(q)
	switch {
	case len(q) > maxQuery:
		return fmt.Errorf("%d bytes: at most %d", len(q), maxQuery)
	case !queryStart.MatchString(q):
		return errors.New("want a SELECT (or WITH ... SELECT) statement")
	case strings.Contains(q, ";"):
		return errors.New("holds a ';': want one statement (and no ';' in its literals)")
	case queryInto.MatchString(q):
		return errors.New("holds INTO: a backfill query only reads (and has no INTO in its literals)")
	}
	return nil
}

// Schema returns the current schema of db.table from information_schema,
// every column as the stream reads it (source.columns not applied).
func (s *Scanner) Schema(ctx context.Context, db, table string) (*cdc.Table, error) {
	conn, err := snapshotConn(ctx, s.d)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ts, err := readSchema(conn, db, table)
	if err != nil {
		return nil, err
	}
	if len(ts.Columns) == 0 {
		return nil, fmt.Errorf("table %s.%s does not exist", db, table)
	}
	info, err := snapshotInfo(ts, true)
	if err != nil {
		return nil, err
	}
	return info.table, nil
}

// Query runs the operator's query q (CheckQuery) on a read-only session
// and calls fn with each row: the result's column names and each value's
// text in the backfill file's form (nil: NULL): numbers in decimal, text
// in UTF-8, binary strings as 0x and hex digits, BIT as its number,
// temporal values in UTC.
func (s *Scanner) Query(ctx context.Context, q string, fn func(columns []string, row []*string) error) error {
	if err := CheckQuery(q); err != nil {
		return err
	}
	conn, err := s.d.dial(ctx, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, set := range []string{
		"SET SESSION time_zone = '+00:00', SESSION character_set_results = 'utf8mb4', SESSION sql_mode = ''",
		"SET SESSION TRANSACTION READ ONLY",
	} {
		if _, err := conn.Execute(set); err != nil {
			return fmt.Errorf("query session (%s): %w", set, err)
		}
	}
	if t := s.cfg.SnapshotQueryTimeout; t > 0 {
		if _, err := conn.Execute(fmt.Sprintf("SET SESSION max_statement_time = %g", t.Seconds())); err != nil {
			if _, err := conn.Execute(fmt.Sprintf("SET SESSION max_execution_time = %d", t.Milliseconds())); err != nil {
				return fmt.Errorf("query session: statement time limit: %w", err)
			}
		}
	}
	if err := checkPrepared(conn, q); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var fields []*mysql.Field
	var names []string
	var fnErr error
	var res mysql.Result
	err = conn.ExecuteSelectStreaming(q, &res, func(raw []mysql.FieldValue) error {
		if fnErr != nil {
			return nil // the rest of the result is drained
		}
		row := make([]*string, len(raw))
		for i := range raw {
			if row[i], fnErr = queryText(fields[i], &raw[i]); fnErr != nil {
				fnErr = fmt.Errorf("column %s: %w", names[i], fnErr)
				return nil
			}
		}
		fnErr = fn(names, row)
		return nil
	}, func(r *mysql.Result) error {
		fields = r.Fields
		names = make([]string, len(fields))
		for i, f := range fields {
			names[i] = string(f.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("query: %w", chunkErr(ctx, err))
	}
	return fnErr
}

// checkPrepared has the server check q without running it: one statement,
// no placeholders, a result with columns.
func checkPrepared(conn *client.Conn, q string) error {
	stmt, err := conn.Prepare(q)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer stmt.Close()
	if stmt.ParamNum() > 0 {
		return errors.New("query: has placeholders (?)")
	}
	if stmt.ColumnNum() == 0 {
		return errors.New("query: returns no rows: want a SELECT")
	}
	return nil
}

// binaryCharset is the character set number of binary strings.
const binaryCharset = 63

// queryText is the backfill text of a value of field f (nil: NULL).
func queryText(f *mysql.Field, v *mysql.FieldValue) (*string, error) {
	var s string
	switch v.Type {
	case mysql.FieldValueTypeNull:
		return nil, nil
	case mysql.FieldValueTypeUnsigned:
		s = strconv.FormatUint(v.AsUint64(), 10)
	case mysql.FieldValueTypeSigned:
		s = strconv.FormatInt(v.AsInt64(), 10)
	case mysql.FieldValueTypeFloat:
		s = strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	default:
		b := v.AsString()
		switch {
		case f.Type == mysql.MYSQL_TYPE_BIT:
			var n uint64
			if len(b) > 8 {
				return nil, errors.New("BIT wider than 64 bits")
			}
			for _, c := range b {
				n = n<<8 | uint64(c)
			}
			s = strconv.FormatUint(n, 10)
		case f.Charset == binaryCharset && isStringType(f.Type):
			s = "0x" + hex.EncodeToString(b)
		case !utf8.Valid(b):
			return nil, errors.New("not UTF-8")
		default:
			s = string(b)
		}
	}
	return &s, nil
}

// isStringType reports whether a result field of type t holds strings
// (binary ones with the binary character set).
func isStringType(t byte) bool {
	switch t {
	case mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_VARCHAR,
		mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB, mysql.MYSQL_TYPE_BLOB:
		return true
	}
	return false
}
