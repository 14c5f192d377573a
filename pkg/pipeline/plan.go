package pipeline

// plan.go: the snapshot plan — the tables a snapshot has to read, as last
// set — in a record of its own (<prefix>._snapshot_plan,
// schemas/snapshot_plan.avsc). The checkpoint, written at every commit,
// names the plan by number and counts the tables done instead of listing
// them: with 20,000 tables to snapshot it would otherwise carry them all,
// a megabyte at every commit. A plan is written only when the tables
// change otherwise than by the first one finishing (a snapshot starts, a
// request adds tables, a table fails or is cancelled), in the Kafka
// transaction of the first checkpoint that names it.

import (
	"fmt"
	"slices"
	"time"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/schemas"
)

// snapshotPlan is a snapshot plan record.
type snapshotPlan struct {
	number  int64
	tables  []string
	filters map[string]string
	origins map[string]int64
}

// done returns how many tables at the head of p are finished when snap is
// what is left of it — its tables p's last ones, with the same filters and
// origins — and false when snap is not.
func (p *snapshotPlan) done(snap *binlog.SnapshotState) (int64, bool) {
	n := len(p.tables) - len(snap.Tables)
	if n < 0 || !slices.Equal(p.tables[n:], snap.Tables) {
		return 0, false
	}
	if len(snap.Filters)+len(p.filters)+len(snap.Origins)+len(p.origins) > 0 {
		for _, t := range snap.Tables {
			f1, ok1 := snap.Filters[t]
			f2, ok2 := p.filters[t]
			o1, ok3 := snap.Origins[t]
			o2, ok4 := p.origins[t]
			if ok1 != ok2 || f1 != f2 || ok3 != ok4 || o1 != o2 {
				return 0, false
			}
		}
	}
	return int64(n), true
}

// setPlan names in cp the snapshot plan its tables come from: the plan
// last written or read when they are what is left of it, else a new one,
// which it returns for the caller to write in the same Kafka transaction
// as cp (nil: nothing to write).
func (c *Codec) setPlan(cp *Checkpoint) kafka.StateValue {
	snap := &cp.Snapshot
	cp.Plan, cp.PlanDone = 0, 0
	if len(snap.Tables) == 0 {
		return nil
	}
	if c.plan != nil {
		if done, ok := c.plan.done(snap); ok {
			cp.Plan, cp.PlanDone = c.plan.number, done
			return nil
		}
	}
	p := &snapshotPlan{number: 1, tables: slices.Clone(snap.Tables), filters: snap.Filters, origins: snap.Origins}
	if c.plan != nil {
		p.number = c.plan.number + 1
	}
	c.plan = p
	cp.Plan = p.number
	return planValue{c, p}
}

// planValue is a snapshot plan as the Kafka state store writes it:
// stamped with the source.
type planValue struct {
	c *Codec
	p *snapshotPlan
}

// StateSchema is schemas/snapshot_plan.avsc.
func (v planValue) StateSchema() string { return schemas.SnapshotPlan }

// StateTime is not the plan's: a plan stands for no source time.
func (v planValue) StateTime() time.Time { return time.Time{} }

// AppendState appends the plan's body, of source st.Source.
func (v planValue) AppendState(b []byte, st kafka.Stamp) ([]byte, error) {
	p := v.p
	tables := make([]any, len(p.tables))
	for i, t := range p.tables {
		tables[i] = t
	}
	filters := make(map[string]any, len(p.filters))
	for t, f := range p.filters {
		filters[t] = f
	}
	origins := make(map[string]any, len(p.origins))
	for t, o := range p.origins {
		origins[t] = o
	}
	b, err := v.c.planEnc.Append(b, map[string]any{"source": st.Source, "plan": p.number, "tables": tables,
		"filters": filters, "origins": origins})
	if err != nil {
		return nil, fmt.Errorf("snapshot plan: %w", err)
	}
	return b, nil
}

// readPlan fills in the snapshot tables, filters and origins of cp, when
// it names a plan, from rec, the last snapshot plan record committed (nil:
// none), refusing either record with a *kafka.StateError unless they are
// ones the producer can have written together.
func (c *Codec) readPlan(cp *Checkpoint, rec *kafka.StateRecord) error {
	if cp.Plan == 0 {
		return nil
	}
	if rec == nil {
		return cp.Refuse(fmt.Errorf("snapshot_plan %d: no snapshot plan record", cp.Plan))
	}
	p, err := c.decodePlan(rec.Body, cp.Source)
	if err != nil {
		return rec.Refuse(err)
	}
	if p.number != cp.Plan || cp.PlanDone > int64(len(p.tables)) {
		return cp.Refuse(fmt.Errorf("snapshot_plan %d, snapshot_done %d: the last snapshot plan is number %d, of %d tables",
			cp.Plan, cp.PlanDone, p.number, len(p.tables)))
	}
	snap := &cp.Snapshot
	snap.Tables = p.tables[cp.PlanDone:]
	for _, t := range snap.Tables {
		if f, ok := p.filters[t]; ok {
			if snap.Filters == nil {
				snap.Filters = map[string]string{}
			}
			snap.Filters[t] = f
		}
		if o, ok := p.origins[t]; ok {
			if snap.Origins == nil {
				snap.Origins = map[string]int64{}
			}
			snap.Origins[t] = o
		}
	}
	if err := snap.Check(); err != nil {
		return cp.Refuse(err)
	}
	c.plan = p
	return nil
}

// decodePlan reads the Avro body of a snapshot plan record of source with
// the bounded reader and checks it holds values the producer can have
// written.
func (c *Codec) decodePlan(body []byte, source string) (*snapshotPlan, error) {
	v, err := avro.DecodeVersions(c.planVersions, body)
	if err != nil {
		return nil, err
	}
	f := &avro.Fields{Object: v}
	p := &snapshotPlan{number: f.Long("plan"), tables: f.Strs("tables"),
		filters: binlog.ReadFilters(f, "filters"), origins: binlog.ReadOrigins(f, "origins")}
	if s := f.Str("source"); s != source {
		f.Fail("source %q, want %q", s, source)
	}
	if p.number <= 0 {
		f.Fail("plan %d", p.number)
	}
	if f.Err != nil {
		return nil, f.Err
	}
	snap := binlog.SnapshotState{Tables: p.tables, Filters: p.filters, Origins: p.origins}
	if err := snap.Check(); err != nil {
		return nil, err
	}
	return p, nil
}
