package bqfake

import "time"

// Applied is one AppendRows request the server has applied: what a test or
// a benchmark sees of BigQuery's acknowledgement of its rows.
type Applied struct {
	Project, Dataset, Table string
	// Rows are the request's rows in request order, by column name, with
	// values of the types Rows returns; a column the row did not send is
	// absent rather than NULL, and the pseudo-columns _CHANGE_TYPE and
	// _CHANGE_SEQUENCE_NUMBER are not included. The maps are the server's
	// own: read them during the call, neither keep nor change them.
	Rows []map[string]any
	// At is when the rows were applied, just before the response is sent.
	At time.Time
}

// OnAppend has f called for every AppendRows request the server applies,
// in the order they are applied; requests it refuses or fails on purpose
// (FailAppends) are not reported. f runs with the server's lock held,
// before the response is sent: it must return quickly and must not call
// the Server's methods. A nil f stops the calls. It is how the end-to-end
// latency benchmark (deploy/devstack) times when a row was acknowledged.
func (s *Server) OnAppend(f func(Applied)) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	s.write.onAppend = f
}

// observeLocked reports an applied request to the OnAppend function, if
// any. catalog.mu is held.
func (w *writeService) observeLocked(project, ds, tbl string, changes []change) {
	if w.onAppend == nil {
		return
	}
	rows := make([]map[string]any, len(changes))
	for i, c := range changes {
		rows[i] = c.values
	}
	w.onAppend(Applied{Project: project, Dataset: ds, Table: tbl, Rows: rows, At: time.Now()})
}
