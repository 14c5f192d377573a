package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// tailLine is one line of `consumer tail`: a record of a table topic,
// decoded. Errors of records that cannot be decoded go in Error.
type tailLine struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       any    `json:"key"`
	Op        any    `json:"op"`
	Before    any    `json:"before"`
	After     any    `json:"after"`
	Source    any    `json:"source"`
	// TS is the envelope's ts_ms, when the producer processed the change,
	// in RFC 3339; the source commit time is source.ts_ms.
	TS    any    `json:"ts"`
	Error string `json:"error,omitempty"`
}

// runTail is `consumer tail`: it prints the changes of the selected table
// topics as JSON lines, reading outside any consumer group (nothing is
// committed) and only committed producer transactions.
func runTail(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consumer tail", flag.ContinueOnError)
	topics := fs.String("topics", "", "table topics to print (default all of kafka.topic_prefix): comma-separated <database>.<table> or topic names, or ^regexps over topic names")
	fromBeginning := fs.Bool("from-beginning", false, "start at the first record Kafka keeps (default: records from now on)")
	limit := fs.Int("n", 0, "stop after this many records (0: until interrupted)")
	cfg, err := commandConfig("tail", "Print the changes of the table topics as JSON lines (topic, partition, offset, key, op, before, after, source, ts).",
		fs, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	if *limit < 0 {
		return fmt.Errorf("-n: %d, want 0 or more", *limit)
	}
	filter, err := kafka.NewTopicFilter(cfg.Kafka.TopicPrefix, *topics)
	if err != nil {
		return fmt.Errorf("-topics: %w", err)
	}
	start, from := kafka.TailFromNow, "now"
	if *fromBeginning {
		start, from = kafka.TailFromBeginning, "the beginning"
	}
	// Where reading starts is fixed before saying so: every record
	// committed after this line is printed.
	tail, err := kafka.NewTail(ctx, &cfg.Kafka, filter, start, quietLogger(stderr))
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer tail.Close()
	fmt.Fprintf(stderr, "tailing %s from %s\n", strings.Join(filter.Patterns(), " "), from)

	out := bufio.NewWriter(stdout)
	dec := avro.NewJSONDecoder()
	printed := 0
	for *limit == 0 || printed < *limit {
		recs, err := tail.Poll(ctx)
		if ctx.Err() != nil {
			return out.Flush()
		}
		if err != nil {
			out.Flush()
			return err
		}
		for _, r := range recs {
			b, err := json.Marshal(decodeTail(dec, &r))
			if err != nil { // cannot happen: decoded values are JSON-ready
				return fmt.Errorf("record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			out.Write(b)
			out.WriteByte('\n')
			if printed++; printed == *limit {
				break
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// decodeTail turns a record into its line. A tombstone (the null value
// after a delete) has op, before, after, source and ts null.
func decodeTail(dec *avro.JSONDecoder, r *kafka.TailRecord) *tailLine {
	l := &tailLine{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	fail := func(what string, err error) *tailLine {
		l.Error = what + ": " + err.Error()
		return l
	}
	if r.Err != nil {
		return fail("record", r.Err)
	}
	if r.Key.Body != nil {
		k, err := dec.Decode(r.KeySchema, r.Key.Body)
		if err != nil {
			return fail(fmt.Sprintf("key (schema id %d)", r.Key.SchemaID), err)
		}
		l.Key = k
	}
	if r.Value.Body == nil {
		return l
	}
	v, err := dec.Decode(r.ValueSchema, r.Value.Body)
	if err != nil {
		return fail(fmt.Sprintf("value (schema id %d)", r.Value.SchemaID), err)
	}
	env, ok := v.(avro.Object)
	if !ok {
		return fail(fmt.Sprintf("value (schema id %d)", r.Value.SchemaID), errors.New("not a change envelope (a record)"))
	}
	l.Op, l.Before, l.After, l.Source = env.Get("op"), env.Get("before"), env.Get("after"), env.Get("source")
	if ms, ok := env.Get("ts_ms").(int64); ok {
		l.TS = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
	}
	return l
}
