package binlog

// repair.go: publishing chosen rows of a table again, by primary key
// (producer verify -repair), with the snapshot's high-watermark rule. A
// repair request names a table and up to MaxRepairKeys keys. From the
// moment the snapshotter takes it, the stream's changes of the table are
// remembered (Observe); at least recentWindow later the keys are read on a
// session of their own (placeholders only: the keys come from the signal
// topic, which is not trusted), and the server's position H is taken right
// after. Once the stream reaches H, each key read goes out as a snapshot
// row (op r) and each key the source no longer has as a delete with a
// key-only before image, in one transaction at the stream's position: the
// same sequence rule as a chunk's, so a key the stream changed since the
// request was taken is left to the stream (its change is newer) and no
// repair overwrites a later change. The request's offset goes into the
// checkpoint with that transaction, and later requests wait for it: a
// restart before it reads the request again.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// MaxRepairKeys bounds the keys of one repair request (a signal record);
// more keys take more requests.
const MaxRepairKeys = 1000

// MaxRepairKeyBytes bounds the text of one key, all its columns together
// (InnoDB's longest index key is 3,072 bytes).
const MaxRepairKeyBytes = 3072

// maxKeyColumns bounds the columns of a key (MariaDB's limit of an index).
const maxKeyColumns = 32

// CheckRepairKeys checks what can be checked of a repair request's keys
// before the table's schema is known: 1 to MaxRepairKeys keys, each of
// the same number of values (at most 32), valid UTF-8, at most
// MaxRepairKeyBytes per key. The values' types are checked against the
// key columns when the keys are read.
func CheckRepairKeys(keys [][]string) error {
	if len(keys) == 0 {
		return errors.New("no keys")
	}
	if len(keys) > MaxRepairKeys {
		return fmt.Errorf("%d keys: at most %d in one request", len(keys), MaxRepairKeys)
	}
	n := len(keys[0])
	for i, k := range keys {
		if len(k) == 0 || len(k) > maxKeyColumns {
			return fmt.Errorf("key %d has %d values: want 1 to %d", i+1, len(k), maxKeyColumns)
		}
		if len(k) != n {
			return fmt.Errorf("key %d has %d values, key 1 has %d", i+1, len(k), n)
		}
		size := 0
		for _, v := range k {
			if !utf8.ValidString(v) {
				return fmt.Errorf("key %d: a value is not UTF-8", i+1)
			}
			size += len(v)
		}
		if size > MaxRepairKeyBytes {
			return fmt.Errorf("key %d: %d bytes, at most %d", i+1, size, MaxRepairKeyBytes)
		}
	}
	return nil
}

// repair is the repair request being carried out; see the file comment.
type repair struct {
	req   SnapshotRequest
	table string    // req.Tables[0]
	since time.Time // the table's changes are remembered from here on
	// changed are the keys (keyOf, by the primary key) of the table the
	// stream changed since since: the stream publishes them.
	changed map[string]struct{}
	read    bool       // rows and gone are read, high is set
	info    *tableInfo // the table as the keys were read
	rows    [][]cdc.Value
	gone    [][]cdc.Value // key-only rows of the keys the source does not have
	high    binlogPos
}

// newRepair starts carrying out req: its table's changes are remembered
// from now on.
func newRepair(req SnapshotRequest) *repair {
	return &repair{req: req, table: req.Tables[0], since: time.Now(), changed: map[string]struct{}{}}
}

// restart forgets what was read and remembered: the keys are read again
// later (a DDL of the table, too many changes remembered).
func (f *repair) restart() {
	f.since, f.changed, f.read, f.info, f.rows, f.gone = time.Now(), map[string]struct{}{}, false, nil, nil, nil
}

