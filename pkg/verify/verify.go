// Package verify compares source tables with their BigQuery tables
// (`producer verify`): the source is read in primary-key chunks with the
// snapshot's reader (binlog.TableScan), BigQuery through the Storage Read
// API (bigquery.TableReader) with a row restriction on the same key range;
// both sides become the canonical text of the BigQuery value the consumer
// writes (bigquery.Text*), and each range is compared by row count and an
// order-independent checksum. A range that differs is compared key by key,
// naming the keys missing from BigQuery, extra in it, or different (with
// the columns that differ). BigQuery reads an upsert (CDC) table as of its
// last background apply, up to max_staleness old, so the keys of such a
// table that differ are pending: their ranges are read again until they
// match or max_staleness (and a margin) has passed (settle).
//
// Why no bisection: the Storage Read API returns rows, not aggregates, so
// a range's BigQuery rows are already in memory when its checksum is
// known; comparing them by key there costs nothing, where bisecting would
// read them again.
package verify

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// Options tune a verification.
type Options struct {
	// ChunkRows is how many source rows one key range holds; default 50,000.
	ChunkRows int
	// MaxShown is how many differences are printed per table; default 100.
	MaxShown int
	// ProgressEvery is how often a progress line is printed while a table
	// is compared; default 5s.
	ProgressEvery time.Duration
	// Repair collects, in each Result's Repair, the keys that differ, for
	// a repair request (producer verify -repair).
	Repair bool
	// MaxWait bounds how long the keys of an upsert table that differ but
	// may not be applied yet (pending) are re-checked: until they settle,
	// or for the table's max_staleness and Margin, whichever is shorter;
	// 0 reports them at once, without re-checking.
	MaxWait time.Duration
	// Margin is added to max_staleness for the consumer's lag; default 1m.
	Margin time.Duration
	// RecheckEvery is how often pending keys are re-checked; default 5s.
	RecheckEvery time.Duration
}

// ReadPath is how verify reads BigQuery tables: the Storage Read API.
// There is no query path: an upsert table the Storage Read API cannot
// read (no max_staleness) is refused.
const ReadPath = "Storage Read API"

// Result is the outcome of one table.
type Result struct {
	Table        string // database.table
	BigQuery     string // dataset.table
	SourceRows   int64
	BigQueryRows int64
	Ranges       int
	Differences  int
	Whole        bool // compared as one range (no key, or a key BigQuery orders differently)
	Took         time.Duration
	// ReadPath is how BigQuery was read ("" when the table is missing).
	ReadPath string
	// Upsert is a BigQuery table with a primary key (CDC); MaxStaleness
	// is its max_staleness.
	Upsert       bool
	MaxStaleness time.Duration
	// Pending is how many keys of an upsert table differed at first but
	// may not have been applied yet; Settled how many of them matched
	// when re-checked. Pending keys that still differ are Differences.
	Pending, Settled int
	// SourceSum and BigQuerySum are the tables' checksums (all rows, all
	// columns, order-independent), equal when the tables are.
	SourceSum, BigQuerySum Checksum
	// Repair are the keys that differ, with Options.Repair (repair.go).
	Repair Repair
}

// Checksum is an order-independent checksum of rows: the row count and
// the sums (mod 2^64) of two 64-bit halves of each row's SHA-256.
type Checksum struct {
	n    int64
	a, b uint64
}

// add adds o's rows.
func (c *Checksum) add(o Checksum) { c.n, c.a, c.b = c.n+o.n, c.a+o.a, c.b+o.b }

// sub takes away o's rows (a range read again).
func (c *Checksum) sub(o Checksum) { c.n, c.a, c.b = c.n-o.n, c.a-o.a, c.b-o.b }

// String is 12 hex digits of the checksum.
func (c Checksum) String() string {
	return fmt.Sprintf("%012x", (c.a^c.b^uint64(c.n))>>16)
}

// Verifier compares tables; one table at a time.
type Verifier struct {
	src      *binlog.Scanner
	bqc      *bigquery.Config
	opts     Options
	reader   *bigquery.TableReader
	out      io.Writer // differences
	progress io.Writer // progress lines
}

