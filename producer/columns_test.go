package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/sink"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// piiSentinels are values that must never leave the producer: the excluded,
// hashed and nulled columns' values, each written once before the producer
// starts (snapshot) and in the stream's inserts, updates and deletes.
var piiSentinels = map[string]string{
	"snapshot email": "ada.sentinel.7f3a@example.com",
	"snapshot ssn":   "901-77-4431",
	"snapshot phone": "+1-555-0199-4431",
	"snapshot token": "tok-sentinel-snap-93a1c",
	"insert email":   "bo.sentinel.19cd@example.com",
	"insert ssn":     "902-88-5512",
	"insert phone":   "+1-555-0142-5512",
	"insert token":   "tok-sentinel-ins-5b2e7",
	"update email":   "bo.sentinel.upd.77e0@example.com",
	"update ssn":     "903-99-6623",
	"update phone":   "+1-555-0177-6623",
	"added notes":    "notes-sentinel-added-column-e81f",
	"added secret":   "secret-sentinel-added-column-4c0d",
	"third email":    "cy.sentinel.c4d2@example.com",
	"third ssn":      "904-11-7734",
	"third phone":    "+1-555-0110-7734",
	"large email":    "dee.sentinel.large.5e1b@example.com",
	"large ssn":      "905-22-8845",
	"large phone":    "+1-555-0123-8845",
}

// piiControl is a value the rules publish: the search must find it.
const piiControl = "Ada Lovelace"

const piiHashKey = "columns-test-key-6c1f0e9a2b7d4e58"

func piiHash(v string) string {
	m := hmac.New(sha256.New, []byte(piiHashKey))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// TestColumnsNeverLeaveTheProducer captures two tables with source.columns
// rules — people: ssn and notes excluded, email hashed, phone nulled;
// logins: only id and login included — through a snapshot (rows written
// before the start) and the stream (insert, update, delete, and columns
// added by ALTER TABLE that the rules leave out), then searches every
// record of every Kafka topic (table topics, checkpoint, schema history,
// dead letters; committed or not) and every schema of every registry
// subject for the sentinel values: none may be there. The table topics
// are applied to BigQuery as the consumer does (a group member polling,
// the writer applying, commits): the rows hold the hashes and NULLs;
// `producer verify`, masking the source the same way, reports every table
// matching, and with another key, differences. Refused on the way: the
// hash mask without its key, a rule masking a key column, a snapshot
// condition on a column kept out.
func TestColumnsNeverLeaveTheProducer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	minimal, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{RowMetadata: "MINIMAL"})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(minimal.Stop)
	// With full row metadata each TABLE_MAP names its columns; with
	// minimal, the schema comes from information_schema and the schema
	// history, which is published too (<prefix>._schema_history).
	t.Run("binlog_row_metadata=FULL", func(t *testing.T) { testColumnsNeverLeave(t, env.db, false) })
	t.Run("binlog_row_metadata=MINIMAL", func(t *testing.T) { testColumnsNeverLeave(t, minimal, true) })
}