// repairStep carries the waiting repair on, between source transactions,
// the stream at at: it reads the keys once recentWindow has passed since
// the request was taken, and publishes them into tx (reporting true) once
// the stream has reached the position read after them. A repair the source
// refuses (no such table, keys that do not fit its primary key) is
// recorded as failed and its offset published.
func (sn *Snapshotter) repairStep(ctx context.Context, tx *Tx, at streamAt) (bool, error) {
	f := sn.fix
	if !f.read {
		if time.Since(f.since) < recentWindow {
			return false, nil
		}
		err := sn.readRepair(ctx, f)
		if err != nil && (ctx.Err() != nil || connectionLost(err)) {
			return false, fmt.Errorf("repair of %s: %w", f.table, err) // the run restarts and reads the request again
		}
		if err != nil {
			offset := f.req.Next - 1
			sn.failed = withFailure(sn.failed, f.table, offset, fmt.Errorf("repair: %w", err))
			sn.metrics.countSnapshotFailure(f.table)
			sn.log.Error("repair refused: nothing published for it; producer snapshot -list shows it", "table", f.table, "request", offset, "err", err)
			sn.endRepair(tx, at, time.Now())
			return true, nil
		}
	}
	if (binlogPos{file: at.file, pos: at.pos}).before(f.high) {
		return false, nil // stream on to the high watermark
	}
	now := time.Now()
	match := matchKey(f.info.key)
	skipped := 0
	add := func(op cdc.Op, row []cdc.Value) {
		if _, changed := f.changed[keyOf(f.info.table, match, row)]; changed {
			skipped++ // the stream published a newer change of it
			return
		}
		n := len(tx.Events)
		ev := cdc.Event{Table: f.info.table, Op: op,
			Position:   cdc.Position{Epoch: at.epoch, File: at.fileIndex, Pos: at.pos, Row: uint64(n)},
			Source:     cdc.Source{ServerID: at.serverID, File: at.file, Pos: at.pos, Row: uint32(n), Snapshot: true},
			CommitTime: now}
		if op == cdc.OpDelete {
			ev.Before, ev.Source.BeforeKeyOnly = row, true
		} else {
			ev.After = row
		}
		tx.Events = append(tx.Events, ev)
	}
	for _, row := range f.rows {
		add(cdc.OpRead, row)
	}
	published := len(tx.Events)
	for _, row := range f.gone {
		add(cdc.OpDelete, row)
	}
	if published > 0 {
		sn.metrics.countSnapshotRows(f.table, published)
	}
	sn.log.Info("repair published", "table", f.table, "request", f.req.Next-1, "keys", len(f.req.Keys),
		"rows", published, "deletes", len(tx.Events)-published, "left_to_the_stream", skipped)
	sn.endRepair(tx, at, now)
	return true, nil
}

// endRepair ends the waiting repair: its request's offset goes out in tx
// with the snapshot's state, at the stream's position at.
func (sn *Snapshotter) endRepair(tx *Tx, at streamAt, now time.Time) {
	sn.requests = sn.fix.req.Next
	sn.fix = nil
	st := sn.State()
	tx.Snapshot, tx.File, tx.EndPos, tx.CommitTime = &st, at.file, at.pos, now
}

// readRepair reads the keys of f on a session of its own, then the high
// watermark; the keys the source does not have become key-only rows.
func (sn *Snapshotter) readRepair(ctx context.Context, f *repair) error {
	conn, err := snapshotConn(ctx, sn.dialer)
	if err != nil {
		return err
	}
	defer conn.Close()
	db, table := splitID(f.table)
	ts, err := readSchema(conn, db, table)
	if err != nil {
		return err
	}
	if len(ts.Columns) == 0 {
		return fmt.Errorf("table %s does not exist", f.table)
	}
	info, err := snapshotInfo(ts, sn.full)
	if err != nil {
		return err
	}
	conv, err := newConverter(info)
	if err != nil {
		return err
	}
	keys, err := repairKeys(info, f.req.Keys)
	if err != nil {
		return err
	}
	q, args, err := keysQuery(info, keys)
	if err != nil {
		return err
	}
	rows, _, err := readQuery(ctx, conn, info, conv, q, args, len(keys), "by key", chunkBound{})
	if err != nil {
		return err
	}
	high, err := binlogPosition(conn)
	if err != nil {
		return err
	}
	match := matchKey(info.key)
	found := make(map[string]struct{}, len(rows))
	for _, row := range rows {
		found[keyOf(info.table, match, row)] = struct{}{}
	}
	var gone [][]cdc.Value
	for _, k := range keys {
		row := make([]cdc.Value, len(info.table.Columns))
		for i := range row {
			row[i].Null = true
		}
		for j, c := range info.key {
			row[c] = k[j]
		}
		if _, ok := found[keyOf(info.table, match, row)]; !ok {
			gone = append(gone, row)
		}
	}
	f.info, f.rows, f.gone, f.high, f.read = info, rows, gone, high, true
	return nil
}

