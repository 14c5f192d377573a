package bigquery

// watermark.go: the consumer group's "applied through" watermark — one row
// per group and source in the table bigquery.watermark_table — and the
// query of the changelog views that read a table as of it.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strait-cdc/strait/pkg/sink"
)

// The columns of the watermark table, in the order rows are encoded.
const (
	colWatermarkGroup    = "group_id"
	colWatermarkSource   = "source"
	colWatermarkSequence = "sequence"
	colWatermarkCommit   = "commit_time"
	colWatermarkUpdated  = "updated_at"
)

// watermarkSchema is the watermark table's schema.
func watermarkSchema() bigquery.Schema {
	return bigquery.Schema{
		{Name: colWatermarkGroup, Type: bigquery.StringFieldType, Required: true, Description: "strait: the consumer group (kafka.group_id)"},
		{Name: colWatermarkSource, Type: bigquery.StringFieldType, Required: true, Description: "strait: the source (kafka.topic_prefix)"},
		{Name: colWatermarkSequence, Type: bigquery.StringFieldType, Required: true, Description: "strait: every change of the source whose _strait_sequence is below this one is acknowledged by BigQuery in every captured table"},
		{Name: colWatermarkCommit, Type: bigquery.TimestampFieldType, Description: "strait: source commit time of the last source transaction below sequence"},
		{Name: colWatermarkUpdated, Type: bigquery.TimestampFieldType, Description: "strait: when a consumer wrote this row"},
	}
}

// RecordWatermark writes wm to the watermark table, creating the table on
// first use. The table holds one row per group and source, written as a
// CDC upsert whose _CHANGE_SEQUENCE_NUMBER is wm.Through: BigQuery keeps
// the highest, so replicas of the group that record at once, or one that
// records an older watermark late, never move it back.
func (w *Writer) RecordWatermark(ctx context.Context, wm sink.Watermark) error {
	if w.cfg.WatermarkTable == "" {
		return errors.New("bigquery.watermark_table is empty: no watermark is kept")
	}
	seq, err := canonicalSequence([]byte(wm.Through))
	if err != nil {
		return fmt.Errorf("watermark of %s: %w", wm.Source, err)
	}
	if err := w.ds.ensureWatermarkTable(ctx); err != nil {
		return err
	}
	t := w.wm
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stream == nil {
		if err := w.streams.open(ctx, t); err != nil {
			return err
		}
	}
	row := watermarkRow(wm, seq, time.Now())
	res, err := t.stream.AppendRows(ctx, [][]byte{row})
	if err == nil {
		_, err = res.GetResult(ctx)
	}
	if err != nil {
		// Opened afresh next time, on a table looked up again: it may
		// have been dropped (README: rebuilding a table).
		w.streams.close(t)
		w.ds.wmMu.Lock()
		w.ds.wmReady = false
		w.ds.wmMu.Unlock()
		return fmt.Errorf("record the watermark %s of %s in %s: %w", seq, wm.Source, w.cfg.WatermarkTable, err)
	}
	return nil
}

// watermarkRow is the proto row of wm in the writer schema of
// watermarkSchema with the CDC pseudo-columns (writerSchema numbers the
// columns from numFirstCol in schema order; TIMESTAMP is µs).
func watermarkRow(wm sink.Watermark, seq []byte, now time.Time) []byte {
	str := func(b []byte, n protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), s)
	}
	b := str(nil, numChangeType, "UPSERT")
	b = str(b, numChangeSeq, string(seq))
	b = str(b, numFirstCol, wm.Group)
	b = str(b, numFirstCol+1, wm.Source)
	b = str(b, numFirstCol+2, string(seq))
	for i, at := range []time.Time{wm.CommitTime, now} {
		if !at.IsZero() {
			b = protowire.AppendTag(b, numFirstCol+3+protowire.Number(i), protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(at.UnixMicro()))
		}
	}
	return b
}

// ensureWatermarkTable creates the watermark table when it does not exist
// yet, once per writer: a CDC table keyed by group and source.
func (d *dataset) ensureWatermarkTable(ctx context.Context) error {
	d.wmMu.Lock()
	defer d.wmMu.Unlock()
	if d.wmReady {
		return nil
	}
	name := d.cfg.WatermarkTable
	ref := d.bq.Dataset(d.cfg.Dataset).Table(name)
	md, err := ref.Metadata(ctx)
	if isHTTP(err, http.StatusNotFound) {
		want := &bigquery.TableMetadata{Schema: watermarkSchema(),
			Description:      "strait: per consumer group and source, the sequence below which every change is applied in every table (README, \"A consistent cut across tables\")",
			TableConstraints: &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: []string{colWatermarkGroup, colWatermarkSource}}}}
		if d.cfg.MaxStaleness > 0 {
			want.MaxStaleness = bigquery.IntervalValueFromDuration(d.cfg.MaxStaleness)
		}
		err = ref.Create(ctx, want)
		if err == nil {
			d.log.Info("watermark table created", "table", name)
			d.wmReady = true
			return nil
		}
		if isHTTP(err, http.StatusConflict) { // another consumer was first
			md, err = ref.Metadata(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("watermark table %s: %w", name, err)
	}
	var key []string
	if md.TableConstraints != nil && md.TableConstraints.PrimaryKey != nil {
		key = md.TableConstraints.PrimaryKey.Columns
	}
	if md.Type != bigquery.RegularTable || !equalFold(names(md.Schema), names(watermarkSchema())) || !equalFold(key, []string{colWatermarkGroup, colWatermarkSource}) {
		return permanent(fmt.Errorf("%s is not strait's watermark table (a %s with columns %s and primary key %v): rename it or choose another bigquery.watermark_table",
			name, md.Type, strings.Join(names(md.Schema), ", "), key))
	}
	d.wmReady = true
	return nil
}

// asOfQuery is the standard-SQL query of a changelog's view as of the
// watermark: per primary key, the row of the newest change whose sequence
// is below the group's watermark of the source, unless that change is a
// delete. Without a watermark row yet the view is empty.
func asOfQuery(cfg *Config, table string, key []string) string {
	part := make([]string, len(key))
	for i, k := range key {
		part[i] = quoteIdent(k)
	}
	return fmt.Sprintf(`SELECT * EXCEPT (%[1]s)
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY %[2]s ORDER BY %[3]s DESC, %[4]s DESC) AS %[1]s
  FROM %[5]s
  WHERE %[3]s < (SELECT %[6]s FROM %[7]s WHERE %[8]s = %[9]s AND %[10]s = %[11]s)
)
WHERE %[1]s = 1 AND %[12]s != 'd'`,
		colRank, strings.Join(part, ", "), ColSequence, ColIngestedAt,
		quoteIdent(cfg.Project+"."+cfg.Dataset+"."+table), quoteIdent(colWatermarkSequence),
		quoteIdent(cfg.Project+"."+cfg.Dataset+"."+cfg.WatermarkTable),
		quoteIdent(colWatermarkGroup), quoteString(cfg.Group), quoteIdent(colWatermarkSource), quoteString(cfg.Source), ColOp)
}

// quoteString is s as a GoogleSQL string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`, "\n", `\n`, "\r", `\r`).Replace(s) + "'"
}