func testColumnsNeverLeave(t *testing.T, db *testenv.MariaDB, history bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := piiSentinels
	if err := db.Exec(ctx, "", "CREATE DATABASE pii", "USE pii",
		"CREATE TABLE people (id INT PRIMARY KEY, name TEXT, email VARCHAR(100), ssn CHAR(11) NOT NULL, phone VARCHAR(30) NOT NULL)",
		"CREATE TABLE logins (id INT PRIMARY KEY, login VARCHAR(40), token VARCHAR(64))",
		fmt.Sprintf("INSERT INTO people VALUES (1, '%s', '%s', '%s', '%s')", piiControl, s["snapshot email"], s["snapshot ssn"], s["snapshot phone"]),
		fmt.Sprintf("INSERT INTO logins VALUES (1, 'ada', '%s')", s["snapshot token"]),
	); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("pii")
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "producer.yaml")
	yaml := fmt.Sprintf(`source:
  host: %s
  port: %d
  user: %s
  include: [pii.*]
  columns:
    - table: pii.people
      exclude: [ssn, notes]
      mask:
        email: hash
        phone: null
    - table: pii.log*
      include: [id, login]
kafka:
  brokers: [%s]
  topic_prefix: %s
  schema_registry_url: %s
  partitions: 3
  max_record_bytes: 8192
http_addr: 127.0.0.1:0
log_format: text
`, db.Host, db.Port, db.User, strings.Join(env.kafka.ListenAddrs(), ", "), prefix, env.registry.URL())
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "STRAIT_SOURCE_COLUMN_HASH_KEY" {
			return piiHashKey
		}
		return ""
	}

	// Without the key, the hash mask is a configuration error naming the
	// variable.
	err := run(ctx, []string{"run", "-config", cfgFile}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "STRAIT_SOURCE_COLUMN_HASH_KEY") {
		t.Fatalf("run without the hash key: %v, want an error naming STRAIT_SOURCE_COLUMN_HASH_KEY", err)
	}

	// A rule masking a key column: producer run refuses to start, naming
	// the table and the column.
	err = run(ctx, []string{"run", "-config", cfgFile, "-source.columns", `[{"table": "pii.people", "mask": {"id": "hash"}}]`}, getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pii.people column id is part of the primary key") {
		t.Fatalf("run masking the key: %v, want an error naming pii.people and its column id", err)
	}

	p := startProducerEnv(t, []string{"run", "-config", cfgFile}, getenv)
	people, logins := prefix+".pii.people", prefix+".pii.logins"
	consume(t, ctx, 2, people, logins) // the snapshot's rows: the stream runs
	if err := db.Exec(ctx, "pii",
		fmt.Sprintf("INSERT INTO people VALUES (2, 'Bo', '%s', '%s', '%s')", s["insert email"], s["insert ssn"], s["insert phone"]),
		fmt.Sprintf("UPDATE people SET email = '%s', ssn = '%s', phone = '%s' WHERE id = 2", s["update email"], s["update ssn"], s["update phone"]),
		"UPDATE people SET name = 'Ada L.' WHERE id = 1", // the before image holds the snapshot's values
		"DELETE FROM people WHERE id = 2",
		// Too large for a record: dead-lettered; its delete goes out
		// with the key alone in the before image.
		fmt.Sprintf("INSERT INTO people VALUES (4, REPEAT('x', 10000), '%s', '%s', '%s')", s["large email"], s["large ssn"], s["large phone"]),
		"DELETE FROM people WHERE id = 4",
		"ALTER TABLE people ADD COLUMN notes TEXT",
		fmt.Sprintf("INSERT INTO people VALUES (3, 'Cy', '%s', '%s', '%s', '%s')", s["third email"], s["third ssn"], s["third phone"], s["added notes"]),
		fmt.Sprintf("INSERT INTO logins VALUES (2, 'bo', '%s')", s["insert token"]),
		"ALTER TABLE logins ADD COLUMN secret VARCHAR(40)",
		fmt.Sprintf("UPDATE logins SET secret = '%s' WHERE id = 2", s["added secret"]),
	); err != nil {
		t.Fatal(err)
	}
	// people: r 1, c 2, u 2, u 1, d 2 + tombstone, d 4 + tombstone, c 3;
	// logins: r 1, c 2, u 2.
	got := consume(t, ctx, 12, people, logins)
	for _, c := range got {
		if c.Topic != people || c.Value == nil {
			continue
		}
		for _, img := range []string{"before", "after"} {
			r := row(c.Value, img)
			if r == nil {
				continue
			}
			for _, col := range []string{"ssn", "notes"} {
				if _, ok := r[col]; ok {
					t.Errorf("%s %s image has the excluded column %s", c.Topic, img, col)
				}
			}
			if v := unwrap(r["phone"]); v != nil {
				t.Errorf("%s %s image: phone = %v, want NULL", c.Topic, img, v)
			}
			if v, _ := unwrap(r["email"]).(string); len(v) != 64 && !(img == "before" && c.Value["op"] == "d" && fmt.Sprint(unwrap(r["id"])) == "4") {
				t.Errorf("%s %s image: email = %q, want a 64-digit hash", c.Topic, img, v)
			}
		}
	}

	// Every record of every topic, read uncommitted, and every schema;
	// with the control value, which the search must find.
	search := map[string]string{"control value": piiControl}
	maps.Copy(search, s)
	found, topics := searchKafka(t, ctx, search)
	for _, topic := range []string{people, logins, prefix + "._checkpoint", prefix + "._schema_history", prefix + "._dead_letter"} {
		if topics[topic] == 0 && (history || !strings.HasSuffix(topic, "._schema_history")) {
			t.Errorf("topic %s: no record searched", topic)
		}
	}
	found = append(found, searchRegistry(t, ctx, search)...)
	found = append(found, searchText("the producer's log", p.logs.String(), s)...)
	control := false
	for _, f := range found {
		if strings.Contains(f, "control value") {
			control = true
			continue
		}
		t.Error(f)
	}
	if !control {
		t.Errorf("the search did not find the published control value %q: it searches nothing", piiControl)
	}

	// BigQuery, through the consumer's loop: poll, apply, commit.
	e := newBQEnv(t, ctx, bigquery.ModeUpsert)
	consumeIntoBigQuery(t, ctx, e, prefix, 12)
	rows := waitBigQueryRows(t, ctx, e, e.cfg.TableName("pii", "people"), 2)
	want := map[string]map[string]string{
		"1": {"name": "Ada L.", "email": piiHash(s["snapshot email"]), "phone": "NULL"},
		"3": {"name": "Cy", "email": piiHash(s["third email"]), "phone": "NULL"},
	}
	for _, r := range rows {
		w := want[r["id"]]
		if w == nil {
			t.Errorf("BigQuery pii_people has row %v", r)
			continue
		}
		for col, v := range w {
			if r[col] != v {
				t.Errorf("BigQuery pii_people id %s: %s = %q, want %q", r["id"], col, r[col], v)
			}
		}
		for _, col := range []string{"ssn", "notes"} {
			if _, ok := r[col]; ok {
				t.Errorf("BigQuery pii_people has the excluded column %s", col)
			}
		}
	}
	for _, r := range waitBigQueryRows(t, ctx, e, e.cfg.TableName("pii", "logins"), 2) {
		if len(r) != 2 {
			t.Errorf("BigQuery pii_logins row %v, want id and login only", r)
		}
	}

	// producer verify masks the source as the producer does.
	verifyArgs := []string{"verify", "-config", cfgFile,
		"-bigquery.project", e.cfg.Project, "-bigquery.dataset", e.cfg.Dataset, "-bigquery.endpoint", e.cfg.Endpoint,
		"-bigquery.write_endpoint", e.cfg.WriteEndpoint, "-bigquery.insecure", "-bigquery.mode", e.cfg.Mode,
		"-chunk-rows", "2", "-max-wait", "100ms", "-recheck", "20ms"}
	var out bytes.Buffer
	if err := run(ctx, verifyArgs, getenv, &out, io.Discard); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	wantLines(t, out.String(), "pii.people: match — source rows 2, BigQuery rows 2", "pii.logins: match — source rows 2, BigQuery rows 2", "every table matches (2)")
	out.Reset()
	otherKey := func(k string) string {
		if k == "STRAIT_SOURCE_COLUMN_HASH_KEY" {
			return "another-key-for-the-same-columns"
		}
		return ""
	}
	if err := run(ctx, verifyArgs, otherKey, &out, io.Discard); !errors.Is(err, errDifferences) {
		t.Errorf("verify with another key: %v, want differences\n%s", err, out.String())
	}
	wantLines(t, out.String(), "pii.people: different (id=1): email: source ")

	// A snapshot condition on a column kept out or masked is refused: the
	// rows it selects would tell about the values.
	var req bytes.Buffer
	if err := run(ctx, []string{"snapshot", "-config", cfgFile, "-tables", "pii.people", "-where", "ssn LIKE '9%'"}, getenv, &req, io.Discard); err != nil {
		t.Fatalf("producer snapshot -where: %v", err)
	}
	waitFor(t, ctx, "the filtered snapshot request to fail", func() bool {
		var list bytes.Buffer
		if err := run(ctx, []string{"snapshot", "-config", cfgFile, "-list"}, getenv, &list, io.Discard); err != nil {
			t.Fatalf("producer snapshot -list: %v", err)
		}
		return strings.Contains(list.String(), "column ssn is kept out of the published rows by source.columns")
	})
	if err := p.stop(); err != nil {
		t.Errorf("producer: %v", err)
	}
}