// New connects to BigQuery and prepares the connections to the source
// (log: the SSH tunnel's and TLS's warnings). Differences are printed to
// out, progress lines to progress.
func New(ctx context.Context, src *binlog.Config, bqc *bigquery.Config, opts Options, log *slog.Logger, out, progress io.Writer) (*Verifier, error) {
	if opts.ChunkRows < 1 {
		opts.ChunkRows = 50_000
	}
	if opts.MaxShown < 1 {
		opts.MaxShown = 100
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 5 * time.Second
	}
	if opts.Margin <= 0 {
		opts.Margin = time.Minute
	}
	if opts.RecheckEvery <= 0 {
		opts.RecheckEvery = 5 * time.Second
	}
	scanner, err := binlog.NewScanner(src, log)
	if err != nil {
		return nil, err
	}
	r, err := bigquery.NewTableReader(ctx, bqc)
	if err != nil {
		scanner.Close()
		return nil, err
	}
	return &Verifier{src: scanner, bqc: bqc, opts: opts, reader: r, out: out, progress: progress}, nil
}

// Close closes the BigQuery clients and the source's tunnel.
func (v *Verifier) Close() error {
	v.src.Close()
	return v.reader.Close()
}

// ParseTables returns the tables of list, comma-separated database.table.
func ParseTables(list string) ([]string, error) {
	var ids []string
	for _, t := range strings.Split(list, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if db, name, ok := strings.Cut(t, "."); !ok || db == "" || name == "" {
			return nil, fmt.Errorf("%q is not database.table", t)
		}
		ids = append(ids, t)
	}
	return ids, nil
}

// Tables returns ids, or when there are none the tables source.include and
// source.exclude capture, sorted; an error when they capture none.
func (v *Verifier) Tables(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) > 0 {
		return ids, nil
	}
	ids, err := v.src.CapturedTables(ctx)
	if err == nil && len(ids) == 0 {
		err = errors.New("source.include/exclude capture no table: nothing to verify")
	}
	return ids, err
}

// Table compares the source table id ("database.table") with its BigQuery
// table. An error means the comparison could not be made; differences are
// counted in the result.
func (v *Verifier) Table(ctx context.Context, id string) (Result, error) {
	start := time.Now()
	db, name, ok := strings.Cut(id, ".")
	if !ok {
		return Result{}, fmt.Errorf("table %q: want database.table", id)
	}
	scan, err := v.src.Open(ctx, db, name)
	if err != nil {
		return Result{}, fmt.Errorf("verify %s: %w", id, err)
	}
	defer scan.Close()
	r := &run{v: v, id: id, t: scan.Table(), scan: scan}
	r.res = Result{Table: id, BigQuery: v.bqc.Dataset + "." + v.bqc.TableName(db, name)}
	err = r.compare(ctx)
	r.res.Took = time.Since(start)
	if err != nil {
		return r.res, fmt.Errorf("verify %s with %s: %w", id, r.res.BigQuery, err)
	}
	return r.res, nil
}

// run is one table's comparison.
type run struct {
	v    *Verifier
	id   string
	t    *cdc.Table
	scan *binlog.TableScan
	res  Result

	info      *bigquery.TableInfo
	cols      []bigquery.Column // BigQuery columns read: the source's, then metadata columns of a changelog
	names     []string          // their names
	changelog bool              // BigQuery holds changes (append mode or no key), reduced to the latest row per key here
	ordered   bool              // key ranges mean the same rows on both sides
	est       int64             // source row estimate
	lastShown time.Time         // last progress line
	shown     int               // differences printed
	keyNames  []string          // BigQuery names of the key columns
	keyTypes  []string
	pending   []*pendingRange // ranges of an upsert table with keys that may not be applied yet
}

// keyRange is a compared range: keys in (after, hi], nil bounds open, or
// the whole table.
type keyRange struct {
	after, hi []cdc.Value
	whole     bool
}

// diff is one difference: kind (missing, extra, different), the key's
// text, the detail, and the key's values as a repair names them.
type diff struct {
	kind, key, detail string
	vals              []string
}

// pendingRange is a range whose differing keys are re-checked: its rows
// and checksums as last counted in the result, and the keys that have
// differed in every check so far, in key order.
type pendingRange struct {
	rg               keyRange
	srcRows, dstRows int64
	srcSum, dstSum   Checksum
	keys             []string
	diffs            map[string]diff
}

