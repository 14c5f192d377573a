package kafka

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTopicFilter(t *testing.T) {
	for _, c := range []struct {
		spec  string
		match []string
		not   []string
	}{
		{"", []string{"p.shop.users", "p.shop.orders"}, []string{"p._checkpoint", "q.shop.users", "p"}},
		{"shop.users", []string{"p.shop.users"}, []string{"p.shop.orders", "p.shop.users2"}},
		{"p.shop.users, shop.orders", []string{"p.shop.users", "p.shop.orders"}, []string{"p.shop.items"}},
		{`^p\.shop\..*`, []string{"p.shop.users", "p.shop.orders"}, []string{"p.other.users", "p._checkpoint"}},
		{`^p\..*`, []string{"p.shop.users"}, []string{"p._heartbeat"}}, // internal topics never match
	} {
		f, err := NewTopicFilter("p", c.spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, topic := range c.match {
			if !f.Match(topic) {
				t.Errorf("filter %q does not match %s", c.spec, topic)
			}
		}
		for _, topic := range c.not {
			if f.Match(topic) {
				t.Errorf("filter %q matches %s", c.spec, topic)
			}
		}
	}
	if _, err := NewTopicFilter("p", "^("); err == nil {
		t.Error("a bad regular expression is accepted")
	}
}

func TestParseOffsets(t *testing.T) {
	got, err := ParseOffsets("p.shop.users:0=5, shop.users:1=0,shop.orders:2=17")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int32]int64{"p.shop.users": {0: 5}, "shop.users": {1: 0}, "shop.orders": {2: 17}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	for _, bad := range []string{"", "shop.users=5", "shop.users:x=5", "shop.users:0=-1", "shop.users:0", `^shop\..*:0=1`, ":0=1"} {
		if _, err := ParseOffsets(bad); err == nil {
			t.Errorf("ParseOffsets(%q): no error", bad)
		}
	}
}
