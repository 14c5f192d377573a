package apply

// watermark.go: the group's "applied through" watermark (README, "A
// consistent cut across tables"). A cut is a checkpoint the producer
// committed, with its position P, and the ends of every partition of every
// table topic listed after it was read: the producer writes a checkpoint
// in the same Kafka transaction as the records it covers and acknowledges
// them before it commits, so every record of a source transaction before P
// lies below those ends. The group commits a partition's offset only once
// BigQuery acknowledged every record before it; once the committed offsets
// of all partitions reach a cut's ends (a partition nobody committed yet
// holds it back), every change before P is in BigQuery in every table.
// The committed offsets are the whole group's, in Kafka, so any replica
// computes the same watermark; each records what it computed and
// BigQuery keeps the highest.

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/sink"
)

// CutSource is the Kafka side of the watermark, as *kafka.Cuts provides
// it. Called from one goroutine.
type CutSource interface {
	// Checkpoint returns the newest committed checkpoint record read so
	// far (nil: none yet), after reading what arrived since the last call.
	Checkpoint(ctx context.Context) (*kafka.StateRecord, error)
	// Ends returns the end offset of every partition of every table
	// topic.
	Ends(ctx context.Context) (map[kafka.TopicPartition]int64, error)
	// Committed returns the group's committed offsets.
	Committed(ctx context.Context) (map[kafka.TopicPartition]int64, error)
}

// CheckpointReader decodes the producer's checkpoint record of source
// into the sequence below which every change it covers lies and the
// source commit time of the last one, and whether the checkpoint is a cut
// at all (not while a snapshot is in progress): *pipeline.Codec.
type CheckpointReader interface {
	Through(rec *kafka.StateRecord, source string) (through cdc.Position, commit time.Time, cut bool, err error)
}

// WatermarkRecorder records a watermark: *bigquery.Writer.
type WatermarkRecorder interface {
	RecordWatermark(ctx context.Context, wm sink.Watermark) error
}

// maxCuts bounds the cuts waiting for the group: one is taken per
// interval while the group lags; when full, the newest is replaced.
const maxCuts = 64

// cut is a checkpoint's position and the ends it is reached at.
type cut struct {
	through cdc.Position
	commit  time.Time
	ends    map[kafka.TopicPartition]int64
}

// Watermarks computes the group's watermark of one source and records it
// whenever it rises. Run it once.
type Watermarks struct {
	log      *slog.Logger
	cuts     CutSource
	decode   CheckpointReader
	rec      WatermarkRecorder
	group    string
	source   string
	interval time.Duration

	commitTime prometheus.Gauge // strait_consumer_watermark_source_timestamp_seconds

	seen         *kafka.StateRecord // the last checkpoint record taken
	pending      []cut              // in order of through
	recorded     *cut               // the last watermark recorded
	failing      string             // the last error logged, to log a new one once
	snapshotting bool               // the last checkpoint was taken during a snapshot
}

// NewWatermarks returns the watermark of group for source (the topic
// prefix), computed every interval, with its metric registered in reg.
func NewWatermarks(log *slog.Logger, cuts CutSource, decode CheckpointReader, rec WatermarkRecorder, group, source string, interval time.Duration,
	reg prometheus.Registerer) *Watermarks {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strait_consumer_watermark_source_timestamp_seconds",
		Help: "Source commit time of the last transaction below the applied-through watermark this member recorded (bigquery.watermark_table); stays while the source is idle.",
	})
	reg.MustRegister(g)
	return &Watermarks{log: log, cuts: cuts, decode: decode, rec: rec, group: group, source: source, interval: interval, commitTime: g}
}

// Run computes and records the watermark every interval until ctx ends.
func (w *Watermarks) Run(ctx context.Context) {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		recorded, err := w.Step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && err.Error() != w.failing:
			w.log.Warn("watermark not advanced", "group", w.group, "source", w.source, "err", err)
			w.failing = err.Error()
		case recorded:
			w.failing = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Step takes a cut at the newest checkpoint read, and records the highest
// cut the group's committed offsets reach if it is above the last one
// recorded; it reports whether it recorded one.
func (w *Watermarks) Step(ctx context.Context) (recorded bool, err error) {
	rec, err := w.cuts.Checkpoint(ctx)
	if err != nil {
		return false, err
	}
	if rec != nil && rec != w.seen {
		w.seen = rec
		through, commit, isCut, err := w.decode.Through(rec, w.source)
		if err != nil {
			return false, err
		}
		if !isCut && !w.snapshotting {
			w.log.Info("watermark waits: the producer is snapshotting tables, whose rows are not all published", "group", w.group, "source", w.source)
		}
		w.snapshotting = !isCut
		if isCut && w.above(through) {
			// Listed only now, after the checkpoint was read.
			ends, err := w.cuts.Ends(ctx)
			if err != nil {
				return false, err
			}
			w.pending = addCut(w.pending, cut{through: through, commit: commit, ends: ends})
		}
	}
	if len(w.pending) == 0 {
		return false, nil
	}
	committed, err := w.cuts.Committed(ctx)
	if err != nil {
		return false, err
	}
	best, rest := highestReached(w.pending, committed)
	if best == nil {
		return false, nil
	}
	wm := sink.Watermark{Group: w.group, Source: w.source, Through: best.through.String(), CommitTime: best.commit}
	if err := w.rec.RecordWatermark(ctx, wm); err != nil {
		return false, err // the cut stays pending: tried again next time
	}
	w.pending, w.recorded = rest, best
	w.commitTime.Set(float64(best.commit.UnixMilli()) / 1000)
	w.log.Debug("watermark recorded", "group", w.group, "source", w.source, "through", wm.Through, "commit_time", wm.CommitTime)
	return true, nil
}

// above reports whether through is above every cut taken or recorded.
func (w *Watermarks) above(through cdc.Position) bool {
	if n := len(w.pending); n > 0 {
		return w.pending[n-1].through.Less(through)
	}
	return w.recorded == nil || w.recorded.through.Less(through)
}

// addCut appends c to cuts, replacing the newest when maxCuts wait
// already: the older ones are reached first.
func addCut(cuts []cut, c cut) []cut {
	if len(cuts) == maxCuts {
		cuts = cuts[:maxCuts-1]
	}
	return append(cuts, c)
}

// highestReached returns the highest of cuts (in order of position) that
// committed reaches, and the cuts above it; nil and cuts when none is.
func highestReached(cuts []cut, committed map[kafka.TopicPartition]int64) (*cut, []cut) {
	for i := len(cuts) - 1; i >= 0; i-- {
		if reached(cuts[i].ends, committed) {
			return &cuts[i], cuts[i+1:]
		}
	}
	return nil, cuts
}

// reached reports whether every partition's committed offset is at or
// past its end: a partition without a committed offset reaches only an
// end of 0 (it never held a record).
func reached(ends, committed map[kafka.TopicPartition]int64) bool {
	for tp, end := range ends {
		if end > 0 && committed[tp] < end {
			return false
		}
	}
	return true
}
