package verify

import (
	"slices"
	"testing"
)

// -tables of producer verify: database.table, comma-separated, spaces and
// empty entries ignored; anything else refused, naming the entry.
func TestParseTables(t *testing.T) {
	got, err := ParseTables(" shop.orders, ,shop.items,")
	if err != nil || !slices.Equal(got, []string{"shop.orders", "shop.items"}) {
		t.Fatalf("ParseTables = %v, %v; want [shop.orders shop.items]", got, err)
	}
	for _, bad := range []string{"orders", ".orders", "shop.", "shop.orders,items"} {
		if _, err := ParseTables(bad); err == nil {
			t.Errorf("ParseTables(%q) accepted", bad)
		}
	}
	if got, err := ParseTables(""); err != nil || len(got) != 0 {
		t.Errorf(`ParseTables("") = %v, %v; want none (every captured table)`, got, err)
	}
}
