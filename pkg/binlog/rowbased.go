package binlog

// The binlog must carry every row change whole: binlog_format=ROW and
// binlog_row_image=FULL. `producer check` and the start of `producer run`
// refuse a server set otherwise (check.go), but a session can set either
// for itself (SET SESSION binlog_format=STATEMENT, binlog_row_image=MINIMAL),
// so the reader also checks every event: a row change that comes as a
// statement, or a row image without all of its table's columns, stops it
// before anything of that transaction is published.

import (
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// UnknowableError is a change the binlog does not carry exactly: the
// producer cannot publish it, and publishing a guess is worse than
// stopping. It names the table (when known), where the change is and the
// setting that caused it.
type UnknowableError struct {
	Table   string // "db.table"; "" when the statement does not tell
	File    string // binlog file and position of the event
	Pos     uint32
	GTID    string // the transaction's GTID, when known
	Setting string // binlog_format or binlog_row_image
	Reason  string
}

func (e *UnknowableError) Error() string {
	table := e.Table
	if table == "" {
		table = "a table the statement does not name"
	}
	at := fmt.Sprintf("%s:%d", e.File, e.Pos)
	if e.GTID != "" {
		at += " (GTID " + e.GTID + ")"
	}
	return fmt.Sprintf("%s at %s: %s; the change cannot be known exactly, so nothing of this transaction is published. "+
		"Fix: set %s=%s globally (RDS: in the DB parameter group) and keep every session from setting it, "+
		"then either exclude the table (source.exclude) or start after this transaction (source.start_position) and re-snapshot it (producer snapshot -tables)",
		table, at, e.Reason, e.Setting, map[string]string{"binlog_format": "ROW", "binlog_row_image": "FULL"}[e.Setting])
}

// writesCaptured reports whether a row change logged as a statement
// (parseDML) may have written a captured table, and which: one of tables,
// the tables it names, or, when it names none, "" for any table of its
// default database defaultDB that may be captured (any at all when it has
// none).
func (c *catalog) writesCaptured(tables []string, defaultDB string) (string, bool) {
	if len(tables) == 0 {
		return "", defaultDB == "" || c.databaseCaptured(defaultDB) || len(c.cfg.Include) == 0
	}
	for _, t := range tables {
		if db, name, _ := strings.Cut(t, "."); c.captured(db, name) {
			return t, true
		}
	}
	return "", false
}

// wholeImage checks that a row image of table info carries every column
// (present is its column bitmap): binlog_row_image=MINIMAL logs only the key
// in a before image and the changed columns in an after image, NOBLOB leaves
// out unchanged BLOB and TEXT columns.
func (s *stream) wholeImage(info *tableInfo, tx *Tx, h *replication.EventHeader, present []byte, image string) error {
	n := len(info.table.Columns)
	if allSet(present, n) {
		return nil
	}
	var missing []string
	for i := range n {
		if i>>3 >= len(present) || !bitSet(present, i) {
			missing = append(missing, info.table.Columns[i].Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &UnknowableError{Table: info.table.ID(), File: s.file, Pos: h.LogPos, GTID: tx.GTID, Setting: "binlog_row_image",
		Reason: fmt.Sprintf("the %s image lacks column(s) %s (the writing session had binlog_row_image MINIMAL or NOBLOB)", image, strings.Join(missing, ", "))}
}

// allSet reports whether bits 0..n-1 of bitmap are set.
func allSet(bitmap []byte, n int) bool {
	if len(bitmap) < (n+7)/8 {
		return false
	}
	for _, b := range bitmap[:n/8] {
		if b != 0xff {
			return false
		}
	}
	rest := n % 8
	return rest == 0 || bitmap[n/8]&(1<<rest-1) == 1<<rest-1
}
