package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

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