func (r *run) compare(ctx context.Context) error {
	t := r.t
	info, err := r.v.reader.Describe(ctx, r.v.bqc.TableName(t.Database, t.Name))
	if errors.Is(err, bigquery.ErrTableNotFound) {
		rows, err := r.scan.Next(ctx, nil, 1)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			r.report("missing table", "", fmt.Sprintf("%s does not exist in BigQuery (the source has about %d rows)", r.res.BigQuery, max(r.scan.Estimate(), 1)), nil)
		}
		return nil
	}
	if err != nil {
		return err
	}
	names := avro.FieldNames(t)
	for i, n := range names {
		n = bigquery.ColumnName(n)
		names[i] = n
		c := info.Column(n)
		if c == nil {
			r.report("missing column", "", fmt.Sprintf("column %s (source %s) does not exist in BigQuery", n, t.Columns[i].Name), nil)
			return nil
		}
		r.cols = append(r.cols, *c)
	}
	r.res.ReadPath = ReadPath
	r.res.Upsert, r.res.MaxStaleness = len(info.Key) > 0, info.MaxStaleness
	if r.res.Upsert && info.MaxStaleness <= 0 {
		// "Stream table updates with change data capture", "CDC
		// limitations": the Storage Read API does not read a table that
		// takes CDC changes and has no max_staleness.
		return fmt.Errorf("%s takes upserts (CDC) and has no max_staleness, and BigQuery's Storage Read API (verify's only read path) does not read such a table: "+
			"set bigquery.max_staleness (e.g. 1m) for new tables and give this one a max_staleness: ALTER TABLE %s SET OPTIONS (max_staleness = INTERVAL 1 MINUTE)",
			r.res.BigQuery, "`"+r.res.BigQuery+"`")
	}
	r.changelog = len(info.Key) == 0
	if r.changelog {
		for _, m := range []string{bigquery.ColOp, bigquery.ColSequence, bigquery.ColIngestedAt} {
			c := info.Column(m)
			if c == nil {
				return fmt.Errorf("%s has no primary key and no column %s: it is neither an upsert table nor a strait changelog", r.res.BigQuery, m)
			}
			r.cols = append(r.cols, *c)
		}
	} else if want := keyNames(t, names); !slices.EqualFunc(info.Key, want, strings.EqualFold) {
		r.report("primary key", "", fmt.Sprintf("BigQuery's primary key is (%s), the source's (%s)", strings.Join(info.Key, ", "), strings.Join(want, ", ")), nil)
	}
	r.info = info
	for _, c := range r.cols {
		r.names = append(r.names, c.Name)
	}
	r.keyNames = keyNames(t, names)
	if r.v.opts.Repair {
		r.res.Repair.Refused = repairable(t)
	}
	r.ordered = t.HasKey()
	for _, k := range t.PrimaryKey {
		r.keyTypes = append(r.keyTypes, r.cols[k].Type)
		if !sameOrder(t.Columns[k].Type, r.cols[k].Type) {
			r.ordered = false
		}
	}
	r.res.Whole = !r.ordered
	r.est = r.scan.Estimate()
	r.lastShown = time.Now()
	if !r.ordered {
		err = r.whole(ctx)
	} else {
		err = r.ranges(ctx)
	}
	if err != nil {
		return err
	}
	return r.settle(ctx)
}

// ranges compares the table range by range: (previous chunk's last key,
// this chunk's last key], the first range open below and the last open
// above, so that the ranges cover every key BigQuery may hold.
func (r *run) ranges(ctx context.Context) error {
	var after []cdc.Value
	for {
		rows, err := r.scan.Next(ctx, after, r.v.opts.ChunkRows)
		if err != nil {
			return err
		}
		last := len(rows) < r.v.opts.ChunkRows
		var hi []cdc.Value
		if !last {
			hi = keyOf(r.t, rows[len(rows)-1])
		}
		if err := r.compareRange(ctx, r.sourceCells(rows), keyRange{after: after, hi: hi}); err != nil {
			return err
		}
		r.showProgress()
		if last {
			return nil
		}
		after = hi
	}
}

// whole compares the table as one range: a table without a primary key,
// or with a key column BigQuery orders differently from the source (text
// compared in a collation, floating point).
func (r *run) whole(ctx context.Context) error {
	src, err := r.sourceWhole(ctx)
	if err != nil {
		return err
	}
	return r.compareRange(ctx, src, keyRange{whole: true})
}

