package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// Request turns the signal sig, read from <prefix>._signals just before
// offset next, into the reader's snapshot request. Whoever writes the
// topic is not trusted: tables the configuration src does not capture are
// left out, with an error in the log, and a signal of an unknown type asks
// for nothing (its request still moves the offset on).
func Request(sig kafka.Signal, next int64, src *binlog.Config, log *slog.Logger) binlog.SnapshotRequest {
	req := binlog.SnapshotRequest{Filter: sig.Filter, Next: next}
	switch sig.Type {
	case kafka.SignalCancel:
		req.Cancel, req.Request = true, sig.Request
		return req
	case kafka.SignalRepair:
		if err := CheckRepair(sig, src); err != nil {
			log.Error("repair request refused; it asks for nothing", "offset", next-1, "err", err)
			return binlog.SnapshotRequest{Next: next}
		}
		req.Tables, req.Keys = sig.Tables, sig.Keys
		return req
	case kafka.SignalBackfill:
		if err := CheckBackfill(sig, src); err != nil {
			log.Error("backfill request refused; it asks for nothing", "offset", next-1, "err", err)
			return binlog.SnapshotRequest{Next: next}
		}
		req.Tables, req.Columns, req.Rows = sig.Tables, sig.Columns, sig.Rows
		return req
	case kafka.SignalSnapshot:
	default:
		log.Error("signal of an unknown type; skipped", "type", sig.Type, "offset", next-1)
	}
	for _, t := range sig.Tables {
		db, name, ok := strings.Cut(t, ".")
		if sig.Type != kafka.SignalSnapshot || !ok || !binlog.Captures(src.Include, src.Exclude, db, name) {
			log.Error("snapshot request: not a captured table (database.table within source.include/exclude); left out", "table", t)
			continue
		}
		req.Tables = append(req.Tables, t)
	}
	return req
}

// maxTableName bounds a table's name in a signal, as printed back.
const maxTableName = 130

// CheckRepair checks a repair signal, whose writer is not trusted: one
// table, captured by src's include/exclude (nil src: any name), no filter,
// and keys binlog.CheckRepairKeys takes. The keys' types are checked
// against the table's primary key when the producer reads them.
func CheckRepair(sig kafka.Signal, src *binlog.Config) error {
	t, err := oneTable(sig, src)
	if err != nil {
		return err
	}
	if sig.Filter != "" || sig.Request != 0 || sig.Columns != nil || sig.Rows != nil {
		return fmt.Errorf("table %s: a repair takes keys, no filter, request or rows", t)
	}
	if err := binlog.CheckRepairKeys(sig.Keys); err != nil {
		return fmt.Errorf("table %s: %w", t, err)
	}
	return nil
}

// CheckBackfill checks a backfill signal, whose writer is not trusted: one
// table, captured by src's include/exclude (nil src: any name), and rows
// binlog.CheckBackfill takes. The values are checked against the table's
// columns when the producer publishes them.
func CheckBackfill(sig kafka.Signal, src *binlog.Config) error {
	t, err := oneTable(sig, src)
	if err != nil {
		return err
	}
	if sig.Filter != "" || sig.Request != 0 || sig.Keys != nil {
		return fmt.Errorf("table %s: a backfill takes rows, no filter, request or keys", t)
	}
	if err := binlog.CheckBackfill(sig.Columns, sig.Rows); err != nil {
		return fmt.Errorf("table %s: %w", t, err)
	}
	return nil
}

// oneTable returns the one table sig names, checked: database.table,
// captured by src (nil: any).
func oneTable(sig kafka.Signal, src *binlog.Config) (string, error) {
	if len(sig.Tables) != 1 {
		return "", fmt.Errorf("names %d tables: want one", len(sig.Tables))
	}
	t := sig.Tables[0]
	db, name, ok := strings.Cut(t, ".")
	if len(t) > maxTableName || !ok || db == "" || name == "" || !utf8.ValidString(t) || strings.ContainsFunc(t, unicode.IsControl) {
		return "", fmt.Errorf("table %.40q: want database.table", t)
	}
	if src != nil && !binlog.Captures(src.Include, src.Exclude, db, name) {
		return "", fmt.Errorf("table %s is not captured (source.include/exclude)", t)
	}
	return t, nil
}

// Signals is where snapshot requests are read from: *kafka.Writer, on
// <prefix>._signals.
type Signals interface {
	WatchSignals(ctx context.Context, from int64, fn func(s kafka.Signal, next int64) error) error
}

// Requester takes snapshot requests: *binlog.Reader.
type Requester interface {
	RequestSnapshot(ctx context.Context, req binlog.SnapshotRequest) error
}

// WatchSignals hands the snapshot requests of signals, from offset from (the
// checkpoint's) on, to r until ctx ends, each as Request makes it; an error
// reading them is logged, as the stream goes on without them.
func WatchSignals(ctx context.Context, signals Signals, r Requester, from int64, src *binlog.Config, log *slog.Logger) {
	err := signals.WatchSignals(ctx, from, func(sig kafka.Signal, next int64) error {
		return r.RequestSnapshot(ctx, Request(sig, next, src, log))
	})
	if err != nil && ctx.Err() == nil {
		log.Error("snapshot requests are not read any more", "err", err)
	}
}

