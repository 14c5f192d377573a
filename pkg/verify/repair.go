package verify

// repair.go: the keys verify found different, collected for a repair
// request (producer verify -repair asks the running producer to publish
// them again, pkg/binlog's repair.go). A key is named by the text of its
// values in key-column order, the canonical text both sides compare by:
// integers in decimal, dates as YYYY-MM-DD, text as it is. Keys of other
// types do not name one stored value exactly in text, and a difference no
// key names (a table without a key, a missing table or column) cannot be
// repaired key by key: such a table is refused, with why.

import (
	"fmt"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// MaxRepairKeys bounds the keys collected for one table's repair; a table
// with more differences is better snapshotted again whole.
const MaxRepairKeys = 100_000

// Repair are the keys of a table that differ, for a repair request.
type Repair struct {
	// Keys are the keys that differ, each its values in key-column order.
	Keys [][]string
	// Kinds counts them by kind: missing, extra, different.
	Kinds map[string]int
	// Refused says why the table's differences are not repaired by key;
	// "" when they are (Keys then holds every one).
	Refused string
}

// add adds the key vals of a difference of kind; nil vals: a difference
// no key names.
func (rp *Repair) add(kind string, vals []string) {
	switch {
	case rp.Refused != "":
		return
	case vals == nil:
		rp.Refused = "a difference no primary key names (" + kind + ")"
	case len(rp.Keys) == MaxRepairKeys:
		rp.Refused = fmt.Sprintf("more than %d keys differ", MaxRepairKeys)
	default:
		rp.Keys = append(rp.Keys, vals)
		if rp.Kinds == nil {
			rp.Kinds = map[string]int{}
		}
		rp.Kinds[kind]++
		return
	}
	rp.Keys, rp.Kinds = nil, nil
}

// repairable returns why t's keys cannot be repaired by key; "" when they
// can.
func repairable(t *cdc.Table) string {
	if !t.HasKey() {
		return "no primary key"
	}
	for _, k := range t.PrimaryKey {
		switch c := &t.Columns[k]; c.Type {
		case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeUint64, cdc.TypeString, cdc.TypeDate:
		default:
			return fmt.Sprintf("primary-key column %s is %s (repair by key takes integer, text and date keys)", c.Name, c.Type)
		}
	}
	return ""
}

// keyVals are the key's values of a row, as a repair names them; nil
// when one is NULL (a zero date: no key names it).
func (r *run) keyVals(c []bigquery.Cell) []string {
	out := make([]string, len(r.t.PrimaryKey))
	for i, k := range r.t.PrimaryKey {
		if c[k].Null {
			return nil
		}
		out[i] = c[k].Text
	}
	return out
}
