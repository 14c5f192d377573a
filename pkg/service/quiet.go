package service

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LibraryLog is the logger strait gives a client library (franz-go,
// go-mysql): log, with the library's INFO lines at DEBUG and its warnings
// and errors at their level, each message at most once per repeatEvery.
//
// Why INFO at DEBUG: the libraries log at INFO every step of what strait
// logs once as a state change — franz-go four lines per Kafka transaction,
// go-mysql seven around each binlog run — so at the default level they
// would drown strait's own lines (TestLogVolumeBoundedAtDefaultLevel in
// producer/ and consumer/ bounds them).
//
// Why the bound: a library may retry without pausing and log each try.
// franz-go does while a transaction coordinator refuses connections (its
// AddPartitionsToTxn retry): 77 GB of log in three minutes, seen in the
// chaos test. A repeated message is written once, then once per
// repeatEvery with repeated=<lines held back since>.
func LibraryLog(log *slog.Logger) *slog.Logger { return libraryLog(log, time.Now) }

// repeatEvery is how often a library warning or error that keeps
// repeating is written; maxRemembered bounds the messages remembered.
const (
	repeatEvery   = 10 * time.Second
	maxRemembered = 256
)

func libraryLog(log *slog.Logger, now func() time.Time) *slog.Logger {
	return slog.New(&libraryHandler{h: log.Handler(), seen: &repeats{now: now, last: map[string]*repeat{}}})
}

// libraryHandler is LibraryLog's handler.
type libraryHandler struct {
	h    slog.Handler
	seen *repeats // shared by the handlers derived from it
}

func (d *libraryHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, infoToDebug(l))
}

func (d *libraryHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = infoToDebug(r.Level)
	if r.Level < slog.LevelWarn {
		return d.h.Handle(ctx, r)
	}
	write, held := d.seen.note(r.Level.String() + " " + r.Message)
	if !write {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", held))
	}
	return d.h.Handle(ctx, r)
}

func (d *libraryHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &libraryHandler{h: d.h.WithAttrs(attrs), seen: d.seen}
}

func (d *libraryHandler) WithGroup(name string) slog.Handler {
	return &libraryHandler{h: d.h.WithGroup(name), seen: d.seen}
}

func infoToDebug(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

// repeats is when each message was last written and how many lines of it
// were held back since.
type repeats struct {
	now  func() time.Time
	mu   sync.Mutex
	last map[string]*repeat
}

type repeat struct {
	at   time.Time
	held int
}

// note reports whether a line of message key is written now, and how many
// were held back before it.
func (s *repeats) note(key string) (write bool, held int) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.last[key]
	if r != nil && now.Sub(r.at) < repeatEvery {
		r.held++
		return false, 0
	}
	if r == nil {
		if len(s.last) >= maxRemembered {
			clear(s.last) // forgetting writes a message again: never silences one
		}
		r = &repeat{}
		s.last[key] = r
	}
	held, r.at, r.held = r.held, now, 0
	return true, held
}

// size is how many messages are remembered.
func (s *repeats) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.last)
}
