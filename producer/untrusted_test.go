package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/schemas"
)

// stateRecord writes value under key to partition 0 of topic (created
// compacted when missing): in a committed transaction of transactional id
// txnID, or as a plain record when txnID is "". It returns the offset.
func stateRecord(t *testing.T, ctx context.Context, topic, txnID, key string, value []byte) int64 {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if txnID != "" {
		opts = append(opts, kgo.TransactionalID(txnID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	compact := "compact"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatal(err)
	}
	if txnID != "" {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	r := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if txnID != "" {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	return r.Offset
}

// refusedAt checks that err is a *kafka.StateError naming topic and
// offset, and returns it.
func refusedAt(t *testing.T, err error, topic string, offset int64) *kafka.StateError {
	t.Helper()
	var se *kafka.StateError
	if !errors.As(err, &se) || se.Topic != topic || se.Offset != offset {
		t.Fatalf("producer error %v, want a *kafka.StateError naming %s offset %d", err, topic, offset)
	}
	return se
}

// lastCheckpoint returns the last committed checkpoint of prefix, decoded.
func lastCheckpoint(t *testing.T, ctx context.Context, prefix string) map[string]any {
	t.Helper()
	cps := readToEnd(t, ctx, prefix+"._checkpoint")
	if len(cps) == 0 {
		t.Fatal("no checkpoint")
	}
	return cps[len(cps)-1].Value
}

// encodeCheckpoint frames cp (goavro's native form of
// schemas/checkpoint.avsc) as the producer does.
func encodeCheckpoint(t *testing.T, cp map[string]any) []byte {
	t.Helper()
	c, err := goavro.NewCodec(schemas.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.BinaryFromNative([]byte{0, 0, 0, 0, 1}, cp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A checkpoint that is not a committed record of the producer's own
// transactional id — a plain record, or one committed by another
// transactional producer — is refused with its topic and offset; the
// producer neither skips the rows it would skip nor snapshots the table
// it names outside source.include.
func TestForgedCheckpointIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE forge", "CREATE TABLE forge.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE forge.secret (id INT PRIMARY KEY)", "INSERT INTO forge.secret VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("forge")
	args := producerArgs(t, ctx, prefix, "forge.t")
	p := startProducer(t, args)
	if err := env.db.Exec(ctx, "forge", "INSERT INTO t VALUES (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	consume(t, ctx, 1, prefix+".forge.t")
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	// Rows written while the producer is down; the forged checkpoint
	// points after them and names forge.secret for a snapshot.
	if err := env.db.Exec(ctx, "forge", "INSERT INTO t VALUES (2, 'b')", "INSERT INTO t VALUES (3, 'c')"); err != nil {
		t.Fatal(err)
	}
	status, err := env.db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	gtid, err := env.db.Query(ctx, "", "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	cp := lastCheckpoint(t, ctx, prefix)
	realPos, realGTID := cp["pos"], cp["gtid_set"]
	var pos int64
	fmt.Sscan(*status[0][1], &pos)
	cp["pos"], cp["gtid_set"] = pos, goavro.Union("string", *gtid[0][0])
	cp["snapshot_tables"], cp["include"] = []any{"forge.secret"}, []any{"forge.*"}
	topic := prefix + "._checkpoint"
	for _, forger := range []string{"", "strait-someone-else"} {
		at := stateRecord(t, ctx, topic, forger, prefix, encodeCheckpoint(t, cp))
		p = startProducer(t, withoutStart(args))
		se := refusedAt(t, p.wait(t, ctx), topic, at)
		if !errors.Is(se, kafka.ErrUntrusted) {
			t.Errorf("forged by %q: %v, want kafka.ErrUntrusted", forger, se)
		}
	}

	// The producer's own transactional id vouches for a checkpoint, which
	// must still name only tables it can have written: forge.secret, which
	// its own patterns do not capture, cannot be.
	cp["include"] = []any{"forge.t"}
	at := stateRecord(t, ctx, topic, "strait-"+prefix, prefix, encodeCheckpoint(t, cp))
	p = startProducer(t, withoutStart(args))
	if se := refusedAt(t, p.wait(t, ctx), topic, at); !errors.Is(se, kafka.ErrInvalid) {
		t.Errorf("%v, want kafka.ErrInvalid", se)
	}
	// Captured by its own patterns but not by the configuration any more
	// (source.include narrowed during a snapshot): the table's snapshot is
	// dropped and the producer goes on.
	cp["include"], cp["pos"], cp["gtid_set"] = []any{"forge.*"}, realPos, realGTID
	stateRecord(t, ctx, topic, "strait-"+prefix, prefix, encodeCheckpoint(t, cp))
	p = startProducer(t, withoutStart(args))
	waitFor(t, ctx, "the dropped snapshot in the log", func() bool {
		return strings.Contains(p.logs.String(), "the configuration no longer captures the table; its snapshot is dropped")
	})
	waitEach(t, ctx, prefix+".forge.t", 3)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if got := readToEnd(t, ctx, prefix+".forge.secret"); len(got) != 0 {
		t.Errorf("%d records of forge.secret, a table outside source.include", len(got))
	}
}

// waitEach waits until topic holds n committed records.
func waitEach(t *testing.T, ctx context.Context, topic string, n int) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("%d records in %s", n, topic), func() bool { return len(readToEnd(t, ctx, topic)) >= n })
}

// A record of a few bytes whose Avro claims a count of 2^31-1 items, in
// the schema history or the checkpoint — committed by the producer's own
// transactional id, so that it reaches the decoder — stops the start with
// an error naming its topic and offset, instead of the decoder allocating
// by the claimed count (which killed the process: fatal error: out of
// memory).
func TestHostileStateRecordIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE hostile", "CREATE TABLE hostile.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	huge := binary.AppendUvarint(nil, (1<<31-1)<<1) // 2^31-1, zig-zag
	for _, c := range []struct {
		topic string
		key   string
		value []byte
	}{
		// database "a", table "b", then 2^31-1 columns: 14 bytes.
		{"._schema_history", "a.b", append([]byte{0, 0, 0, 0, 1, 2, 'a', 2, 'b'}, huge...)},
		// ten fields of one byte, then a map of 2^31-1 schema ids.
		{"._checkpoint", "", append([]byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, huge...)},
	} {
		t.Run(c.topic[2:], func(t *testing.T) {
			prefix := uniquePrefix("hostile")
			args := producerArgs(t, ctx, prefix, "hostile.*")
			p := startProducer(t, args)
			if err := env.db.Exec(ctx, "hostile", fmt.Sprintf("INSERT INTO t VALUES (%d)", len(c.topic))); err != nil {
				t.Fatal(err)
			}
			consume(t, ctx, 1, prefix+".hostile.t")
			if err := p.stop(); err != nil {
				t.Fatal(err)
			}
			key := c.key
			if key == "" {
				key = prefix
			}
			at := stateRecord(t, ctx, prefix+c.topic, "strait-"+prefix, key, c.value)
			p = startProducer(t, withoutStart(args))
			se := refusedAt(t, p.wait(t, ctx), prefix+c.topic, at)
			if !errors.Is(se, avro.ErrTooMany) {
				t.Errorf("%v, want avro.ErrTooMany", se)
			}
		})
	}
}