// repairKeys turns the keys' text into the key columns' values. Only
// integer, text and date keys are repaired by key: the text of other
// types (decimals, times, binary) does not name one stored value exactly.
func repairKeys(info *tableInfo, texts [][]string) ([][]cdc.Value, error) {
	t := info.table
	if len(info.key) == 0 {
		return nil, fmt.Errorf("table %s has no primary key: a repair reads rows by primary key (snapshot it again with producer snapshot -tables %s)", t.ID(), t.ID())
	}
	out := make([][]cdc.Value, len(texts))
	for i, k := range texts {
		if len(k) != len(info.key) {
			return nil, fmt.Errorf("key %d has %d values, the primary key of %s has %d columns", i+1, len(k), t.ID(), len(info.key))
		}
		vals := make([]cdc.Value, len(k))
		for j, c := range info.key {
			v, err := parseKeyValue(&t.Columns[c], k[j])
			if err != nil {
				return nil, fmt.Errorf("key %d column %s: %w", i+1, t.Columns[c].Name, err)
			}
			vals[j] = v
		}
		out[i] = vals
	}
	return out, nil
}

// parseKeyValue parses the text of a key value of column c: integers and
// dates as a backfill's values (fillValue), text as it is.
func parseKeyValue(c *cdc.Column, s string) (cdc.Value, error) {
	switch c.Type {
	case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeUint64, cdc.TypeDate:
		return fillValue(c, s)
	case cdc.TypeString:
		return cdc.Value{Str: s}, nil
	}
	return cdc.Value{}, fmt.Errorf("a %s key is not repaired by key (integer, text and date keys are): snapshot the rows again with producer snapshot -where", c.Type)
}

// keysQuery is the SELECT of the rows of keys:
// WHERE (k1 = ? AND k2 = ?) OR (k1 = ? AND k2 = ?) ...
func keysQuery(info *tableInfo, keys [][]cdc.Value) (string, []any, error) {
	t := info.table
	eq := make([]string, len(info.key))
	for j, k := range info.key {
		mark, err := keyMark(info, k)
		if err != nil {
			return "", nil, err
		}
		eq[j] = quoteName(t.Columns[k].Name) + " = " + mark
	}
	one := strings.Join(eq, " AND ")
	ors := make([]string, len(keys))
	args := make([]any, 0, len(keys)*len(info.key))
	for i, vals := range keys {
		ors[i] = one
		for j, k := range info.key {
			a, err := keyArg(&t.Columns[k], vals[j])
			if err != nil {
				return "", nil, fmt.Errorf("key column %s: %w", t.Columns[k].Name, err)
			}
			args = append(args, a)
		}
	}
	return selectList(info) + " WHERE (" + strings.Join(ors, ") OR (") + ")", args, nil
}

// observeRepair remembers the keys of a change of the waiting repair's
// table (Observe). Past maxRecent of them the repair starts over.
func (sn *Snapshotter) observeRepair(info *tableInfo, before, after []cdc.Value) {
	f := sn.fix
	if f == nil {
		return
	}
	if db, table := splitID(f.table); info.table.Database != db || info.table.Name != table || len(info.table.PrimaryKey) == 0 {
		return
	}
	key := matchKey(info.table.PrimaryKey)
	for _, row := range [2][]cdc.Value{before, after} {
		if row != nil {
			f.changed[keyOf(info.table, key, row)] = struct{}{}
		}
	}
	if len(f.changed) >= maxRecent {
		f.restart()
	}
}
