package binlog

// lost.go: what the server can say, once the binlog a checkpoint points
// into is purged, of which tables changed in the lost range. The binlog is
// gone; what is left is the oldest file still on the server (the end of
// the lost range: streaming resumes at its start, so every change after
// it is read from the binlog itself) and each table's last change time,
// information_schema.TABLES.UPDATE_TIME. InnoDB keeps that time in memory
// only: NULL after a server restart and after the table left InnoDB's
// dictionary cache, and — measured on MariaDB 10.11 — moved by every
// committed row change, while CREATE_TIME moves with every ALTER (INSTANT
// too), RENAME and re-creation. A TRUNCATE moves neither, but its only
// effect is deleted rows, which no snapshot brings downstream either.
// The decision is the resume policy's (pkg/pipeline); this file only reads.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ChangeTimes is what the server knows of when each captured table last
// changed, read after the checkpoint's binlog was found purged.
type ChangeTimes struct {
	// Oldest is the oldest binlog file the server still has; "" when it
	// has none listed.
	Oldest string
	// MariaDB: the server is MariaDB, where the update times' behaviour
	// is verified (lost.go's comment).
	MariaDB bool
	// Started is when the server started, as its own clock has it (a
	// second late at most: Uptime counts whole seconds).
	Started time.Time
	// Tables holds the captured base tables, by "database.table".
	Tables map[string]TableTimes
}

// TableTimes is one table's row of information_schema.TABLES.
type TableTimes struct {
	Engine      string
	Partitioned bool
	// Created is CREATE_TIME, Updated UPDATE_TIME; zero when NULL.
	Created, Updated time.Time
}

// ChangeTimes reads the oldest binlog file the server has, when it
// started, and the change times of the tables the configuration captures.
// It uses a connection of its own, in UTC, so that the times convert
// without the session's daylight-saving folds.
func (r *Reader) ChangeTimes(ctx context.Context) (*ChangeTimes, error) {
	conn, err := r.q.dialer.dial(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	files, err := binaryLogs(conn)
	if err != nil {
		return nil, err
	}
	ct := &ChangeTimes{MariaDB: r.q.flavor == mysql.MariaDBFlavor, Tables: map[string]TableTimes{}}
	if len(files) > 0 {
		ct.Oldest = files[0]
	}
	if _, err := conn.Execute("SET time_zone = '+00:00'"); err != nil {
		return nil, fmt.Errorf("read the tables' change times: %w", err)
	}
	rows, err := checkQuery(conn, "SELECT UNIX_TIMESTAMP() AS now, VARIABLE_VALUE AS up FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'")
	if err != nil || len(rows) != 1 {
		// MySQL 5.7+ moved the status to performance_schema.
		rows, err = checkQuery(conn, "SELECT UNIX_TIMESTAMP() AS now, VARIABLE_VALUE AS up FROM performance_schema.global_status WHERE VARIABLE_NAME = 'Uptime'")
	}
	if err != nil || len(rows) != 1 {
		return nil, fmt.Errorf("read the server's uptime: %d rows, %v", len(rows), err)
	}
	now, err1 := strconv.ParseInt(rows[0]["now"], 10, 64)
	up, err2 := strconv.ParseInt(rows[0]["up"], 10, 64)
	if err1 != nil || err2 != nil || up < 0 {
		return nil, fmt.Errorf("the server's clock %q and uptime %q: not whole seconds", rows[0]["now"], rows[0]["up"])
	}
	ct.Started = time.Unix(now-up+1, 0)
	rows, err = checkQuery(conn, `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, ENGINE AS engine, CREATE_OPTIONS AS options,
		UNIX_TIMESTAMP(CREATE_TIME) AS created, UNIX_TIMESTAMP(UPDATE_TIME) AS updated
		FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')`)
	if err != nil {
		return nil, fmt.Errorf("read the tables' change times: %w", err)
	}
	for _, row := range rows {
		if !r.catalog.captured(row["db"], row["t"]) {
			continue
		}
		tt := TableTimes{Engine: row["engine"], Partitioned: strings.Contains(strings.ToLower(row["options"]), "partitioned")}
		if tt.Created, err = unixSeconds(row["created"]); err == nil {
			tt.Updated, err = unixSeconds(row["updated"])
		}
		if err != nil {
			return nil, fmt.Errorf("change times of %s.%s: %w", row["db"], row["t"], err)
		}
		ct.Tables[row["db"]+"."+row["t"]] = tt
	}
	return ct, nil
}

// unixSeconds reads UNIX_TIMESTAMP's answer (whole seconds, or with
// decimals); "" (NULL) is the zero time.
func unixSeconds(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	whole, _, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, fmt.Errorf("time %q: not a Unix time", s)
	}
	return time.Unix(n, 0), nil
}

// Purged reports whether the binlog file is older than oldest, the oldest
// file a server has: both of one server's naming (the same base name and
// a numbered suffix), the file's number lower.
func Purged(file, oldest string) bool {
	base, n := splitFileName(file)
	obase, on := splitFileName(oldest)
	return base != "" && base == obase && n > 0 && n < on
}

// splitFileName splits "mysql-bin.000042" into "mysql-bin" and 42; "" and
// 0 when the name has no numbered suffix.
func splitFileName(name string) (string, uint64) {
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return "", 0
	}
	n, err := strconv.ParseUint(name[dot+1:], 10, 64)
	if err != nil {
		return "", 0
	}
	return name[:dot], n
}
