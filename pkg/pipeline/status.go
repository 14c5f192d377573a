package pipeline

import (
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Status is what GET /status shows: the last committed checkpoint — where
// a restart would resume — and the snapshot's progress.
type Status struct {
	Checkpoint *CheckpointStatus `json:"checkpoint"` // null before the first commit
	Snapshot   *SnapshotStatus   `json:"snapshot"`   // null when no snapshot runs
	// Diverged counts, by table, the keys whose last change went to the
	// dead-letter topic as too large since the start: downstream differs
	// there until a later change of the key is published whole.
	Diverged map[string]int `json:"diverged,omitempty"`
}

// CheckpointStatus is a committed checkpoint as /status shows it.
type CheckpointStatus struct {
	GTIDSet    string    `json:"gtid_set,omitempty"`
	File       string    `json:"file"`
	Pos        uint64    `json:"pos"`
	RowsDone   int       `json:"rows_done,omitempty"`
	Epoch      uint64    `json:"epoch"`
	ServerID   uint32    `json:"server_id"`
	SourceTime time.Time `json:"source_time"`
	Written    time.Time `json:"written"`
}

// SnapshotStatus is the snapshot's progress as /status shows it.
type SnapshotStatus struct {
	Table     string   `json:"table"`               // being read
	AfterKey  []string `json:"after_key,omitempty"` // key of the last row published
	Remaining []string `json:"remaining"`           // after it
}

// StatusOf is GET /status for the checkpoint cp; keys says whether the
// key of the last row snapshotted is shown (status_keys: off by default,
// as /status answers anyone who reaches the port).
func StatusOf(cp *Checkpoint, keys bool) Status {
	if cp == nil {
		return Status{}
	}
	st := Status{Checkpoint: &CheckpointStatus{GTIDSet: cp.GTIDSet, File: cp.File, Pos: cp.Pos, RowsDone: cp.RowsDone,
		Epoch: cp.Epoch, ServerID: cp.ServerID, SourceTime: cp.SourceTime, Written: cp.Written}}
	if snap := &cp.Snapshot; len(snap.Tables) > 0 {
		st.Snapshot = &SnapshotStatus{Table: snap.Tables[0], Remaining: snap.Tables[1:]}
		for _, v := range snap.After {
			if keys {
				st.Snapshot.AfterKey = append(st.Snapshot.AfterKey, keyText(v))
			}
		}
	}
	return st
}

// keyText renders a key value for people: text as is, numbers in decimal,
// binary that is not UTF-8 in hex.
func keyText(v cdc.Value) string {
	switch {
	case v.Null:
		return "NULL"
	case v.Str != "" && utf8.ValidString(v.Str):
		return v.Str
	case v.Str != "":
		return "0x" + hex.EncodeToString([]byte(v.Str))
	case v.Float != 0:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	}
	return strconv.FormatInt(v.Int, 10)
}
