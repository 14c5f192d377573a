package cdc

// Status is the outcome of one check of `producer check`.
type Status int

// The outcomes of a check, from good to bad.
const (
	Pass Status = iota // the setting is as strait needs it
	Warn               // strait works, with a limitation named in the detail
	Fail               // strait cannot work until the fix is applied
)

// String returns "PASS", "WARN" or "FAIL".
func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return "UNKNOWN"
}

// CheckResult is one line of `producer check`.
type CheckResult struct {
	// Name names what was checked, e.g. "binlog_format" or "kafka".
	Name string
	// Status is the outcome.
	Status Status
	// Detail is what was observed, e.g. "binlog_format=STATEMENT".
	Detail string
	// Fix is the exact step that turns a WARN or FAIL into a PASS; empty
	// when there is nothing to do.
	Fix string
}
