package bqfake

import (
	"sync"
	"time"

	bq "google.golang.org/api/bigquery/v2"
)

// catalog is the state the three services (rest.go, write.go, read.go)
// share: the datasets and their tables, and the options and clock the
// delays are measured by. One mutex guards the tables and the Write API's
// counters (writeService) alike, so that a request is checked and applied
// against one consistent table, whichever service changes it meanwhile.
type catalog struct {
	cfg config // set by New, read-only after

	mu       sync.Mutex
	datasets map[datasetKey]*dataset
}

type datasetKey struct{ project, dataset string }

type dataset struct {
	meta    *bq.Dataset
	tables  map[string]*table
	dropped map[string]bool // names of deleted tables (delays.go)
}

func tableName(project, ds, tbl string) string { return project + ":" + ds + "." + tbl }

// now is the server's time: its Clock, or the wall clock without one.
func (c *catalog) now() time.Time {
	if c.cfg.clock != nil {
		return c.cfg.clock.Now()
	}
	return time.Now()
}

// lookupTableLocked returns the table or a notFound error. c.mu is held.
func (c *catalog) lookupTableLocked(project, ds, tbl string) (*table, *apiError) {
	d := c.datasets[datasetKey{project, ds}]
	if d == nil {
		return nil, errNotFound("Not found: Dataset %s:%s", project, ds)
	}
	t := d.tables[tbl]
	if t == nil {
		return nil, errNotFound("Not found: Table %s", tableName(project, ds, tbl))
	}
	return t, nil
}
