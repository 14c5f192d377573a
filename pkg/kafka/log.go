package kafka

import (
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/strait-cdc/strait/pkg/service"
)

// withLog is the logging option of every franz-go client strait creates:
// the client logs to log, its INFO lines at DEBUG.
//
// Why: franz-go logs four INFO lines per Kafka transaction (begin, flush,
// end, end acknowledged) and more per metadata refresh and group round —
// about 26 lines a second under the demo's load, where strait's own lines
// are a dozen per run. Its WARN and ERROR lines keep their level. The INFO
// lines that are state changes (producer id initialized, group session
// begun) are not picked out by their text, which is not franz-go's API:
// strait logs those states itself, once, at INFO: the producer's
// "connected to Kafka" and stop, the group's partitions assigned, revoked
// or lost (group.go). Measured (TestLogVolumeBoundedAtDefaultLevel): 1,000
// source transactions, each a Kafka transaction, logged 4,017 lines at
// INFO before, 8 now, start and stop included.
func withLog(log *slog.Logger) kgo.Opt { return kgo.WithLogger(clientLogger(log)) }

// clientLogger is withLog's logger.
func clientLogger(log *slog.Logger) kgo.Logger {
	return kslog.New(service.LibraryLog(log))
}
