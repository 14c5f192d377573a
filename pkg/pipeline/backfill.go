package pipeline

// backfill.go: the file of producer backfill, turned into backfill signals
// (pkg/binlog's backfill.go publishes them). The file holds one JSON
// object per line, a row by column name: a string is the value's text, a
// number its digits as written, true and false are 1 and 0, an object or
// array a JSON column's document, null is NULL. Every line names the same
// columns; a column left out is NULL.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// maxBackfillLine bounds a line of a backfill file.
const maxBackfillLine = 1 << 20

// BackfillSignals reads the rows of table t (its current schema) from r,
// the file format above, checks each against t (binlog.BackfillRow) and
// hands them to emit in signals of at most binlog.MaxBackfillRows rows and
// maxSignalBytes, each checked as the producer will check it
// (CheckBackfill). It returns the rows read; an error names the line.
func BackfillSignals(r io.Reader, t *cdc.Table, src *binlog.Config, emit func(kafka.Signal) error) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxBackfillLine)
	sig := kafka.Signal{Type: kafka.SignalBackfill, Tables: []string{t.ID()}}
	size0 := 0 // the columns' JSON
	size, rows, line := 0, 0, 0
	flush := func() error {
		if len(sig.Rows) == 0 {
			return nil
		}
		if err := CheckBackfill(sig, src); err != nil {
			return err
		}
		if err := emit(sig); err != nil {
			return err
		}
		sig.Rows, size = nil, size0
		return nil
	}
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		obj, err := backfillObject(text)
		if err != nil {
			return rows, fmt.Errorf("line %d: %w", line, err)
		}
		if sig.Columns == nil {
			sig.Columns = slices.Sorted(maps.Keys(obj))
			head, _ := json.Marshal(sig.Columns)
			size0, size = len(head), len(head)
		}
		vals, err := backfillValues(obj, sig.Columns)
		if err == nil {
			_, err = binlog.BackfillRow(t, sig.Columns, vals)
		}
		if err != nil {
			return rows, fmt.Errorf("line %d: %w", line, err)
		}
		b, err := json.Marshal(vals)
		if err != nil {
			return rows, err
		}
		n := len(b) + 1
		if size0+n+1024 > maxSignalBytes {
			return rows, fmt.Errorf("line %d: %d bytes, more than a request holds (%d)", line, size0+n, maxSignalBytes)
		}
		if len(sig.Rows) == binlog.MaxBackfillRows || size+n > maxSignalBytes-1024 {
			if err := flush(); err != nil {
				return rows, err
			}
		}
		sig.Rows = append(sig.Rows, vals)
		size += n
		rows++
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("line %d: %w", line+1, err)
	}
	if rows == 0 {
		return 0, errors.New("no rows")
	}
	return rows, flush()
}

// backfillObject parses one line: a JSON object, nothing after it.
func backfillObject(text []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(text))
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() || obj == nil {
		return nil, errors.New("want one JSON object")
	}
	return obj, nil
}

// backfillValues are the texts of obj's values of columns (nil: NULL), and
// obj must name exactly columns.
func backfillValues(obj map[string]json.RawMessage, columns []string) ([]*string, error) {
	if len(obj) != len(columns) {
		return nil, fmt.Errorf("names %d columns, the first line %d (%v)", len(obj), len(columns), columns)
	}
	vals := make([]*string, len(columns))
	for i, c := range columns {
		raw, ok := obj[c]
		if !ok {
			return nil, fmt.Errorf("has no %q, which the first line has", c)
		}
		var s string
		switch raw = bytes.TrimSpace(raw); {
		case string(raw) == "null":
			continue
		case string(raw) == "true":
			s = "1"
		case string(raw) == "false":
			s = "0"
		case raw[0] == '"':
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("column %s: %w", c, err)
			}
		case raw[0] == '{' || raw[0] == '[':
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil, fmt.Errorf("column %s: %w", c, err)
			}
			s = b.String()
		default: // a number, as written
			s = string(raw)
		}
		vals[i] = &s
	}
	return vals, nil
}
