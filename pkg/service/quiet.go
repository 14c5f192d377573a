package service

import (
	"context"
	"log/slog"
)

// LibraryLog is the logger strait gives a client library (franz-go,
// go-mysql): log, with the library's INFO lines at DEBUG and its warnings
// and errors at their level. Why: the libraries log at INFO every step of
// what strait logs once as a state change — franz-go four lines per Kafka
// transaction, go-mysql seven around each binlog run — so at the default
// level they would drown strait's own lines (TestLogVolumeBoundedAtDefaultLevel
// in producer/ and consumer/ bounds them).
func LibraryLog(log *slog.Logger) *slog.Logger { return slog.New(infoAsDebug{log.Handler()}) }

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
