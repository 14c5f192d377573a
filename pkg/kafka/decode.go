package kafka

// decode.go turns polled records into messages: the Confluent wire format
// split, and each schema id checked with the registry. The group and the
// tail both read table topics this way; the sink asks for a schema's text
// by id (Schema) when it has not parsed it yet.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// textBudget bounds each of the decoder's two generations of schema
// texts not yet taken, in bytes.
const textBudget = 8 << 20

// decoder resolves schema ids. It remembers every id the registry knows
// (an id never changes meaning), and holds the text of a schema from its
// first record until the sink takes it (take): the sink parses a schema
// once, by id, and keeps the parse. Keeping every text cost about 3 KB a
// table (a value and a key schema) for as long as the consumer ran. Texts
// never taken (a tombstone's key schema, a record rejected before its
// schema is read) are bounded: two generations of up to textBudget bytes,
// the older dropped when the newer fills. A text asked for again, or
// dropped, is fetched again. Safe from any goroutine.
type decoder struct {
	log        *slog.Logger
	registry   *sr.Client
	onRegistry func(up bool) // told when the registry stops and starts answering

	mu         sync.Mutex
	known      map[int]struct{}
	texts, old map[int]string // not taken yet
	textBytes  int            // held in texts
}

// newDecoder returns a decoder with an empty cache; onRegistry may be a
// no-op but not nil.
func newDecoder(log *slog.Logger, registry *sr.Client, onRegistry func(up bool)) *decoder {
	return &decoder{log: log, registry: registry, onRegistry: onRegistry,
		known: map[int]struct{}{}, texts: map[int]string{}}
}

// Reasons a record cannot be decoded: the strait.reason header of its dead
// letter.
const (
	// ReasonBadFraming: the key or value is not in the Confluent wire
	// format (magic byte 0 and a 4-byte schema id).
	ReasonBadFraming = "bad_framing"
	// ReasonUnknownSchema: the Schema Registry does not know the schema id.
	ReasonUnknownSchema = "unknown_schema"
	// ReasonBatchTooLarge: a fetched batch decompresses to more than
	// kafka.max_record_bytes, or to more than its share of memory
	// (limits.go); its records are not read, and the dead letter holds
	// none of them (strait.offset and strait.next_offset give the range).
	ReasonBatchTooLarge = "batch_too_large"
)

// decodeError is a record that can never be decoded.
type decodeError struct {
	reason string
	err    error
}

// Error is the cause's text.
func (e *decodeError) Error() string { return e.err.Error() }

// Unwrap returns the cause.
func (e *decodeError) Unwrap() error { return e.err }

// decode splits a framed message and checks, once per id, that the
// registry knows its schema; the text waits for take.
func (d *decoder) decode(ctx context.Context, b []byte) (Message, error) {
	if b == nil {
		return Message{}, nil
	}
	id, body, err := splitFrame(b)
	if err != nil {
		return Message{}, &decodeError{ReasonBadFraming, err}
	}
	d.mu.Lock()
	_, ok := d.known[id]
	d.mu.Unlock()
	if !ok {
		s, err := d.fetch(ctx, id)
		if err != nil {
			return Message{}, err
		}
		d.mu.Lock()
		d.known[id] = struct{}{}
		if d.textBytes+len(s) > textBudget {
			d.old, d.texts, d.textBytes = d.texts, map[int]string{}, 0
		}
		d.texts[id] = s
		d.textBytes += len(s)
		d.mu.Unlock()
	}
	return Message{SchemaID: id, Body: body}, nil
}

// take returns the text of schema id and forgets it: the one decode
// fetched, else the registry's.
func (d *decoder) take(ctx context.Context, id int) (string, error) {
	d.mu.Lock()
	s, ok := d.texts[id]
	if ok {
		delete(d.texts, id)
		d.textBytes -= len(s)
	} else if s, ok = d.old[id]; ok {
		delete(d.old, id)
	}
	d.mu.Unlock()
	if ok {
		return s, nil
	}
	return d.fetch(ctx, id)
}

// fetch asks the registry for the text of schema id. An id it does not
// know is a *decodeError (ReasonUnknownSchema).
func (d *decoder) fetch(ctx context.Context, id int) (string, error) {
	sch, err := d.schemaByID(ctx, id)
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return "", &decodeError{ReasonUnknownSchema, fmt.Errorf("schema id %d: unknown to the registry", id)}
	}
	if err != nil {
		return "", fmt.Errorf("schema id %d: %w", id, registryDenied(err))
	}
	return sch.Schema, nil
}

// registryBackoff bounds the wait between two tries of a registry that
// does not answer.
const registryBackoff = 30 * time.Second

// schemaByID looks schema id up, waiting out a registry that cannot be
// reached or answers 5xx (an outage: nothing can be decoded until it
// ends, and exiting would only crash-loop) with backoff: one warning when
// it starts, one line when it ends. An answer — the schema, 404, a
// refusal — returns, as does the end of ctx.
func (d *decoder) schemaByID(ctx context.Context, id int) (sr.Schema, error) {
	wait, start := 250*time.Millisecond, time.Now()
	for attempt := 0; ; attempt++ {
		sch, err := d.registry.SchemaByID(ctx, id)
		var re *sr.ResponseError
		if err == nil || ctx.Err() != nil || errors.As(err, &re) && re.StatusCode < 500 {
			if attempt > 0 && err == nil {
				d.log.Info("schema registry answers again", "after", time.Since(start).Round(time.Millisecond).String())
				d.onRegistry(true)
			}
			return sch, err
		}
		level := slog.LevelDebug
		if attempt == 0 {
			level = slog.LevelWarn
			d.onRegistry(false)
		}
		d.log.Log(ctx, level, "schema registry unavailable: waiting for it (records wait in Kafka, nothing is skipped)",
			"schema_id", id, "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return sch, err
		case <-time.After(wait):
		}
		wait = min(2*wait, registryBackoff)
	}
}

// splitFrame splits a record key or value in the Confluent wire format:
// magic byte 0, a big-endian 4-byte schema id, the Avro body (aliasing b).
// Whether the registry knows the id is decode's question.
func splitFrame(b []byte) (int, []byte, error) {
	if len(b) < 5 || b[0] != 0 {
		return 0, nil, errors.New("not in the Confluent wire format (magic byte 0, schema id)")
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[5:], nil
}