// sourceWhole reads every source row, in chunks when the table has a key.
func (r *run) sourceWhole(ctx context.Context) ([][]bigquery.Cell, error) {
	if !r.t.HasKey() {
		rows, err := r.scan.Next(ctx, nil, 0)
		if err != nil {
			return nil, err
		}
		return r.sourceCells(rows), nil
	}
	var src [][]bigquery.Cell
	var after []cdc.Value
	base := r.res.SourceRows
	for {
		rows, err := r.scan.Next(ctx, after, r.v.opts.ChunkRows)
		if err != nil {
			return nil, err
		}
		src = append(src, r.sourceCells(rows)...)
		r.res.SourceRows += int64(len(rows))
		r.showProgress()
		if len(rows) < r.v.opts.ChunkRows {
			break
		}
		after = keyOf(r.t, rows[len(rows)-1])
	}
	r.res.SourceRows = base // counted by compareRange
	return src, nil
}

func (r *run) sourceCells(rows [][]cdc.Value) [][]bigquery.Cell {
	out := make([][]bigquery.Cell, len(rows))
	for i, row := range rows {
		cells := make([]bigquery.Cell, len(row))
		for j, v := range row {
			cells[j] = r.cell(j, v)
		}
		out[i] = cells
	}
	return out
}

// cell is the canonical text of source value v of column j as BigQuery
// holds it: SourceCell, but a FLOAT or DOUBLE primary-key column is a
// STRING of its TextFloatKey (README, "Primary-key columns"). A binary
// key column written as a STRING holds SourceCell's text already.
func (r *run) cell(j int, v cdc.Value) bigquery.Cell {
	c := &r.t.Columns[j]
	if !v.Null && r.cols[j].Type == "STRING" {
		switch c.Type {
		case cdc.TypeFloat32:
			return bigquery.Cell{Text: bigquery.TextFloatKey(float64(float32(v.Float)))}
		case cdc.TypeFloat64:
			return bigquery.Cell{Text: bigquery.TextFloatKey(v.Float)}
		}
	}
	return SourceCell(c, v)
}

// compareRange compares the source rows of a range with BigQuery's rows
// in it: count and checksum, then key by key when they differ. The keys
// of an upsert table that differ are pending (settle) unless MaxWait is
// 0; other differences are reported.
func (r *run) compareRange(ctx context.Context, src [][]bigquery.Cell, rg keyRange) error {
	dst, err := r.readRange(ctx, rg)
	if err != nil {
		return err
	}
	r.res.Ranges++
	r.res.SourceRows += int64(len(src))
	r.res.BigQueryRows += int64(len(dst))
	a, b := checksum(src), checksum(dst)
	r.res.SourceSum.add(a)
	r.res.BigQuerySum.add(b)
	if a == b {
		return nil
	}
	if !r.t.HasKey() {
		r.diffRows(src, dst)
		return nil
	}
	keys, diffs := r.diffKeys(src, dst)
	if !r.res.Upsert || r.v.opts.MaxWait <= 0 {
		for _, k := range keys {
			d := diffs[k]
			r.report(d.kind, d.key, d.detail, d.vals)
		}
		return nil
	}
	r.res.Pending += len(keys)
	r.pending = append(r.pending, &pendingRange{rg: rg, srcRows: int64(len(src)), dstRows: int64(len(dst)), srcSum: a, dstSum: b, keys: keys, diffs: diffs})
	return nil
}

// readRange reads BigQuery's rows of a range.
func (r *run) readRange(ctx context.Context, rg keyRange) ([][]bigquery.Cell, error) {
	cond := ""
	if !rg.whole {
		var err error
		if cond, err = r.restriction(rg.after, rg.hi); err != nil {
			return nil, err
		}
	}
	return r.readBigQuery(ctx, cond)
}

