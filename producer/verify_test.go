package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/pipeline"
	"github.com/strait-cdc/strait/pkg/service"
	"github.com/strait-cdc/strait/pkg/sink"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// verifyTables are the tables of the verify tests: a key of one integer
// and many types, a composite key, a text key (compared whole: MariaDB
// sorts text by collation, BigQuery by code point), and no key.
var verifyTables = []string{
	`CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(40) CHARACTER SET utf8mb4, price DECIMAL(10,2), big BIGINT UNSIGNED,
		ratio FLOAT, score DOUBLE, flag BIT(1), bits BIT(12), data VARBINARY(16), made DATE, at DATETIME(6), ts TIMESTAMP(3) NULL,
		dur TIME(3), doc JSON, kind ENUM('a', 'b'), place POINT)`,
	`CREATE TABLE order_lines (order_id INT, line SMALLINT, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, PRIMARY KEY (order_id, line))`,
	`CREATE TABLE tags (name VARCHAR(20) PRIMARY KEY, uses INT)`,
	`CREATE TABLE events (what VARCHAR(20), n INT)`,
	`CREATE TABLE keyed (amount DECIMAL(12,3), day DATE, at DATETIME(6), ts TIMESTAMP(6), bin VARBINARY(4), big BIGINT UNSIGNED, v INT,
		PRIMARY KEY (amount, day, at, ts, bin, big))`,
}

