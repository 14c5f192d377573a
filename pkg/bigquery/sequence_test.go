package bigquery

import (
	"slices"
	"strings"
	"testing"
)

func TestCanonicalSequence(t *testing.T) {
	tests := []struct {
		in, want string // want "" = an error
	}{
		{"0000000000000001/0000000000000003/00000000000003E8/0000000000000000", "0000000000000001/0000000000000003/00000000000003E8/0000000000000000"},
		{"FFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF"},
		{"a", "000000000000000A"},
		{"1/3e8", "0000000000000001/00000000000003E8"},
		{"0000000000000001/0000000000000003/00000000000003e8", "0000000000000001/0000000000000003/00000000000003E8"},
		{"", ""},
		{"1//2", ""},
		{"12g", ""},
		{"10000000000000000", ""},
		{"1/2/3/4/5", ""},
		{"+1", ""},
	}
	for _, tt := range tests {
		got, err := canonicalSequence([]byte(tt.in))
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("canonicalSequence(%q) = %q, want an error", tt.in, got)
		case tt.want != "" && (err != nil || string(got) != tt.want):
			t.Errorf("canonicalSequence(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestCanonicalSequenceOrder: sorted as text, canonical sequences are in
// BigQuery's _CHANGE_SEQUENCE_NUMBER order (by value, section by section;
// a prefix first), which the latest-row view relies on.
func TestCanonicalSequenceOrder(t *testing.T) {
	inOrder := []string{"0", "9", "A", "A/0", "a/1", "F", "10", "1F/0/0/0", "20", "ffffffffffffffff"}
	var canon []string
	for _, s := range inOrder {
		c, err := canonicalSequence([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		canon = append(canon, string(c))
	}
	if !slices.IsSorted(canon) {
		t.Errorf("canonical forms not in text order:\n%s", strings.Join(canon, "\n"))
	}
}