// ListRequests writes, for producer snapshot -list, a line per table of
// each request in signals and of each failed table of the initial
// snapshot, with where it stands by the checkpoint cp (nil: the producer
// has committed none).
func ListRequests(out io.Writer, cp *Checkpoint, signals []kafka.SignalRecord) {
	if cp == nil {
		cp = &Checkpoint{}
	}
	snap := &cp.Snapshot
	failed := map[string]binlog.SnapshotFailure{} // by request and table
	for _, f := range snap.Failed {
		failed[fmt.Sprint(f.Request, f.Table)] = f
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWRITTEN\tTABLE\tFILTER\tSTATE")
	for _, f := range snap.Failed {
		if f.Request < 0 {
			fmt.Fprintf(tw, "initial\t\t%s\t\tfailed %s: %s\n", f.Table, f.At.UTC().Format(time.RFC3339), f.Reason)
		}
	}
	for _, s := range signals {
		written := s.Time.UTC().Format(time.RFC3339)
		switch s.Type {
		case kafka.SignalCancel:
			fmt.Fprintf(tw, "%d\t%s\t\t\tcancels request %d\n", s.Offset, written, s.Request)
			continue
		case kafka.SignalRepair, kafka.SignalBackfill:
			fmt.Fprintf(tw, "%d\t%s\t%s\t\t%s\n", s.Offset, written, firstTable(s.Tables), repairState(s, snap, failed))
			continue
		case kafka.SignalSnapshot:
		default:
			fmt.Fprintf(tw, "%d\t%s\t\t\tnot a request (skipped)\n", s.Offset, written)
			continue
		}
		for _, t := range s.Tables {
			state := "done"
			origin, queued := snap.Origins[t]
			f, isFailed := failed[fmt.Sprint(s.Offset, t)]
			switch {
			case s.Offset >= snap.Requests:
				state = "pending: not taken by the producer yet"
			case isFailed && strings.HasPrefix(f.Reason, "cancelled"):
				state = fmt.Sprintf("cancelled %s", f.At.UTC().Format(time.RFC3339))
			case isFailed:
				state = fmt.Sprintf("failed %s: %s", f.At.UTC().Format(time.RFC3339), f.Reason)
			case queued && origin == s.Offset && snap.Tables[0] == t:
				state = "reading"
			case queued && origin == s.Offset:
				state = "queued"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", s.Offset, written, t, s.Filter, state)
		}
	}
	tw.Flush()
}

// repairState is where the repair or backfill request s stands by the
// checkpoint's snapshot state snap and its failures by request and table.
func repairState(s kafka.SignalRecord, snap *binlog.SnapshotState, failed map[string]binlog.SnapshotFailure) string {
	what, err := fmt.Sprintf("repair of %d keys", len(s.Keys)), CheckRepair(s.Signal, nil)
	if s.Type == kafka.SignalBackfill {
		what, err = fmt.Sprintf("backfill of %d rows", len(s.Rows)), CheckBackfill(s.Signal, nil)
	}
	if err != nil {
		return "refused: " + err.Error()
	}
	switch f, isFailed := failed[fmt.Sprint(s.Offset, s.Tables[0])]; {
	case s.Offset >= snap.Requests:
		return what + " pending: not published by the producer yet"
	case isFailed:
		return fmt.Sprintf("failed %s: %s", f.At.UTC().Format(time.RFC3339), f.Reason)
	}
	return what + " published"
}

// firstTable is the first of tables, shortened for a listing; "" when
// none.
func firstTable(tables []string) string {
	if len(tables) == 0 {
		return ""
	}
	t := tables[0]
	if len(t) > maxTableName || !utf8.ValidString(t) || strings.ContainsFunc(t, unicode.IsControl) {
		return fmt.Sprintf("%.40q", t)
	}
	return t
}

// PrintRequests lists where each snapshot request of cfg's source stands,
// from its signals topic and its checkpoint (producer snapshot -list).
func PrintRequests(ctx context.Context, cfg *kafka.Config, log *slog.Logger, out io.Writer) error {
	reqs, err := kafka.ReadRequests(ctx, cfg, log)
	if err != nil {
		return err
	}
	codec, err := NewCodec()
	if err != nil {
		return err
	}
	cp, err := codec.FromRecord(reqs.Checkpoint, reqs.Plan, cfg.TopicPrefix)
	if err != nil {
		return err
	}
	ListRequests(out, cp, reqs.Signals)
	return nil
}

// maxSignalBytes bounds a repair signal's JSON, well below Kafka's default
// record limit of 1 MiB.
const maxSignalBytes = 512 << 10

// RepairSignals splits a repair of keys of table into signals of at most
// binlog.MaxRepairKeys keys and maxSignalBytes each, every one checked as
// the producer will check it (CheckRepair).
func RepairSignals(table string, keys [][]string, src *binlog.Config) ([]kafka.Signal, error) {
	var out []kafka.Signal
	sig := kafka.Signal{Type: kafka.SignalRepair, Tables: []string{table}}
	size := 0
	flush := func() error {
		if len(sig.Keys) == 0 {
			return nil
		}
		if err := CheckRepair(sig, src); err != nil {
			return err
		}
		out = append(out, sig)
		sig.Keys, size = nil, 0
		return nil
	}
	for _, k := range keys {
		b, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		if len(sig.Keys) == binlog.MaxRepairKeys || size+len(b)+1 > maxSignalBytes-1024 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		sig.Keys = append(sig.Keys, k)
		size += len(b) + 1
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
