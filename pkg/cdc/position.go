package cdc

import (
	"fmt"
	"strconv"
	"strings"
)

// Position is a change's place in the source's commit order. Positions
// compare section by section: Epoch rises when the producer starts a new
// source lineage (failover to a server with other binlog files), File is the
// numeric suffix of the binlog file, Pos the position of the rows event in
// it, Row the index of the row within the event.
//
// String renders it as BigQuery's _CHANGE_SEQUENCE_NUMBER: four hexadecimal
// sections separated by '/', each zero-padded to 16 digits so that text order
// and numeric order agree.
type Position struct {
	Epoch uint64
	File  uint64
	Pos   uint64
	Row   uint64
}

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	if p.Epoch != q.Epoch {
		return p.Epoch < q.Epoch
	}
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Pos != q.Pos {
		return p.Pos < q.Pos
	}
	return p.Row < q.Row
}

const hexDigits = "0123456789ABCDEF"

// AppendText appends the sequence-number form of p to b.
func (p Position) AppendText(b []byte) []byte {
	for i, v := range [4]uint64{p.Epoch, p.File, p.Pos, p.Row} {
		if i > 0 {
			b = append(b, '/')
		}
		for shift := 60; shift >= 0; shift -= 4 {
			b = append(b, hexDigits[(v>>uint(shift))&0xF])
		}
	}
	return b
}

// String returns the sequence-number form of p.
func (p Position) String() string { return string(p.AppendText(make([]byte, 0, 67))) }

// ParsePosition parses the form written by String.
func ParsePosition(s string) (Position, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return Position{}, fmt.Errorf("position %q: want 4 sections separated by '/'", s)
	}
	var v [4]uint64
	for i, part := range parts {
		n, err := strconv.ParseUint(part, 16, 64)
		if err != nil {
			return Position{}, fmt.Errorf("position %q: section %d: %w", s, i+1, err)
		}
		v[i] = n
	}
	return Position{Epoch: v[0], File: v[1], Pos: v[2], Row: v[3]}, nil
}