// startProducerEnv is startProducer with an environment.
func startProducerEnv(t *testing.T, args []string, getenv func(string) string) *producer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = run(ctx, args, getenv, io.Discard, &p.logs)
	}()
	t.Cleanup(func() {
		waited := p.waited
		if err := p.stop(); err != nil && !waited {
			t.Errorf("producer: %v", err)
		}
		if t.Failed() {
			t.Logf("producer log:\n%s", p.logs.String())
		}
	})
	return p
}

// searchText names each sentinel found in b.
func searchText(where string, b string, sentinels map[string]string) []string {
	var found []string
	for name, v := range sentinels {
		if strings.Contains(b, v) {
			found = append(found, fmt.Sprintf("%s holds the %s %q", where, name, v))
		}
	}
	return found
}

// searchKafka reads every record of every topic of the cluster, aborted
// ones too, and names each sentinel found in a key, value or header.
// It also returns how many records of each topic it read.
func searchKafka(t *testing.T, ctx context.Context, sentinels map[string]string) ([]string, map[string]int) {
	t.Helper()
	var found []string
	topics := map[string]int{}
	records, _ := readTopics(t, ctx, kgo.ReadUncommitted(), func(r *kgo.Record) {
		topics[r.Topic]++
		where := fmt.Sprintf("record %s/%d@%d", r.Topic, r.Partition, r.Offset)
		parts := []string{string(r.Key), string(r.Value)}
		for _, h := range r.Headers {
			parts = append(parts, h.Key, string(h.Value))
		}
		found = append(found, searchText(where, strings.Join(parts, "\x00"), sentinels)...)
	})
	t.Logf("searched %d records in topics %v", records, topics)
	return found, topics
}

