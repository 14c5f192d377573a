package binlog

import (
	"context"
	"log/slog"
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
	return slog.New(syncerLog{infoAsDebug{log.Handler()}})
}

// infoAsDebug is a handler that passes records at INFO to its handler as
// DEBUG, and the other levels as they are.
type infoAsDebug struct{ h slog.Handler }

func (d infoAsDebug) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, infoToDebug(l))
}

func (d infoAsDebug) Handle(ctx context.Context, r slog.Record) error {
	r.Level = infoToDebug(r.Level)
	return d.h.Handle(ctx, r)
}

func (d infoAsDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return infoAsDebug{d.h.WithAttrs(attrs)}
}

func (d infoAsDebug) WithGroup(name string) slog.Handler { return infoAsDebug{d.h.WithGroup(name)} }

func infoToDebug(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}