// settle re-checks the pending keys of an upsert table. A read of such a
// table sees it as of its last background apply, up to max_staleness old
// ("Stream table updates with change data capture", "Manage table
// staleness"), so a key the consumer has written since differs for a
// while. Each pending range is read again on both sides every
// RecheckEvery; a key that matches once has settled. The re-checks end
// when no key is pending or, after one last check, at the deadline:
// max_staleness and Margin after the table was read (every background
// apply after that has seen what the consumer had written by then),
// bounded by MaxWait. The keys that differed in every check are
// reported.
func (r *run) settle(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
	}
	wait := min(r.res.MaxStaleness+r.v.opts.Margin, r.v.opts.MaxWait)
	deadline := time.Now().Add(wait)
	fmt.Fprintf(r.v.progress, "verify %s: %d keys differ but may not be applied yet (max_staleness %s): pending, re-checked until they match or for %s\n",
		r.id, r.res.Pending, r.res.MaxStaleness, wait.Round(time.Second))
	for len(r.pending) > 0 {
		last := !time.Now().Before(deadline)
		if !last {
			t := time.NewTimer(min(r.v.opts.RecheckEvery, time.Until(deadline)))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var still []*pendingRange
		for _, p := range r.pending {
			if err := r.recheck(ctx, p); err != nil {
				return err
			}
			if len(p.keys) > 0 {
				still = append(still, p)
			}
		}
		r.pending = still
		n := 0
		for _, p := range r.pending {
			n += len(p.keys)
		}
		r.res.Settled = r.res.Pending - n
		fmt.Fprintf(r.v.progress, "verify %s: %d of %d pending keys settled\n", r.id, r.res.Settled, r.res.Pending)
		if last {
			break
		}
	}
	for _, p := range r.pending {
		for _, k := range p.keys {
			d := p.diffs[k]
			detail := "still, after waiting " + wait.Round(time.Second).String() + " for BigQuery's background apply"
			if d.detail != "" {
				detail = d.detail + "; " + detail
			}
			r.report(d.kind, d.key, detail, d.vals)
		}
	}
	return nil
}

// recheck reads a pending range again on both sides, replaces its rows
// and checksums in the result, and keeps the keys that still differ.
func (r *run) recheck(ctx context.Context, p *pendingRange) error {
	var src [][]bigquery.Cell
	if p.rg.whole {
		var err error
		if src, err = r.sourceWhole(ctx); err != nil {
			return err
		}
	} else {
		rows, err := r.scan.Range(ctx, p.rg.after, p.rg.hi)
		if err != nil {
			return err
		}
		src = r.sourceCells(rows)
	}
	dst, err := r.readRange(ctx, p.rg)
	if err != nil {
		return err
	}
	a, b := checksum(src), checksum(dst)
	r.res.SourceRows += int64(len(src)) - p.srcRows
	r.res.BigQueryRows += int64(len(dst)) - p.dstRows
	r.res.SourceSum.sub(p.srcSum)
	r.res.SourceSum.add(a)
	r.res.BigQuerySum.sub(p.dstSum)
	r.res.BigQuerySum.add(b)
	p.srcRows, p.dstRows, p.srcSum, p.dstSum = int64(len(src)), int64(len(dst)), a, b
	if a == b {
		p.keys = nil
		return nil
	}
	_, diffs := r.diffKeys(src, dst)
	var keys []string
	for _, k := range p.keys {
		if d, ok := diffs[k]; ok {
			keys = append(keys, k)
			p.diffs[k] = d
		}
	}
	p.keys = keys
	return nil
}

