package bqfake

import (
	"math/big"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestDecimalText checks decimal text against big.Rat's reading of it,
// through the plain-text shortcut and the general path alike.
func TestDecimalText(t *testing.T) {
	tests := []struct {
		typ, text string
		ok        bool
	}{
		{"NUMERIC", "12345.67", true},
		{"NUMERIC", "-0.5", true},
		{"NUMERIC", "+007.10", true},
		{"NUMERIC", "123456789012345678", true},
		{"NUMERIC", "1234567890123456789", true},
		{"NUMERIC", "-999999999.999999999", true},
		{"NUMERIC", "99999999999999999999999999999.999999999", true},
		{"NUMERIC", "100000000000000000000000000000", false},
		{"NUMERIC", "0.0000000001", false},
		{"NUMERIC", "0.1000000000", true},
		{"NUMERIC", "1e3", true},
		{"NUMERIC", ".5", true},
		{"NUMERIC", "5.", true},
		{"NUMERIC", "1.2.3", false},
		{"NUMERIC", "", false},
		{"BIGNUMERIC", "-12345678901234567890123456789012345678.12345678901234567890123456789012345678", true},
		{"BIGNUMERIC", "0.123456789012345678", true},
	}
	for _, tt := range tests {
		got, err := decimalValue(tt.typ, protoreflect.StringKind, protoreflect.ValueOfString(tt.text))
		if (err == nil) != tt.ok {
			t.Errorf("%s %q: error %v, want ok=%v", tt.typ, tt.text, err, tt.ok)
			continue
		}
		if err != nil {
			continue
		}
		want, _ := new(big.Rat).SetString(tt.text)
		if got.Cmp(want) != 0 {
			t.Errorf("%s %q = %s, want %s", tt.typ, tt.text, got.RatString(), want.RatString())
		}
	}
}