var verifyRows = []string{
	`INSERT INTO items VALUES
		(1, 'Ana', 12.50, 18446744073709551615, 1.25, -2.5e300, b'1', b'101010101010', X'00ff', '2024-02-29', '2024-02-29 23:59:59.000001', '2024-01-01 00:00:00.5',
			'-838:59:59.000', '{"b": 1, "a": [true, null]}', 'a', ST_GeomFromText('POINT(1 2)', 4326)),
		(2, 'Björn 🙂', 0.10, 0, 0, 0, b'0', b'0', '', '1970-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:01', '00:00:00', '[]', 'b', NULL),
		(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(4, 'x', -99999999.99, 1, NULL, NULL, NULL, NULL, NULL, '9999-12-31', NULL, NULL, '838:59:59', 'null', NULL, NULL),
		(5, 'y', 1, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(6, 'z', 2, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(7, 'w', 3, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`INSERT INTO order_lines VALUES (1, 1, 'A', 1), (1, 2, 'B', 2), (1, 3, 'C', 3), (2, 1, 'D', 4), (3, 1, 'E', 5), (3, 2, 'F', 6)`,
	`INSERT INTO tags VALUES ('a', 1), ('B', 2), ('c', 3)`,
	`INSERT INTO events VALUES ('start', 1), ('start', 1), ('stop', NULL)`,
	`INSERT INTO keyed VALUES
		(-1.5, '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00', X'00', 0, 1),
		(-1.5, '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00', X'01', 0, 2),
		(-1.5, '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00.000001', X'00', 0, 3),
		(-1.5, '2024-01-01', '2024-01-01 00:00:00.5', '2024-01-01 00:00:00', X'00', 0, 4),
		(-1.5, '2024-01-02', '2024-01-01 00:00:00', '2024-01-01 00:00:00', X'00', 0, 5),
		(0, '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00', X'ff', 18446744073709551615, 6),
		(0, '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00', X'ff00', 1, 7),
		(10.001, '1970-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:01', '', 5, 8)`,
}

// bqEnv is a local BigQuery endpoint with a dataset written by the
// consumer's writer.
type bqEnv struct {
	srv     *bqfake.Server
	cfg     bigquery.Config
	w       *bigquery.Writer
	schemas int             // tables applied: their positions
	ids     testenv.Schemas // the writer's registry
}

func newBQEnv(t *testing.T, ctx context.Context, mode string, opts ...bqfake.Opt) *bqEnv {
	t.Helper()
	srv, err := bqfake.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &bqEnv{srv: srv}
	e.cfg.Defaults()
	e.cfg.Project, e.cfg.Dataset, e.cfg.Mode = "proj", "ds", mode
	e.cfg.Endpoint, e.cfg.WriteEndpoint, e.cfg.Insecure = srv.RESTURL(), srv.GRPCAddr(), true
	e.w, err = bigquery.NewWriter(ctx, &e.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), bigquery.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.w.Close() })
	e.w.Schemas = &e.ids
	return e
}

// bqChange is one event for apply: op and the row (after, or before for a
// delete).
type bqChange struct {
	op  cdc.Op
	row []cdc.Value
}

// apply writes changes of table t through the consumer's writer, as the
// Avro envelopes the producer publishes, with increasing positions.
func (e *bqEnv) apply(t *testing.T, ctx context.Context, tbl *cdc.Table, changes []bqChange) {
	t.Helper()
	s, err := avro.Build("v", tbl)
	if err != nil {
		t.Fatal(err)
	}
	e.schemas++
	enc := avro.NewEncoder(tbl, "strait", "test", 0, uint32(e.schemas))
	var batch []sink.Change
	for i, c := range changes {
		ev := &cdc.Event{Table: tbl, Op: c.op, Position: cdc.Position{File: 1, Pos: uint64(e.schemas), Row: uint64(i)}, CommitTime: time.Now()}
		if c.op == cdc.OpDelete {
			ev.Before = c.row
		} else {
			ev.After = c.row
		}
		b, err := enc.AppendValue(nil, ev, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := sink.Change{Offset: int64(i), ValueSchemaID: e.ids.ID(s.Value), Value: b[5:]}
		if s.Key != "" {
			c.KeySchemaID = e.ids.ID(s.Key)
		}
		batch = append(batch, c)
	}
	if err := e.w.Apply(ctx, sink.Topic{Name: "v." + tbl.ID(), Prefix: "v", Database: tbl.Database, Table: tbl.Name}, batch); err != nil {
		t.Fatalf("apply %s: %v", tbl.ID(), err)
	}
}

// snapshot writes every row of db.table as a snapshot read (op r).
func (e *bqEnv) snapshot(t *testing.T, ctx context.Context, db, table string) *cdc.Table {
	t.Helper()
	cfg := sourceConfig()
	scanner, err := binlog.NewScanner(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer scanner.Close()
	scan, err := scanner.Open(ctx, db, table)
	if err != nil {
		t.Fatal(err)
	}
	defer scan.Close()
	rows, err := scan.Next(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs []bqChange
	for _, r := range rows {
		cs = append(cs, bqChange{cdc.OpRead, r})
	}
	e.apply(t, ctx, scan.Table(), cs)
	return scan.Table()
}

func sourceConfig() binlog.Config {
	var c binlog.Config
	c.Defaults()
	c.Host, c.Port, c.User = env.db.Host, env.db.Port, env.db.User
	return c
}

// verify runs `producer verify` against the endpoint; pending keys are
// re-checked for 100ms.
func (e *bqEnv) verify(ctx context.Context, db string, extra ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := e.verifyTo(ctx, db, &out, &errOut, extra...)
	return out.String(), errOut.String(), err
}

// verifyTo is verify writing to stdout and stderr.
func (e *bqEnv) verifyTo(ctx context.Context, db string, stdout, stderr io.Writer, extra ...string) error {
	args := append([]string{"verify",
		"-source.host", env.db.Host, "-source.port", fmt.Sprint(env.db.Port), "-source.user", env.db.User, "-source.include", db + ".*",
		"-bigquery.project", e.cfg.Project, "-bigquery.dataset", e.cfg.Dataset, "-bigquery.endpoint", e.cfg.Endpoint,
		"-bigquery.write_endpoint", e.cfg.WriteEndpoint, "-bigquery.insecure", "-bigquery.mode", e.cfg.Mode,
		"-chunk-rows", "2", "-progress", "1ns", "-max-wait", "100ms", "-recheck", "20ms",
	}, extra...)
	return run(ctx, args, func(string) string { return "" }, stdout, stderr)
}

// wantLines checks that out holds each line; <sum> stands for the
// checksum (or both checksums) of a summary line.
func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		re := strings.ReplaceAll(regexp.QuoteMeta(l), "<sum>", "checksums? [0-9a-f]{12}( / [0-9a-f]{12})?")
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

// TestVerifyDetectsDifferences writes the tables to BigQuery, verifies
// them, changes the source behind the pipeline's back (binlog off for the
// session) and verifies again: each changed, removed and added row is
// named by its key.
func TestVerifyDetectsDifferences(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := "verify_upsert"
	if err := env.db.Exec(ctx, "", append([]string{"CREATE DATABASE " + db, "USE " + db}, append(verifyTables, verifyRows...)...)...); err != nil {
		t.Fatal(err)
	}
	e := newBQEnv(t, ctx, bigquery.ModeUpsert)
	for _, tbl := range []string{"items", "order_lines", "tags", "events", "keyed"} {
		e.snapshot(t, ctx, db, tbl)
	}
	out, progress, err := e.verify(ctx, db)
	if err != nil {
		t.Fatalf("verify of equal tables: %v\n%s", err, out)
	}
	wantLines(t, out,
		"verify_upsert.items: match — source rows 7, BigQuery rows 7, <sum>, 4 key ranges, 0 differences",
		"verify_upsert.order_lines: match — source rows 6, BigQuery rows 6, <sum>, 4 key ranges, 0 differences",
		"verify_upsert.tags: match — source rows 3, BigQuery rows 3, <sum>, whole table, 0 differences",
		"verify_upsert.events: match — source rows 3, BigQuery rows 3, <sum>, whole table, 0 differences",
		"verify_upsert.keyed: match — source rows 8, BigQuery rows 8, <sum>, 5 key ranges, 0 differences",
		"every table matches (5)")
	wantLines(t, progress, "verify verify_upsert.items: 2 rows checked of about")

	if err := env.db.Exec(ctx, db, "SET SESSION sql_log_bin = 0",
		"UPDATE items SET price = 12.51, doc = '{\"a\": [true, null], \"b\": 2}' WHERE id = 1",
		"DELETE FROM items WHERE id = 3",
		"INSERT INTO items (id, name) VALUES (100, 'new')",
		"UPDATE order_lines SET qty = 20 WHERE order_id = 1 AND line = 2",
		"DELETE FROM order_lines WHERE order_id = 3 AND line = 2",
		"INSERT INTO order_lines VALUES (0, 9, 'Z', 1)",
		"UPDATE tags SET uses = 7 WHERE name = 'B'",
		"INSERT INTO events VALUES ('start', 1)",
		"DELETE FROM events WHERE what = 'stop'",
		"UPDATE keyed SET v = 30 WHERE v = 3",
		"DELETE FROM keyed WHERE v = 6",
		"INSERT INTO keyed VALUES (0, '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00', X'fe', 0, 9)",
	); err != nil {
		t.Fatal(err)
	}
	out, _, err = e.verify(ctx, db)
	if !errors.Is(err, errDifferences) {
		t.Fatalf("verify of changed tables: error %v, want %v\n%s", err, errDifferences, out)
	}
	wantLines(t, out,
		// doc is MariaDB JSON: compared and shown as canonical JSON.
		`verify_upsert.items: different (id=1): price: source 12.51, BigQuery 12.5; doc: source {"a":[true,null],"b":2}, BigQuery {"a":[true,null],"b":1}`,
		"verify_upsert.items: extra (id=3)",
		"verify_upsert.items: missing (id=100)",
		"verify_upsert.items: DIFFERS — source rows 7, BigQuery rows 7, <sum>, 4 key ranges, 3 differences",
		"verify_upsert.order_lines: different (order_id=1, line=2): qty: source 20, BigQuery 2",
		"verify_upsert.order_lines: extra (order_id=3, line=2)",
		"verify_upsert.order_lines: missing (order_id=0, line=9)",
		`verify_upsert.tags: different (name="B"): uses: source 7, BigQuery 2`,
		"verify_upsert.events: missing (what=start, n=1)",
		"verify_upsert.events: extra (what=stop, n=NULL)",
		"verify_upsert.events: DIFFERS — source rows 3, BigQuery rows 3, <sum>, whole table, 2 differences",
	)
	wantLines(t, out,
		"verify_upsert.keyed: different (amount=-1.5, day=2024-01-01, at=2024-01-01 00:00:00.000000, ts=2024-01-01 00:00:00.000001 UTC, bin=0x00, big=0): v: source 30, BigQuery 3",
		"verify_upsert.keyed: extra (amount=0, day=2024-01-01, at=2024-01-01 00:00:00.000000, ts=2024-01-01 00:00:00.000000 UTC, bin=0xff, big=18446744073709551615)",
		"verify_upsert.keyed: missing (amount=0, day=2024-01-01, at=2024-01-01 00:00:00.000000, ts=2024-01-01 00:00:00.000000 UTC, bin=0xfe, big=0)",
		"verify_upsert.keyed: DIFFERS — source rows 8, BigQuery rows 8, <sum>, 5 key ranges, 3 differences",
	)
	if err.Error() != "BigQuery differs from the source: 5 of 5 tables" {
		t.Errorf("error = %q", err)
	}

	// -tables picks tables; the exit code is 1.
	out, _, err = e.verify(ctx, db, "-tables", db+".order_lines")
	if !errors.Is(err, errDifferences) || strings.Contains(out, "items") || exitCode(err) != 1 {
		t.Errorf("verify -tables order_lines: error %v, output:\n%s", err, out)
	}
}

// TestVerifyAppendMode verifies a changelog: BigQuery holds every change,
// verify reduces it to the latest row per key (the _latest view's rule).
func TestVerifyAppendMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := "verify_append"
	if err := env.db.Exec(ctx, "", "CREATE DATABASE "+db, "USE "+db, verifyTables[1], verifyRows[1]); err != nil {
		t.Fatal(err)
	}
	e := newBQEnv(t, ctx, bigquery.ModeAppend)
	tbl := e.snapshot(t, ctx, db, "order_lines")
	// Later changes, made in the source too: (1,2) updated twice, (2,1) deleted.
	row := func(order, line int64, sku string, qty int64) []cdc.Value {
		return []cdc.Value{cdc.Int(order), cdc.Int(line), cdc.Str(sku), cdc.Int(qty)}
	}
	e.apply(t, ctx, tbl, []bqChange{{cdc.OpUpdate, row(1, 2, "B", 7)}, {cdc.OpUpdate, row(1, 2, "B", 8)}, {cdc.OpDelete, row(2, 1, "D", 4)}})
	if err := env.db.Exec(ctx, db, "SET SESSION sql_log_bin = 0", "UPDATE order_lines SET qty = 8 WHERE order_id = 1 AND line = 2",
		"DELETE FROM order_lines WHERE order_id = 2"); err != nil {
		t.Fatal(err)
	}
	out, _, err := e.verify(ctx, db)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	wantLines(t, out, "verify_append.order_lines: match — source rows 5, BigQuery rows 5, <sum>, 3 key ranges, 0 differences")

	if err := env.db.Exec(ctx, db, "SET SESSION sql_log_bin = 0", "UPDATE order_lines SET sku = 'b' WHERE order_id = 1 AND line = 2"); err != nil {
		t.Fatal(err)
	}
	out, _, err = e.verify(ctx, db)
	if !errors.Is(err, errDifferences) {
		t.Fatalf("verify: error %v, want a difference\n%s", err, out)
	}
	wantLines(t, out, "verify_append.order_lines: different (order_id=1, line=2): sku: source b, BigQuery B")
}

// TestVerifyMissingTable reports a table the consumer has not created.
func TestVerifyMissingTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := "verify_missing"
	if err := env.db.Exec(ctx, "", "CREATE DATABASE "+db, "USE "+db, verifyTables[3], verifyRows[3], "CREATE TABLE empty (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	e := newBQEnv(t, ctx, bigquery.ModeUpsert)
	out, _, err := e.verify(ctx, db)
	if !errors.Is(err, errDifferences) {
		t.Fatalf("verify: error %v, want a difference\n%s", err, out)
	}
	wantLines(t, out, "verify_missing.events: missing table: ds.verify_missing_events does not exist in BigQuery",
		"verify_missing.empty: match — source rows 0, BigQuery rows 0")
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	return service.ExitCode(err)
}

// TestVerifyWaitsForStaleness: BigQuery reads an upsert table as of its
// last background apply, up to max_staleness old (bqfake with
// WithBackgroundApply). A change the consumer wrote just before verify is
// not visible yet: verify holds the key as pending and re-checks it, and
// it settles once a background apply has run (the test moves bqfake's
// clock past max_staleness when verify says keys are pending). A key that
// differs for good is reported once the wait is over.
func TestVerifyWaitsForStaleness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := "verify_stale"
	if err := env.db.Exec(ctx, "", "CREATE DATABASE "+db, "USE "+db, verifyTables[1], verifyRows[1]); err != nil {
		t.Fatal(err)
	}
	clock := bqfake.NewClock(time.Now())
	e := newBQEnv(t, ctx, bigquery.ModeUpsert, bqfake.WithClock(clock), bqfake.WithBackgroundApply())
	tbl := e.snapshot(t, ctx, db, "order_lines")
	out, _, err := e.verify(ctx, db)
	if err != nil {
		t.Fatalf("verify of equal tables: %v\n%s", err, out)
	}
	wantLines(t, out, "verify_stale.order_lines: match — source rows 6, BigQuery rows 6, <sum>, 4 key ranges, 0 differences",
		"(read through the Storage Read API, max_staleness 15m0s)")

	// (1,2) changes in the source and the consumer writes it to BigQuery,
	// which has not applied it yet; (2,1) changes behind the pipeline's back.
	if err := env.db.Exec(ctx, db, "SET SESSION sql_log_bin = 0",
		"UPDATE order_lines SET qty = 20 WHERE order_id = 1 AND line = 2",
		"UPDATE order_lines SET qty = 40 WHERE order_id = 2 AND line = 1"); err != nil {
		t.Fatal(err)
	}
	e.apply(t, ctx, tbl, []bqChange{{cdc.OpUpdate, []cdc.Value{cdc.Int(1), cdc.Int(2), cdc.Str("B"), cdc.Int(20)}}})
	var stdout bytes.Buffer
	stderr := lineHook(func(line string) {
		if strings.Contains(line, "may not be applied yet") {
			clock.Advance(15 * time.Minute) // a background apply is due
		}
	})
	err = e.verifyTo(ctx, db, &stdout, stderr, "-max-wait", "1s")
	if !errors.Is(err, errDifferences) {
		t.Fatalf("verify: error %v, want a difference\n%s", err, stdout.String())
	}
	out = stdout.String()
	wantLines(t, out,
		"verify_stale.order_lines: different (order_id=2, line=1): qty: source 40, BigQuery 4; still, after waiting 1s for BigQuery's background apply",
		"verify_stale.order_lines: DIFFERS — source rows 6, BigQuery rows 6, <sum>, 4 key ranges, 1 differences",
		"(read through the Storage Read API, max_staleness 15m0s, 1 of 2 pending keys settled)")
	if strings.Contains(out, "order_id=1, line=2") {
		t.Errorf("the key the consumer wrote is reported:\n%s", out)
	}
}

// TestVerifyRefusesNoStaleness: BigQuery's Storage Read API does not read
// an upsert table without max_staleness, and verify has no other read path.
func TestVerifyRefusesNoStaleness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := "verify_fresh"
	if err := env.db.Exec(ctx, "", "CREATE DATABASE "+db, "USE "+db, verifyTables[1], verifyRows[1]); err != nil {
		t.Fatal(err)
	}
	e := newBQEnv(t, ctx, bigquery.ModeUpsert, bqfake.WithBackgroundApply())
	e.cfg.MaxStaleness = 0 // the writer's configuration: tables are created without one
	e.snapshot(t, ctx, db, "order_lines")
	out, _, err := e.verify(ctx, db)
	if err == nil || !strings.Contains(err.Error(), "has no max_staleness") || !strings.Contains(err.Error(), "set bigquery.max_staleness") {
		t.Fatalf("verify: error %v, want a refusal naming max_staleness\n%s", err, out)
	}
}

// lineHook is a writer that hands each write (a line) to the function.
type lineHook func(string)

func (h lineHook) Write(p []byte) (int, error) {
	h(string(p))
	return len(p), nil
}

// TestVerifyNamesDeadLetteredKeys: a row too large for any record is
// dead-lettered by the producer, so BigQuery lacks it; `producer verify`,
// given kafka.*, reports the difference and says, on a line of its own,
// that the producer dead-lettered a change of the table as too large.
func TestVerifyNamesDeadLetteredKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS verify_dl", "CREATE DATABASE verify_dl",
		"CREATE TABLE verify_dl.docs (id INT PRIMARY KEY, body LONGBLOB)", "INSERT INTO verify_dl.docs VALUES (1, 'small')"); err != nil {
		t.Fatal(err)
	}
	e := newBQEnv(t, ctx, "upsert")
	e.snapshot(t, ctx, "verify_dl", "docs")
	prefix := uniquePrefix("vdl")
	p := startProducer(t, producerArgs(t, ctx, prefix, "verify_dl.*"))
	addr := p.httpAddr(t, ctx)
	if err := env.db.Exec(ctx, "verify_dl", "INSERT INTO docs VALUES (2, REPEAT('b', 30 << 20))"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the 30 MB row dead-lettered", func() bool {
		var st pipeline.Status
		return getJSON(addr+"/status", &st) == nil && st.Diverged["verify_dl.docs"] == 1
	})
	records(t, ctx, env.kafka.ListenAddrs(), prefix+"._dead_letter", 1) // committed
	out, errOut, err := e.verify(ctx, "verify_dl", "-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","), "-kafka.topic_prefix", prefix)
	if exitCode(err) != 1 {
		t.Fatalf("verify: %v, want exit 1 (a difference)\n%s\n%s", err, out, errOut)
	}
	wantLines(t, out, "missing (id=2)",
		"verify_dl.docs: 1 changes the producer dead-lettered as too large ("+prefix+"._dead_letter)")
	if t.Failed() {
		t.Logf("verify's stderr:\n%s", errOut)
	}
}
