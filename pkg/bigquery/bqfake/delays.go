package bqfake

import (
	"maps"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// BigQuery's documented delays and windows, which bqfake models at their
// real lengths unless a test shortens them with an option.
const (
	// DefaultSchemaDelay is how long a new column takes to reach the
	// Storage Write API. "BigQuery Storage Write API best practices",
	// "Handle schema updates"
	// (https://cloud.google.com/bigquery/docs/write-api-best-practices):
	// a schema change becomes visible to the Write API "on the order of
	// minutes"; until then the new field is rejected.
	DefaultSchemaDelay = 2 * time.Minute
	// DefaultRecreateDelay is how long the default stream of a table that
	// was deleted and created again answers NOT_FOUND. The same page,
	// "Handle schema updates" and its note on deleting and re-creating a
	// table: the Write API's cached metadata may name the old table for
	// a few minutes, and appends fail until it expires.
	DefaultRecreateDelay = 2 * time.Minute
	// DefaultDeleteRetention is how long a CDC table remembers a deleted
	// row. "Stream table updates with change data capture"
	// (https://cloud.google.com/bigquery/docs/change-data-capture),
	// "Manage custom ordering": a deleted row's _CHANGE_SEQUENCE_NUMBER
	// is kept for two days; after that an UPSERT with a lower number is
	// applied as if the row had never been deleted.
	DefaultDeleteRetention = 48 * time.Hour
)

// Concurrent AppendRows connections per project. "Quotas and limits",
// "Storage Write API quotas" (https://cloud.google.com/bigquery/quotas#write-api-limits):
// 20,000 in the US and EU multi-regions, 5,000 in any other location.
const (
	MultiRegionConnections = 20000
	RegionalConnections    = 5000
)

// Clock is the time bqfake measures its delays and windows by. A test that
// makes one with NewClock moves it with Advance instead of sleeping; the
// zero of a Server's clock (no WithClock) is the wall clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time; safe for concurrent use.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// WithClock makes the server measure its delays and windows by c.
func WithClock(c *Clock) Opt { return func(cfg *config) { cfg.clock = c } }

// WithSchemaDelay sets how long a new column stays invisible to the Write
// API (DefaultSchemaDelay; 0: at once).
func WithSchemaDelay(d time.Duration) Opt { return func(cfg *config) { cfg.schemaDelay = d } }

// WithRecreateDelay sets how long a re-created table's default stream
// answers NOT_FOUND (DefaultRecreateDelay; 0: not at all).
func WithRecreateDelay(d time.Duration) Opt { return func(cfg *config) { cfg.recreateDelay = d } }

// WithDeleteRetention sets how long a deleted row is remembered
// (DefaultDeleteRetention).
func WithDeleteRetention(d time.Duration) Opt { return func(cfg *config) { cfg.deleteRetention = d } }

// WithMaxConnections sets the project's concurrent AppendRows connection
// quota (default by location: MultiRegionConnections for US and EU,
// RegionalConnections otherwise).
func WithMaxConnections(n int) Opt { return func(cfg *config) { cfg.maxConns = n } }

// maxConnections is the connection quota in force.
func (c *config) maxConnections() int {
	switch {
	case c.maxConns > 0:
		return c.maxConns
	case strings.EqualFold(c.location, "US") || strings.EqualFold(c.location, "EU"):
		return MultiRegionConnections
	}
	return RegionalConnections
}

// openConn takes a connection of the quota; false when it is used up.
func (w *writeService) openConn() bool {
	w.cat.mu.Lock()
	defer w.cat.mu.Unlock()
	if w.conns >= w.cat.cfg.maxConnections() {
		return false
	}
	w.conns++
	w.peakConns = max(w.peakConns, w.conns)
	return true
}

func (w *writeService) closeConn() {
	w.cat.mu.Lock()
	defer w.cat.mu.Unlock()
	w.conns--
}

// errConnQuota ends a connection beyond the quota, as BigQuery does.
var errConnQuota = status.Error(codes.ResourceExhausted,
	"Exceeds 'Concurrent connections' quota, user_id: bqfake (status: INSUFFICIENT_TOKENS), you can issue a raise quota request through Google Cloud Console.")

// Connections is the number of AppendRows connections open now.
func (s *Server) Connections() int {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	return s.write.conns
}

// PeakConnections is the most AppendRows connections that were open at
// once.
func (s *Server) PeakConnections() int {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	return s.write.peakConns
}

// noteSchemaLocked remembers when each top-level column of next that old
// lacks was added, so that the Write API refuses it for the schema delay.
// catalog.mu is held.
func (c *catalog) noteSchemaLocked(t *table, old, next []*bq.TableFieldSchema) {
	if c.cfg.schemaDelay <= 0 {
		return
	}
	now := c.now()
	for _, f := range next {
		if findField(old, f.Name) == nil {
			if t.added == nil {
				t.added = map[string]time.Time{}
			}
			t.added[strings.ToLower(f.Name)] = now
		}
	}
}

// noteDropped remembers that a table of that name was deleted.
func (d *dataset) noteDropped(id string) {
	if d.dropped == nil {
		d.dropped = map[string]bool{}
	}
	d.dropped[id] = true
}

// noteCreatedLocked starts the re-create window of a table created under
// the name of a deleted one. catalog.mu is held.
func (c *catalog) noteCreatedLocked(d *dataset, id string, t *table) {
	if d.dropped[id] && c.cfg.recreateDelay > 0 {
		t.notFoundUntil = c.now().Add(c.cfg.recreateDelay)
	}
}

// streamVisibleLocked refuses the Write API's view of a table that is
// not there yet: a re-created table within its window answers NOT_FOUND.
// catalog.mu is held.
func (c *catalog) streamVisibleLocked(t *table, name string) error {
	if !t.notFoundUntil.IsZero() && c.now().Before(t.notFoundUntil) {
		return status.Errorf(codes.NotFound, "Requested entity was not found. Entity: %s", name)
	}
	return nil
}

// visibleFields is the table's schema as the Write API sees it now:
// without the columns added within the schema delay.
func (c *catalog) visibleFields(t *table) []*bq.TableFieldSchema {
	fs := t.fields()
	if len(t.added) == 0 {
		return fs
	}
	now := c.now()
	out := make([]*bq.TableFieldSchema, 0, len(fs))
	for _, f := range fs {
		if at, ok := t.added[strings.ToLower(f.Name)]; ok && now.Before(at.Add(c.cfg.schemaDelay)) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// extraFieldsLocked refuses a writer schema naming columns the Write API
// does not see yet, as BigQuery does: INVALID_ARGUMENT with a StorageError
// of code SCHEMA_MISMATCH_EXTRA_FIELDS. catalog.mu is held.
func (w *writeService) extraFieldsLocked(t *table, desc protoreflect.MessageDescriptor, name string) *storagepb.AppendRowsResponse {
	if len(t.added) == 0 || desc == nil {
		return nil
	}
	now := w.cat.now()
	var extra []string
	fields := desc.Fields()
	for i := range fields.Len() {
		col := strings.ToLower(string(fields.Get(i).Name()))
		if at, ok := t.added[col]; ok {
			if now.Before(at.Add(w.cat.cfg.schemaDelay)) {
				extra = append(extra, string(fields.Get(i).Name()))
			} else {
				delete(t.added, col)
			}
		}
	}
	if len(extra) == 0 {
		return nil
	}
	w.unseen++
	msg := "Input schema has more fields than BigQuery schema, extra fields: '" + strings.Join(extra, "', '") + "'"
	st := status.New(codes.InvalidArgument, msg+" Entity: "+name)
	if d, err := st.WithDetails(&storagepb.StorageError{
		Code: storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS, Entity: name, ErrorMessage: msg,
	}); err == nil {
		st = d
	}
	return &storagepb.AppendRowsResponse{
		Response:    &storagepb.AppendRowsResponse_Error{Error: st.Proto()},
		WriteStream: name,
	}
}

// tomb is a deleted row's key and when it was deleted, oldest first.
type tomb struct {
	key string
	at  time.Time
	row *row
}

// expireDeletesLocked forgets the deletes older than the retention: an
// older UPSERT of such a key is then applied. catalog.mu is held.
func (c *catalog) expireDeletesLocked(t *table, now time.Time) {
	n := 0
	for n < len(t.tombs) && !now.Before(t.tombs[n].at.Add(c.cfg.deleteRetention)) {
		tb := t.tombs[n]
		if t.byKey[tb.key] == tb.row {
			delete(t.byKey, tb.key)
		}
		n++
	}
	if n > 0 {
		t.tombs = append(t.tombs[:0], t.tombs[n:]...)
	}
}

// noteDelete remembers, for its retention, a delete that apply has just
// applied (the row of its key is the last one made).
func (t *table) noteDelete(c change, pk []string, now time.Time) {
	if !c.del || len(pk) == 0 {
		return
	}
	k := keyOf(c.values, pk)
	if r := t.byKey[k]; r != nil && r.deleted && r.order == t.next-1 {
		t.tombs = append(t.tombs, tomb{key: k, at: now, row: r})
	}
}

// MaxConnections is the concurrent AppendRows connection quota in force.
func (s *Server) MaxConnections() int { return s.cat.cfg.maxConnections() }

// WithBackgroundApply makes the Storage Read API read a CDC table (one
// with a primary key) as BigQuery does, which is the default: "Stream
// table updates with change data capture", "Manage table staleness" and
// "CDC limitations": a read sees the table as of its last background
// apply, which runs at most max_staleness ago (here: when a read finds
// the last one older than that), and a CDC table without max_staleness
// cannot be read through the Storage Read API.
func WithBackgroundApply() Opt { return func(cfg *config) { cfg.backgroundApply = true } }

// WithoutBackgroundApply makes the Storage Read API read every table as it
// is now, with or without max_staleness: not BigQuery's behaviour, for a
// test about something else.
func WithoutBackgroundApply() Opt { return func(cfg *config) { cfg.backgroundApply = false } }

// readViewLocked is the table a Storage Read session sees: t itself, or
// with WithBackgroundApply for a CDC table, t as of its last background
// apply. catalog.mu is held.
func (r *readService) readViewLocked(t *table, name string) (*table, error) {
	if !r.cat.cfg.backgroundApply || t.byKey == nil {
		return t, nil
	}
	var staleness time.Duration
	if t.meta.MaxStaleness != "" {
		if iv, err := bigquery.ParseInterval(t.meta.MaxStaleness); err == nil {
			staleness = iv.ToDuration()
		}
	}
	if staleness <= 0 {
		return nil, status.Errorf(codes.FailedPrecondition,
			"table %s takes CDC changes and has no max_staleness: the Storage Read API does not read it", name)
	}
	now := r.cat.now()
	if t.appliedAt.IsZero() || now.Sub(t.appliedAt) >= staleness {
		t.applied = maps.Clone(t.byKey) // rows are replaced, never changed in place
		t.appliedAt = now
	}
	view := *t
	view.byKey = t.applied
	return &view, nil
}
