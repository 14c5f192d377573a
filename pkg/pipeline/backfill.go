package pipeline

// backfill.go: the file (or the query's rows) of producer backfill, turned
// into backfill signals (pkg/binlog's backfill.go publishes them). The file holds one JSON
// object per line, a row by column name: a string is the value's text, a
// number its digits as written, true and false are 1 and 0, an object or
// array a JSON column's document, null is NULL. Every line names the same
// columns; a column left out is NULL.

import (
	"bufio"
	"bytes"
	"context"
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
// maxSignalBytes each, each checked as the producer will check it
// (CheckBackfill). It returns the rows read; an error names the line.
func BackfillSignals(r io.Reader, t *cdc.Table, src *binlog.Config, emit func(kafka.Signal) error) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxBackfillLine)
	b := &backfillBatch{t: t, src: src, emit: emit}
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		obj, err := backfillObject(text)
		if err != nil {
			return b.rows, fmt.Errorf("line %d: %w", line, err)
		}
		columns := b.sig.Columns
		if columns == nil {
			columns = slices.Sorted(maps.Keys(obj))
		}
		vals, err := backfillValues(obj, columns)
		if err == nil {
			err = b.add(columns, vals)
		}
		if err != nil {
			return b.rows, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return b.rows, fmt.Errorf("line %d: %w", line+1, err)
	}
	return b.rows, b.end()
}

// BackfillQuery is BackfillSignals for the rows of the operator's query
// on the source (binlog.Scanner.Query: one read-only SELECT), its result's
// columns named as t's; an error names the row.
func BackfillQuery(ctx context.Context, s *binlog.Scanner, query string, t *cdc.Table, src *binlog.Config, emit func(kafka.Signal) error) (int, error) {
	b := &backfillBatch{t: t, src: src, emit: emit}
	err := s.Query(ctx, query, func(columns []string, vals []*string) error {
		if err := b.add(columns, vals); err != nil {
			return fmt.Errorf("row %d: %w", b.rows+1, err)
		}
		return nil
	})
	if err != nil {
		return b.rows, err
	}
	return b.rows, b.end()
}

// backfillBatch gathers checked rows into backfill signals.
type backfillBatch struct {
	t    *cdc.Table
	src  *binlog.Config
	emit func(kafka.Signal) error
	sig  kafka.Signal
	head int // bytes of the columns' JSON
	size int // bytes of sig's JSON, about
	rows int // rows added
}

// add checks a row against the table and adds it, emitting the signal
// before it when the row would not fit.
func (b *backfillBatch) add(columns []string, vals []*string) error {
	if b.sig.Columns == nil {
		if err := binlog.CheckBackfill(columns, [][]*string{vals}); err != nil {
			return err
		}
		b.sig = kafka.Signal{Type: kafka.SignalBackfill, Tables: []string{b.t.ID()}, Columns: columns}
		head, err := json.Marshal(columns)
		if err != nil {
			return err
		}
		b.head, b.size = len(head), len(head)
	}
	if _, err := binlog.BackfillRow(b.t, b.sig.Columns, vals); err != nil {
		return err
	}
	j, err := json.Marshal(vals)
	if err != nil {
		return err
	}
	n := len(j) + 1
	if b.head+n+1024 > maxSignalBytes {
		return fmt.Errorf("%d bytes, more than a request holds (%d)", b.head+n, maxSignalBytes)
	}
	if len(b.sig.Rows) == binlog.MaxBackfillRows || b.size+n > maxSignalBytes-1024 {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.sig.Rows = append(b.sig.Rows, vals)
	b.size += n
	b.rows++
	return nil
}

// flush emits the rows gathered, checked as the producer will check them.
func (b *backfillBatch) flush() error {
	if len(b.sig.Rows) == 0 {
		return nil
	}
	if err := CheckBackfill(b.sig, b.src); err != nil {
		return err
	}
	if err := b.emit(b.sig); err != nil {
		return err
	}
	b.sig.Rows, b.size = nil, b.head
	return nil
}

// end emits the last rows; no rows at all is an error.
func (b *backfillBatch) end() error {
	if b.rows == 0 {
		return errors.New("no rows")
	}
	return b.flush()
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
