package pipeline

import (
	"log/slog"
	"strings"

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
