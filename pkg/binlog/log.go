package binlog

import (
	"log/slog"

	"github.com/strait-cdc/strait/pkg/service"
)

// libraryLog is the logger given to go-mysql: log, with go-mysql's INFO
// lines at DEBUG. Why: it logs at INFO the steps of what strait logs once
// as a state change — the syncer created (with its whole configuration),
// connected, syncing from a position, every binlog rotation, the
// connection killed, closing, closed: seven lines around a run's two
// ("binlog stream started", the producer's stop). Its warnings and errors
// (a lost connection, before it reconnects) keep their level. The Kafka
// client's lines go the same way (pkg/kafka/log.go). Its configuration,
// logged when the stream opens, is replaced by what matters (syncerlog.go).
func libraryLog(log *slog.Logger) *slog.Logger {
	return slog.New(syncerLog{service.LibraryLog(log).Handler()})
}
