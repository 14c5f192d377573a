package binlog

import (
	"context"
	"log/slog"

	"github.com/go-mysql-org/go-mysql/replication"
)

// syncerLog is the handler go-mysql's BinlogSyncer logs to. go-mysql logs
// its whole BinlogSyncerConfig when the stream opens ("create
// BinlogSyncer"): a struct with func fields, which the JSON handler can
// only print as "!ERROR:json: unsupported type", and with a *tls.Config
// that holds the client's private key. syncerLog logs the settings that
// matter instead, without secrets.
type syncerLog struct{ slog.Handler }

// Handle passes r on with any BinlogSyncerConfig attribute replaced.
func (h syncerLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		switch c := a.Value.Any().(type) {
		case replication.BinlogSyncerConfig:
			a.Value = syncerConfigValue(&c)
		case *replication.BinlogSyncerConfig:
			a.Value = syncerConfigValue(c)
		}
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

// WithAttrs keeps the replacement on the derived handler.
func (h syncerLog) WithAttrs(as []slog.Attr) slog.Handler {
	return syncerLog{h.Handler.WithAttrs(as)}
}

// WithGroup keeps the replacement on the derived handler.
func (h syncerLog) WithGroup(name string) slog.Handler {
	return syncerLog{h.Handler.WithGroup(name)}
}

// syncerConfigValue is the loggable part of c: no password, no TLS keys.
func syncerConfigValue(c *replication.BinlogSyncerConfig) slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host), slog.Int("port", int(c.Port)), slog.String("user", c.User),
		slog.Any("server_id", c.ServerID), slog.String("flavor", c.Flavor), slog.Bool("tls", c.TLSConfig != nil),
		slog.String("heartbeat_period", c.HeartbeatPeriod.String()), slog.String("read_timeout", c.ReadTimeout.String()),
		slog.Int("max_reconnect_attempts", c.MaxReconnectAttempts))
}
