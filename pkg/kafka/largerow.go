package kafka

// Rows too large for a record. An update's or delete's record carries the
// row twice (before and after) or once (before); a row of half of
// kafka.max_record_bytes makes its update too large, and a row beyond it
// its delete. Neither image is dropped silently:
//   - The before image is not needed to apply a change (an upsert takes the
//     after image, a delete the key): when the record does not fit, it is
//     published with the before image reduced to the key columns, and
//     source.before_key_only says so.
//   - Only a change whose after image (or key) does not fit by itself goes
//     to the dead-letter topic. The row downstream then differs from the
//     source: its key is remembered as diverged (Diverged, the
//     strait_producer_diverged_keys metric, /status) until a later change
//     of the same key is published whole — a re-snapshot of those keys
//     (producer snapshot -where) or the next update. Kept in memory: a
//     restart forgets it (producer verify finds the row, and counts the
//     table's dead letters of this reason: DeadLettered).

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// keyOnly returns ev with its before image reduced to the key columns (the
// others NULL), or nil when ev has no before image or its table no key.
func keyOnly(ev *cdc.Event) *cdc.Event {
	if ev.Before == nil || len(ev.Table.PrimaryKey) == 0 {
		return nil
	}
	small := *ev
	small.Before = make([]cdc.Value, len(ev.Before))
	for i := range small.Before {
		small.Before[i] = cdc.Null
	}
	for _, k := range ev.Table.PrimaryKey {
		small.Before[k] = ev.Before[k]
	}
	small.Source.BeforeKeyOnly = true
	return &small
}

// divergence is the set of keys whose last change went to the dead-letter
// topic as too large, by table. Publish's goroutine changes it; /status
// reads it (Diverged) from another.
type divergence struct {
	any   atomic.Bool // keys is not empty: the common case costs one load per record
	mu    sync.Mutex
	keys  map[string]map[string]struct{} // table → Avro key bodies ("" for a table without a key)
	gauge *prometheus.GaugeVec
}

// mark remembers key of table as diverged.
func (d *divergence) mark(table string, key []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = map[string]map[string]struct{}{}
	}
	if d.keys[table] == nil {
		d.keys[table] = map[string]struct{}{}
	}
	d.keys[table][string(key)] = struct{}{}
	d.any.Store(true)
	d.gauge.WithLabelValues(table).Set(float64(len(d.keys[table])))
}

// published forgets key of table t: a change of it was published whole.
// It takes the table rather than its name, which would cost an allocation
// per record in the common case of no diverged key.
func (d *divergence) published(t *cdc.Table, key []byte) {
	if !d.any.Load() {
		return
	}
	table := t.ID()
	d.mu.Lock()
	defer d.mu.Unlock()
	keys := d.keys[table]
	if keys == nil {
		return
	}
	if _, ok := keys[string(key)]; !ok {
		return
	}
	delete(keys, string(key))
	d.gauge.WithLabelValues(table).Set(float64(len(keys)))
	if len(keys) == 0 {
		delete(d.keys, table)
		d.any.Store(len(d.keys) > 0)
	}
}

// counts returns, by table, how many keys diverged. Safe from any
// goroutine.
func (d *divergence) counts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for t, keys := range d.keys {
		out[t] = len(keys)
	}
	return out
}