// readTopics reads the named topics (none: every topic of the cluster)
// from their start to their end as of the call, at the isolation level,
// passing each record (not the transaction markers) to fn. It returns how
// many records and topics it read.
func readTopics(t *testing.T, ctx context.Context, isolation kgo.IsolationLevel, fn func(*kgo.Record), topics ...string) (int, int) {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{} // end offsets of the partitions not read to their end
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if o.Offset <= 0 {
			return
		}
		if offsets[o.Topic] == nil {
			offsets[o.Topic], left[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		offsets[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		left[o.Topic][o.Partition] = o.Offset
	})
	if len(offsets) == 0 {
		return 0, 0
	}
	// Transaction markers take offsets too: they are kept, so that the
	// last offset before each end is seen.
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(isolation), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	records := 0
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading topics: %v not read to their end", left)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
			if r.Attrs.IsControl() {
				return
			}
			records++
			fn(r)
		})
	}
	return records, len(offsets)
}

// searchRegistry names each sentinel found in any version of any subject's
// schema.
func searchRegistry(t *testing.T, ctx context.Context, sentinels map[string]string) []string {
	t.Helper()
	reg, err := sr.NewClient(sr.URLs(env.registry.URL()))
	if err != nil {
		t.Fatal(err)
	}
	subjects, err := reg.Subjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, subject := range subjects {
		schemas, err := reg.Schemas(ctx, subject)
		if err != nil {
			t.Fatalf("subject %s: %v", subject, err)
		}
		for _, s := range schemas {
			found = append(found, searchText(fmt.Sprintf("schema %s v%d", subject, s.Version), s.Schema.Schema, sentinels)...)
			if strings.HasSuffix(subject, ".pii.people-value") {
				for _, col := range []string{`"name":"ssn"`, `"name":"notes"`} {
					if strings.Contains(s.Schema.Schema, col) {
						t.Errorf("schema %s v%d has the excluded column: %s", subject, s.Version, col)
					}
				}
			}
		}
	}
	return found
}

