package bigquery

import (
	"testing"

	"github.com/strait-cdc/strait/pkg/avro"
)

// TestNamesMatch: an envelope's namespace part (avro.Name of a source
// name) and a topic's part (the producer's: each byte a topic name cannot
// hold becomes '_') match when one source name makes both, and only then.
func TestNamesMatch(t *testing.T) {
	for _, c := range []struct {
		source, part string // a source name and its topic part
		other        string // the topic part of another name
	}{
		{"users", "users", "visits"},
		{"my-table", "my-table", "my_tablex"},
		{"1st", "1st", "st"},
		{"größe", "gr____e", "gr_e"},
		{"a😀b", "a____b", "a_____b"},
		{"é_", "___", "e_"},
		{"a$b", "a_b", "ab"},
	} {
		name := avro.Name(c.source)
		if !namesMatch(name, c.part) {
			t.Errorf("%q: Avro name %q and topic part %q do not match", c.source, name, c.part)
		}
		if namesMatch(name, c.other) {
			t.Errorf("%q: Avro name %q matches the topic part %q of another name", c.source, name, c.other)
		}
	}
}