// readBigQuery reads the rows of a range, reduced to the latest row per
// key for a changelog; the cells are the source's columns.
func (r *run) readBigQuery(ctx context.Context, cond string) ([][]bigquery.Cell, error) {
	n := len(r.t.Columns)
	var rows [][]bigquery.Cell
	latest := map[string][]bigquery.Cell{}
	err := r.v.reader.Read(ctx, r.info, r.names, cond, func(c []bigquery.Cell) error {
		if !r.changelog {
			rows = append(rows, c)
			return nil
		}
		if c[n].Text == "d" && !r.t.HasKey() {
			return nil
		}
		if !r.t.HasKey() {
			rows = append(rows, c[:n])
			return nil
		}
		k := r.key(c)
		if old, ok := latest[k]; !ok || newer(c[n+1:], old[n+1:]) {
			latest[k] = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.changelog && r.t.HasKey() {
		for _, k := range slices.Sorted(maps.Keys(latest)) {
			if c := latest[k]; c[n].Text != "d" {
				rows = append(rows, c[:n])
			}
		}
	}
	return rows, nil
}

// newer reports whether the change (sequence, ingestion time) a is newer
// than b: the view's ORDER BY _strait_sequence DESC, _strait_ingested_at
// DESC. Sequences are canonical (fixed-width sections), so text order is
// sequence order.
func newer(a, b []bigquery.Cell) bool {
	if c := strings.Compare(a[0].Text, b[0].Text); c != 0 {
		return c > 0
	}
	return a[1].Text > b[1].Text
}

// diffKeys finds the keys missing from BigQuery, extra in it, or whose
// rows differ: the keys (source order, then the extra ones sorted) and
// their differences.
func (r *run) diffKeys(src, dst [][]bigquery.Cell) ([]string, map[string]diff) {
	have := make(map[string][]bigquery.Cell, len(dst))
	for _, c := range dst {
		have[r.key(c)] = c
	}
	var keys []string
	diffs := map[string]diff{}
	add := func(k string, d diff) {
		keys = append(keys, k)
		diffs[k] = d
	}
	for _, s := range src {
		k := r.key(s)
		d, ok := have[k]
		if !ok {
			add(k, diff{"missing", r.keyText(s), "", r.keyVals(s)})
			continue
		}
		delete(have, k)
		var cols []string
		for i := range s {
			if s[i] != d[i] {
				cols = append(cols, fmt.Sprintf("%s: source %s, BigQuery %s", r.cols[i].Name, cellText(s[i]), cellText(d[i])))
			}
		}
		if len(cols) > 0 {
			add(k, diff{"different", r.keyText(s), strings.Join(cols, "; "), r.keyVals(s)})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		add(k, diff{"extra", r.keyText(have[k]), "", r.keyVals(have[k])})
	}
	return keys, diffs
}

// diffRows compares the rows of a table without a key as multisets.
func (r *run) diffRows(src, dst [][]bigquery.Cell) {
	count := map[string]int{}
	text := map[string][]bigquery.Cell{}
	for _, c := range src {
		k := rowKey(c)
		count[k]++
		text[k] = c
	}
	for _, c := range dst {
		k := rowKey(c)
		count[k]--
		text[k] = c
	}
	for _, k := range slices.Sorted(maps.Keys(count)) {
		for n := count[k]; n != 0; {
			if n > 0 {
				r.report("missing", r.rowText(text[k]), "", nil)
				n--
			} else {
				r.report("extra", r.rowText(text[k]), "", nil)
				n++
			}
		}
	}
}

// report counts a difference and prints it while fewer than MaxShown
// have been; with Options.Repair, vals (the key's values, nil for a
// difference no key names) go into the result's repair.
func (r *run) report(kind, key, detail string, vals []string) {
	r.res.Differences++
	if r.v.opts.Repair {
		r.res.Repair.add(kind, vals)
	}
	if r.shown >= r.v.opts.MaxShown {
		return
	}
	r.shown++
	line := r.id + ": " + kind
	if key != "" {
		line += " " + key
	}
	if detail != "" {
		line += ": " + detail
	}
	fmt.Fprintln(r.v.out, line)
	if r.shown == r.v.opts.MaxShown {
		fmt.Fprintf(r.v.out, "%s: more differences are counted, not shown\n", r.id)
	}
}

// showProgress prints a progress line when ProgressEvery has passed.
func (r *run) showProgress() {
	if time.Since(r.lastShown) < r.v.opts.ProgressEvery {
		return
	}
	r.lastShown = time.Now()
	line := fmt.Sprintf("verify %s: %d rows checked", r.id, r.res.SourceRows)
	if r.est > 0 {
		line += fmt.Sprintf(" of about %d (%d%%)", r.est, min(100, 100*r.res.SourceRows/r.est))
	}
	fmt.Fprintf(r.v.progress, "%s, %d differences\n", line, r.res.Differences)
}

func (r *run) key(c []bigquery.Cell) string {
	var b []byte
	for _, k := range r.t.PrimaryKey {
		b = appendCell(b, c[k])
	}
	return string(b)
}

// keyText shows a row's key: name=value, text quoted.
func (r *run) keyText(c []bigquery.Cell) string {
	parts := make([]string, len(r.t.PrimaryKey))
	for i, k := range r.t.PrimaryKey {
		v := cellText(c[k])
		if r.t.Columns[k].Type == cdc.TypeString && !c[k].Null {
			v = strconv.Quote(c[k].Text)
		}
		parts[i] = r.keyNames[i] + "=" + v
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// rowText shows a whole row (tables without a key).
func (r *run) rowText(c []bigquery.Cell) string {
	parts := make([]string, len(c))
	for i := range c {
		parts[i] = r.cols[i].Name + "=" + cellText(c[i])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func cellText(c bigquery.Cell) string {
	if c.Null {
		return "NULL"
	}
	return c.Text
}

func keyNames(t *cdc.Table, names []string) []string {
	out := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		out[i] = names[k]
	}
	return out
}

func keyOf(t *cdc.Table, row []cdc.Value) []cdc.Value {
	out := make([]cdc.Value, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		out[i] = row[k]
	}
	return out
}

func checksum(rows [][]bigquery.Cell) Checksum {
	s := Checksum{n: int64(len(rows))}
	var buf []byte
	for _, c := range rows {
		buf = buf[:0]
		for _, cell := range c {
			buf = appendCell(buf, cell)
		}
		h := sha256.Sum256(buf)
		s.a += binary.BigEndian.Uint64(h[:8])
		s.b += binary.BigEndian.Uint64(h[8:16])
	}
	return s
}

func rowKey(c []bigquery.Cell) string {
	var b []byte
	for _, cell := range c {
		b = appendCell(b, cell)
	}
	return string(b)
}

// appendCell encodes a cell unambiguously: NULL, or a length and the text.
func appendCell(b []byte, c bigquery.Cell) []byte {
	if c.Null {
		return append(b, 0)
	}
	b = binary.AppendUvarint(append(b, 1), uint64(len(c.Text)))
	return append(b, c.Text...)
}

// sameOrder reports whether source values of a key column of type t and
// BigQuery values of type f sort alike, so that a key range selects the
// same rows on both sides. Text sorts by collation in the source and by
// code point in BigQuery; FLOAT keys are not read in ranges at all. A
// binary key of an upsert table is a STRING of 0x and lower-case hex
// (README, "Primary-key columns"), whose text order is the bytes' order.
func sameOrder(t cdc.Type, f string) bool {
	switch t {
	case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeTime:
		return f == "INTEGER"
	case cdc.TypeUint64, cdc.TypeDecimal:
		return f == "NUMERIC" || f == "BIGNUMERIC"
	case cdc.TypeBool:
		return f == "BOOLEAN"
	case cdc.TypeBits, cdc.TypeBytes:
		return f == "BYTES" || f == "STRING"
	case cdc.TypeDate:
		return f == "DATE"
	case cdc.TypeDateTime:
		return f == "DATETIME"
	case cdc.TypeTimestamp:
		return f == "TIMESTAMP"
	}
	return false
}

// restriction is the row restriction of the key range (lo, hi]; nil
// bounds are open. A composite key compares lexicographically:
// k1 > a1 OR (k1 = a1 AND k2 > a2) OR ...
func (r *run) restriction(lo, hi []cdc.Value) (string, error) {
	var conds []string
	for _, b := range []struct {
		vals     []cdc.Value
		op, last string
	}{{lo, ">", ">"}, {hi, "<", "<="}} {
		if b.vals == nil {
			continue
		}
		lits := make([]string, len(b.vals))
		for i, k := range r.t.PrimaryKey {
			var err error
			if lits[i], err = literal(&r.t.Columns[k], r.keyTypes[i], b.vals[i]); err != nil {
				return "", fmt.Errorf("key column %s: %w", r.t.Columns[k].Name, err)
			}
		}
		var ors []string
		for j := range lits {
			var ands []string
			for i := range j {
				ands = append(ands, quote(r.keyNames[i])+" = "+lits[i])
			}
			op := b.op
			if j == len(lits)-1 {
				op = b.last
			}
			ands = append(ands, quote(r.keyNames[j])+" "+op+" "+lits[j])
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		conds = append(conds, "("+strings.Join(ors, " OR ")+")")
	}
	return strings.Join(conds, " AND "), nil
}

func quote(name string) string { return "`" + name + "`" }

// literal is a GoogleSQL literal of key value v for a column of BigQuery
// type f.
func literal(c *cdc.Column, f string, v cdc.Value) (string, error) {
	if v.Null {
		return "", errors.New("NULL key value (a zero date)")
	}
	switch f {
	case "INTEGER":
		return bigquery.TextInt64(v.Int), nil
	case "NUMERIC", "BIGNUMERIC":
		return f + " '" + SourceCell(c, v).Text + "'", nil
	case "BOOLEAN":
		return strings.ToUpper(bigquery.TextBool(v.Int != 0)), nil
	case "BYTES":
		var b strings.Builder
		b.WriteString("b'")
		for _, x := range sourceBytes(c, v) {
			fmt.Fprintf(&b, "\\x%02x", x)
		}
		b.WriteString("'")
		return b.String(), nil
	case "STRING": // a binary key (sameOrder): its TextBytes, quote-free
		return "'" + bigquery.TextBytes(sourceBytes(c, v)) + "'", nil
	case "DATE":
		return "DATE '" + bigquery.TextDate(v.Int) + "'", nil
	case "DATETIME":
		return "DATETIME '" + bigquery.TextDateTime(v.Int) + "'", nil
	case "TIMESTAMP":
		return "TIMESTAMP '" + bigquery.TextDateTime(v.Int) + "+00:00'", nil
	}
	return "", fmt.Errorf("no range literal for BigQuery type %s", f)
}

// sourceBytes is the BYTES value of a BIT or binary column.
func sourceBytes(c *cdc.Column, v cdc.Value) []byte {
	if c.Type == cdc.TypeBits {
		n := (c.Length + 7) / 8
		b := make([]byte, n)
		for i := range n {
			b[n-1-i] = byte(uint64(v.Int) >> (8 * uint(i)))
		}
		return b
	}
	return []byte(v.Str)
}

// SourceCell is the canonical text of the BigQuery value the consumer
// writes for source value v of column c (README, "Type mapping").
func SourceCell(c *cdc.Column, v cdc.Value) bigquery.Cell {
	if v.Null {
		return bigquery.Cell{Null: true}
	}
	var s string
	switch c.Type {
	case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeTime:
		s = bigquery.TextInt64(v.Int)
	case cdc.TypeUint64:
		s = bigquery.TextDecimal(strconv.FormatUint(uint64(v.Int), 10))
	case cdc.TypeDecimal:
		s = bigquery.TextDecimal(v.Str)
	case cdc.TypeFloat32:
		s = bigquery.TextFloat(float64(float32(v.Float))) // Avro float, widened to FLOAT64
	case cdc.TypeFloat64:
		s = bigquery.TextFloat(v.Float)
	case cdc.TypeBool:
		s = bigquery.TextBool(v.Int != 0)
	case cdc.TypeBits, cdc.TypeBytes:
		s = bigquery.TextBytes(sourceBytes(c, v))
	case cdc.TypeString:
		s = v.Str
	case cdc.TypeJSON:
		s = bigquery.TextJSON(v.Str)
	case cdc.TypeDate:
		s = bigquery.TextDate(v.Int)
	case cdc.TypeDateTime:
		s = bigquery.TextDateTime(v.Int)
	case cdc.TypeTimestamp:
		s = bigquery.TextTimestamp(v.Int)
	case cdc.TypeGeometry:
		var srid int64
		wkb := v.Str
		if len(wkb) >= 4 {
			srid = int64(binary.LittleEndian.Uint32([]byte(wkb[:4])))
			wkb = wkb[4:]
		}
		s = bigquery.TextRecord([]string{"wkb", "srid"}, []bigquery.Cell{{Text: bigquery.TextBytes([]byte(wkb))}, {Text: bigquery.TextInt64(srid)}})
	default:
		s = v.Str
	}
	return bigquery.Cell{Text: s}
}

// Summary is a result's line: rows, ranges, differences, time.
func (res Result) Summary() string {
	verdict := "match"
	if res.Differences > 0 {
		verdict = "DIFFERS"
	}
	how := fmt.Sprintf("%d key ranges", res.Ranges)
	if res.Ranges == 1 {
		how = "1 key range"
	}
	if res.Whole {
		how = "whole table"
	}
	sum := "checksum " + res.SourceSum.String()
	if res.SourceSum != res.BigQuerySum {
		sum = fmt.Sprintf("checksums %s / %s", res.SourceSum, res.BigQuerySum)
	}
	line := fmt.Sprintf("%s: %s — source rows %d, BigQuery rows %d, %s, %s, %d differences, %s",
		res.Table, verdict, res.SourceRows, res.BigQueryRows, sum, how, res.Differences, res.Took.Round(time.Millisecond))
	if res.ReadPath == "" {
		return line
	}
	line += " (read through the " + res.ReadPath
	if res.Upsert {
		line += fmt.Sprintf(", max_staleness %s", res.MaxStaleness)
		if res.Pending > 0 {
			line += fmt.Sprintf(", %d of %d pending keys settled", res.Settled, res.Pending)
		}
	}
	return line + ")"
}
