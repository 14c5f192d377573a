package bigquery

import "testing"

func TestCanonicalText(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"decimal trailing zeros", TextDecimal("12.50"), "12.5"},
		{"decimal integer", TextDecimal("007.000"), "7"},
		{"decimal fraction only", TextDecimal("-.250"), "-0.25"},
		{"decimal negative zero", TextDecimal("-0.00"), "0"},
		{"decimal plus", TextDecimal("+1"), "1"},
		{"decimal from Avro", decimalFromAvro([]byte{0xa6, 0x97, 0xd1, 0x00}, 9), "-1.500000000"},
		{"decimal from Avro positive", decimalFromAvro([]byte{0x00, 0xff}, 2), "2.55"},
		{"decimal from Avro zero", decimalFromAvro(nil, 0), "0"},
		{"float", TextFloat(0.1), "0.1"},
		{"float widened", TextFloat(float64(float32(0.1))), "0.10000000149011612"},
		{"bytes", TextBytes([]byte{0, 0xab}), "0x00ab"},
		{"date", TextDate(-1), "1969-12-31"},
		{"datetime", TextDateTime(1), "1970-01-01 00:00:00.000001"},
		{"timestamp", TextTimestamp(-1), "1969-12-31 23:59:59.999999 UTC"},
		{"json keys sorted, spaces out", TextJSON(`{"b": 1, "a": [true, null, "x"]}`), `{"a":[true,null,"x"],"b":1}`},
		{"json numbers", TextJSON(`[1.50, 1e2, -0, 18446744073709551615, 0.1]`), `[1.5,100,0,18446744073709551615,0.1]`},
		{"json text kept", TextJSON(`"<a>"`), `"<a>"`},
		{"not json", TextJSON(`{"a":`), `{"a":`},
		{"record", TextRecord([]string{"wkb", "srid"}, []Cell{{Text: "0x01"}, {Null: true}}), "{wkb:0x01,srid:null}"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	for _, s := range []string{"2024-02-29T23:59:59.000001", "2024-02-29 23:59:59.000001"} {
		if got, err := parseCivilDateTime(s); err != nil || got != "2024-02-29 23:59:59.000001" {
			t.Errorf("parseCivilDateTime(%q) = %q, %v", s, got, err)
		}
	}
	if got, err := parseCivilDateTime("2024-02-29T01:02:03"); err != nil || got != "2024-02-29 01:02:03.000000" {
		t.Errorf("parseCivilDateTime without fraction = %q, %v", got, err)
	}
	if _, err := parseCivilDateTime("yesterday"); err == nil {
		t.Error("parseCivilDateTime accepted yesterday")
	}
}
