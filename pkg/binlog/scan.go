package binlog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// TableScan reads one table's rows with the snapshot's reader (readChunk):
// in primary-key chunks, on a read-only session, as the same canonical
// cdc.Values the stream and the snapshot publish. `producer verify` reads
// the source with it. Not safe for concurrent use.
type TableScan struct {
	conn  *client.Conn
	info  *tableInfo
	conv  *converter
	cols  *columnPolicy // source.columns: the rows are masked as published
	table *cdc.Table    // as published
}

// Scanner opens TableScans of one source: directly, or through the SSH
// tunnel and TLS source.ssh and source.tls configure, set up once.
type Scanner struct {
	cfg *Config
	d   *dialer
}

// NewScanner prepares the connections to the source; nothing connects
// yet. log receives the tunnel's and TLS's warnings.
func NewScanner(cfg *Config, log *slog.Logger) (*Scanner, error) {
	d, err := newDialer(cfg, log)
	if err != nil {
		return nil, err
	}
	return &Scanner{cfg: cfg, d: d}, nil
}

// Close closes the tunnel, if any. The TableScans must be closed first.
func (s *Scanner) Close() { s.d.Close() }

// Open opens a read-only session and reads the schema of db.table from
// information_schema.
func (s *Scanner) Open(ctx context.Context, db, table string) (*TableScan, error) {
	conn, err := snapshotConn(ctx, s.d)
	if err != nil {
		return nil, err
	}
	ts, err := readSchema(conn, db, table)
	if err == nil && len(ts.Columns) == 0 {
		err = fmt.Errorf("table %s.%s does not exist", db, table)
	}
	scan := &TableScan{conn: conn, cols: newColumnPolicy(s.cfg)}
	if err == nil {
		if scan.info, err = snapshotInfo(ts, true); err == nil {
			scan.conv, err = newConverter(scan.info)
		}
	}
	if err == nil {
		scan.table, err = scan.cols.published(scan.info.table)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return scan, nil
}

// Table is the table's schema, as the producer publishes it: without the
// columns source.columns leaves out, masked columns as masked.
func (s *TableScan) Table() *cdc.Table { return s.table }

// Next reads up to limit rows whose primary key comes after the key values
// after (nil: from the first row), in key order; limit < 1 reads all the
// rest. A table without a primary key is read whole by one call with after
// nil. A key with a column that cannot be compared exactly (FLOAT, ENUM,
// SET, JSON, geometry) is an error, as for a snapshot.
func (s *TableScan) Next(ctx context.Context, after []cdc.Value, limit int) ([][]cdc.Value, error) {
	return s.published(readChunk(ctx, s.conn, s.info, s.conv, after, limit, ""))
}

// published masks rows read as source.columns says (the key columns,
// which after and through name, are never masked).
func (s *TableScan) published(rows [][]cdc.Value, err error) ([][]cdc.Value, error) {
	if err != nil {
		return nil, err
	}
	return rows, s.cols.applyRows(s.info.table, rows)
}

// Range reads the rows whose primary key comes after after (nil: from
// the first row) and is at most through (nil: to the last row), in key
// order: a key range read again (`producer verify` re-checking the keys
// BigQuery may not have applied yet).
func (s *TableScan) Range(ctx context.Context, after, through []cdc.Value) ([][]cdc.Value, error) {
	rows, _, err := readBounded(ctx, s.conn, s.info, s.conv, after, 0, "", chunkBound{through: through})
	return s.published(rows, err)
}

// Estimate is information_schema's estimate of the table's row count, 0
// when unknown.
func (s *TableScan) Estimate() int64 {
	t := s.info.table
	res, err := s.conn.Execute("SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.Database, t.Name)
	if err != nil {
		return 0
	}
	defer res.Close()
	n, _ := res.GetInt(0, 0)
	return n
}

// Close ends the session.
func (s *TableScan) Close() error { return s.conn.Close() }

// CapturedTables lists the base tables source.include and source.exclude
// capture, as "database.table", sorted.
func (s *Scanner) CapturedTables(ctx context.Context) ([]string, error) {
	cfg := s.cfg
	conn, err := s.d.dial(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	res, err := conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'`)
	if err != nil {
		return nil, fmt.Errorf("list tables on %s: %w", cfg.addr(), err)
	}
	defer res.Close()
	var out []string
	for i := range res.RowNumber() {
		if db, t := text(res, i, 0), text(res, i, 1); Captures(cfg.Include, cfg.Exclude, db, t) {
			out = append(out, db+"."+t)
		}
	}
	slices.Sort(out)
	return out, nil
}