// consumeIntoBigQuery runs the consumer's loop — poll the table topics of
// prefix as a group member (kafka.Group), apply each batch with the
// consumer's writer, commit — until n records were applied.
func consumeIntoBigQuery(t *testing.T, ctx context.Context, e *bqEnv, prefix string, n int) {
	t.Helper()
	var cfg kafka.GroupConfig
	cfg.Defaults()
	cfg.Brokers, cfg.GroupID, cfg.TopicPrefix, cfg.RegistryURL = env.kafka.ListenAddrs(), prefix+"-bigquery", prefix, env.registry.URL()
	g, err := kafka.NewGroup(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	e.w.Schemas = g
	for applied := 0; applied < n; {
		batches, err := g.Poll(ctx, nil)
		if err != nil {
			t.Fatalf("poll after %d of %d records: %v", applied, n, err)
		}
		for _, tb := range batches {
			if len(tb.Undecodable) > 0 {
				t.Fatalf("%s: undecodable records %v", tb.Topic, tb.Undecodable)
			}
			db, table, ok := kafka.TableTopic(prefix, tb.Topic)
			if !ok {
				t.Fatalf("polled %s, not a table topic", tb.Topic)
			}
			var batch []sink.Change
			for _, r := range tb.Records {
				batch = append(batch, sink.Change{Partition: r.Partition, Offset: r.Offset, KeySchemaID: r.Key.SchemaID,
					ValueSchemaID: r.Value.SchemaID, Value: r.Value.Body})
			}
			if err := e.w.Apply(ctx, sink.Topic{Name: tb.Topic, Prefix: prefix, Database: db, Table: table}, batch); err != nil {
				t.Fatalf("apply %s: %v", tb.Topic, err)
			}
			applied += len(batch)
		}
		if err := g.Commit(ctx, batches); err != nil {
			t.Fatal(err)
		}
		g.AllowRebalance()
	}
}

// waitBigQueryRows reads BigQuery table name until it has n rows, each as
// column → canonical text ("NULL" for NULL).
func waitBigQueryRows(t *testing.T, ctx context.Context, e *bqEnv, name string, n int) []map[string]string {
	t.Helper()
	r, err := bigquery.NewTableReader(ctx, &e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rows []map[string]string
	waitFor(t, ctx, fmt.Sprintf("%d rows in BigQuery %s", n, name), func() bool {
		info, err := r.Describe(ctx, name)
		if err != nil {
			return false
		}
		var names []string
		for _, c := range info.Columns {
			if !strings.HasPrefix(c.Name, "_") {
				names = append(names, c.Name)
			}
		}
		rows = nil
		err = r.Read(ctx, info, names, "", func(cells []bigquery.Cell) error {
			m := map[string]string{}
			for i, c := range cells {
				m[names[i]] = c.Text
				if c.Null {
					m[names[i]] = "NULL"
				}
			}
			rows = append(rows, m)
			return nil
		})
		return err == nil && len(rows) == n
	})
	return rows
}
