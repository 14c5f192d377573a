package verify

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/cdc"
)

func TestRepairCollectsKeysOrSaysWhyNot(t *testing.T) {
	var rp Repair
	rp.add("missing", []string{"1"})
	rp.add("extra", []string{"2"})
	rp.add("missing", []string{"3"})
	want := Repair{Keys: [][]string{{"1"}, {"2"}, {"3"}}, Kinds: map[string]int{"missing": 2, "extra": 1}}
	if diff := cmp.Diff(rp, want); diff != "" {
		t.Errorf("repair (-got +want):\n%s", diff)
	}
	rp.add("missing column", nil)
	rp.add("missing", []string{"4"})
	if rp.Refused != "a difference no primary key names (missing column)" || rp.Keys != nil {
		t.Errorf("after a difference no key names: %+v", rp)
	}
	var many Repair
	for range MaxRepairKeys + 1 {
		many.add("different", []string{"1"})
	}
	if many.Refused != "more than 100000 keys differ" || many.Keys != nil {
		t.Errorf("past MaxRepairKeys: %q, %d keys", many.Refused, len(many.Keys))
	}
}

func TestRepairableKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    *cdc.Table
		want string
	}{
		{"integer and text", &cdc.Table{Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt64}, {Name: "s", Type: cdc.TypeString}, {Name: "d", Type: cdc.TypeDate}}, PrimaryKey: []int{0, 1, 2}}, ""},
		{"no key", &cdc.Table{Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt64}}}, "no primary key"},
		{"decimal key", &cdc.Table{Columns: []cdc.Column{{Name: "amount", Type: cdc.TypeDecimal}}, PrimaryKey: []int{0}},
			"primary-key column amount is decimal (repair by key takes integer, text and date keys)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := repairable(tc.t); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
