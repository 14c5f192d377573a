package main

// Schema changes while streaming: every kind of DDL, against a server with
// binlog_row_metadata=FULL (env.db: the schema travels in each TABLE_MAP) and
// one with MINIMAL (names, keys and charsets from information_schema).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/testenv"
)

func TestSchemaChangesWhileStreaming(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	minimal, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{RowMetadata: "MINIMAL"})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(minimal.Stop)
	enforceBackward(t, "sc_")

	serverID := 7000
	for _, srv := range []struct {
		name string
		db   *testenv.MariaDB
	}{{"full", env.db}, {"minimal", minimal}} {
		for _, sc := range []struct {
			name string
			run  func(t *testing.T, ctx context.Context, db *testenv.MariaDB, args func(include string, extra ...string) []string, full bool)
		}{{"evolution", testEvolution}, {"incompatible", testIncompatible}, {"older rows", testOlderRows}, {"restart across DDL", testRestartAcrossDDL}} {
			serverID++
			id := serverID
			t.Run(srv.name+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				prefix := fmt.Sprintf("sc_%s_%d", srv.name, id)
				args := func(include string, extra ...string) []string {
					// Each subtest is its own replica of the server: its own
					// server_id, one partition per topic (so a topic's order is total).
					rows, err := srv.db.Query(ctx, "", "SHOW MASTER STATUS")
					if err != nil {
						t.Fatal(err)
					}
					return producerArgs(t, ctx, prefix, include, append([]string{
						"-source.host", srv.db.Host, "-source.port", fmt.Sprint(srv.db.Port),
						"-source.start_position", *rows[0][0] + ":" + *rows[0][1],
						"-source.server_id", fmt.Sprint(id), "-kafka.partitions", "1",
					}, extra...)...)
				}
				sc.run(t, ctx, srv.db, args, srv.name == "full")
			})
		}
	}
}

// testEvolution streams one table through ADD, DROP, MODIFY and RENAME
// COLUMN, RENAME TABLE, TRUNCATE and DROP TABLE, plus DDL outside the
// include filter. The producer keeps up: each step waits for its rows, so
// every schema is read before the next DDL runs (rows read only after a
// later DDL are the race of testOlderRows).
func testEvolution(t *testing.T, ctx context.Context, db *testenv.MariaDB, args func(include string, extra ...string) []string, full bool) {
	if err := db.Exec(ctx, "", "CREATE DATABASE sc_evo"); err != nil {
		t.Fatal(err)
	}
	a := args("sc_evo.*", "-source.exclude", "sc_evo.hidden")
	prefix := a[indexOf(a, "-kafka.topic_prefix")+1]
	p := startProducer(t, a)
	topic := func(table string) string { return prefix + ".sc_evo." + table }
	steps := []struct {
		stmts []string
		topic string
		n     int // records in topic once the step is published
	}{
		{[]string{"CREATE TABLE items (id INT PRIMARY KEY, qty INT, name VARCHAR(10), tmp INT)",
			"INSERT INTO items VALUES (1, 10, 'a', 7)"}, "items", 1},
		{[]string{"ALTER TABLE items ADD COLUMN note VARCHAR(20)",
			"INSERT INTO items VALUES (2, 20, 'b', 8, 'n2')", "UPDATE items SET note = 'n1' WHERE id = 1"}, "items", 3},
		{[]string{"ALTER TABLE items DROP COLUMN tmp", "INSERT INTO items VALUES (3, 30, 'c', 'n3')"}, "items", 4},
		{[]string{"ALTER TABLE items MODIFY qty BIGINT", "INSERT INTO items VALUES (4, 5000000000, 'd', 'n4')"}, "items", 5},
		{[]string{"ALTER TABLE items MODIFY name VARCHAR(100)", "INSERT INTO items VALUES (5, 50, 'a name longer than ten', 'n5')"}, "items", 6},
		{[]string{"ALTER TABLE items RENAME COLUMN note TO remark", "INSERT INTO items VALUES (6, 60, 'f', 'r6')"}, "items", 7},
		{[]string{"ALTER TABLE items CHANGE name title VARCHAR(100)", "INSERT INTO items VALUES (7, 70, 'g', 'r7')"}, "items", 8},
		{[]string{"RENAME TABLE items TO goods", "INSERT INTO goods VALUES (8, 80, 'h', 'r8')"}, "goods", 1},
		{[]string{"TRUNCATE TABLE goods", "INSERT INTO goods VALUES (9, 90, 'i', 'r9')"}, "goods", 2},
		{[]string{"DROP TABLE goods",
			// Outside the filter: an excluded table and another database.
			"CREATE TABLE hidden (id INT PRIMARY KEY)", "ALTER TABLE hidden ADD COLUMN secret INT", "INSERT INTO hidden VALUES (1, 2)",
			"CREATE DATABASE sc_evo_other", "CREATE TABLE sc_evo_other.t (id INT PRIMARY KEY)", "INSERT INTO sc_evo_other.t VALUES (1)",
			"CREATE TABLE last (id INT PRIMARY KEY)"}, "_schema_changes", 11},
	}
	for _, s := range steps {
		if err := db.Exec(ctx, "sc_evo", s.stmts...); err != nil {
			t.Fatal(err)
		}
		name := topic(s.topic)
		if s.topic == "_schema_changes" {
			name = prefix + "._schema_changes"
		}
		published(t, ctx, p, name, s.n)
	}

	// Row changes: exact values, each with the schema version in force when
	// it was written. MODIFY name VARCHAR(10)→VARCHAR(100) keeps the Avro
	// type; without full metadata the field's strait.sql_type changes, so
	// that server registers one version more.
	type rec struct {
		Version       int
		Op            string
		Before, After map[string]any
	}
	want := []rec{
		{1, "c", nil, map[string]any{"id": int32(1), "qty": int32(10), "name": "a", "tmp": int32(7)}},
		{2, "c", nil, map[string]any{"id": int32(2), "qty": int32(20), "name": "b", "tmp": int32(8), "note": "n2"}},
		{2, "u", map[string]any{"id": int32(1), "qty": int32(10), "name": "a", "tmp": int32(7), "note": nil},
			map[string]any{"id": int32(1), "qty": int32(10), "name": "a", "tmp": int32(7), "note": "n1"}},
		{3, "c", nil, map[string]any{"id": int32(3), "qty": int32(30), "name": "c", "note": "n3"}},
		{4, "c", nil, map[string]any{"id": int32(4), "qty": int64(5000000000), "name": "d", "note": "n4"}},
		{4, "c", nil, map[string]any{"id": int32(5), "qty": int64(50), "name": "a name longer than ten", "note": "n5"}},
		{5, "c", nil, map[string]any{"id": int32(6), "qty": int64(60), "name": "f", "remark": "r6"}},
		{6, "c", nil, map[string]any{"id": int32(7), "qty": int64(70), "title": "g", "remark": "r7"}},
	}
	if !full {
		want[5].Version, want[6].Version, want[7].Version = 5, 6, 7
	}
	got := func(table string, n int) []rec {
		versions := versionsByID(t, ctx, topic(table)+"-value")
		var out []rec
		for _, c := range decoded(t, ctx, records(t, ctx, env.kafka.ListenAddrs(), topic(table), n)) {
			out = append(out, rec{versions[c.valueID], c.Value["op"].(string), plain(row(c.Value, "before")), plain(row(c.Value, "after"))})
		}
		return out
	}
	if diff := cmp.Diff(got("items", 8), want); diff != "" {
		t.Errorf("items changes (-got +want):\n%s", diff)
	}
	// After RENAME TABLE the rows go to the new table's topic; TRUNCATE
	// adds nothing there (no deletes, no marker) and keeps the schema.
	wantGoods := []rec{
		{1, "c", nil, map[string]any{"id": int32(8), "qty": int64(80), "title": "h", "remark": "r8"}},
		{1, "c", nil, map[string]any{"id": int32(9), "qty": int64(90), "title": "i", "remark": "r9"}},
	}
	if diff := cmp.Diff(got("goods", 2), wantGoods); diff != "" {
		t.Errorf("goods changes (-got +want):\n%s", diff)
	}

	// Every version is registered under the subject's BACKWARD compatibility
	// (enforced by enforceBackward); the added column is nullable with a
	// null default, so readers of the new version read old records.
	cl := registryClient(t)
	subject := topic("items") + "-value"
	if res := cl.Compatibility(ctx, subject); res[0].Err != nil || res[0].Level != sr.CompatBackward {
		t.Errorf("compatibility of %s = %v (%v), want BACKWARD", subject, res[0].Level, res[0].Err)
	}
	v2, err := cl.SchemaByVersion(ctx, subject, 2)
	if err != nil {
		t.Fatal(err)
	}
	note := valueField(t, v2.Schema.Schema, "note")
	if diff := cmp.Diff(map[string]any{"type": note["type"], "default": note["default"], "has default": hasKey(note, "default")},
		map[string]any{"type": []any{"null", "string"}, "default": nil, "has default": true}); diff != "" {
		t.Errorf("added column note (-got +want):\n%s", diff)
	}
	if versions, err := cl.SubjectVersions(ctx, topic("items")+"-key"); err != nil || len(versions) != 1 {
		t.Errorf("items key subject versions = %v (%v), want one: the key never changed", versions, err)
	}

	// Every DDL of a captured table, in order, with database, statement and
	// position; none of the excluded table or the other database.
	wantDDL := []string{
		"CREATE TABLE items (id INT PRIMARY KEY, qty INT, name VARCHAR(10), tmp INT)",
		"ALTER TABLE items ADD COLUMN note VARCHAR(20)",
		"ALTER TABLE items DROP COLUMN tmp",
		"ALTER TABLE items MODIFY qty BIGINT",
		"ALTER TABLE items MODIFY name VARCHAR(100)",
		"ALTER TABLE items RENAME COLUMN note TO remark",
		"ALTER TABLE items CHANGE name title VARCHAR(100)",
		"RENAME TABLE items TO goods",
		"TRUNCATE TABLE goods",
		"DROP TABLE `goods` /* generated by server */",
		"CREATE TABLE last (id INT PRIMARY KEY)",
	}
	ddl := decoded(t, ctx, records(t, ctx, env.kafka.ListenAddrs(), prefix+"._schema_changes", len(wantDDL)))
	var gotDDL []string
	lastSeq := ""
	for _, d := range ddl {
		gotDDL = append(gotDDL, d.Value["ddl"].(string))
		file, pos, seq := d.Value["file"].(string), d.Value["pos"].(int64), d.Value["sequence"].(string)
		// (The older-rows subtest rotates the binlog: pos restarts, the sequence does not.)
		if d.Value["database"] != "sc_evo" || !strings.HasPrefix(file, "mysql-bin.") || pos <= 4 || seq <= lastSeq || unwrap(d.Value["gtid"]) == nil {
			t.Errorf("schema change %q: database %v, file %s, pos %d, sequence %s (previous %s), gtid %v",
				d.Value["ddl"], d.Value["database"], file, pos, seq, lastSeq, d.Value["gtid"])
		}
		lastSeq = seq
	}
	if diff := cmp.Diff(gotDDL, wantDDL); diff != "" {
		t.Errorf("%s._schema_changes (-got +want):\n%s", prefix, diff)
	}
	// The excluded table's and the other database's rows published nothing:
	// their topics were never created (they come before CREATE TABLE last).
	topics, err := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs())).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{topic("hidden"), prefix + ".sc_evo_other.t"} {
		if topics.Has(name) {
			t.Errorf("topic %s exists: a table outside the filter was published", name)
		}
	}
}

// testIncompatible changes a column's type in a way a BACKWARD registry
// refuses (VARCHAR → INT: Avro string → int). The rows after it cannot go to
// the table's topic under the same subject: they go to the dead-letter topic
// with an error naming the table, the column, its position, the binlog
// position and the fixes, and the producer goes on.
func testIncompatible(t *testing.T, ctx context.Context, db *testenv.MariaDB, args func(include string, extra ...string) []string, full bool) {
	if err := db.Exec(ctx, "", "CREATE DATABASE sc_inc", "CREATE TABLE sc_inc.codes (id INT PRIMARY KEY, code VARCHAR(5))"); err != nil {
		t.Fatal(err)
	}
	a := args("sc_inc.*")
	prefix := a[indexOf(a, "-kafka.topic_prefix")+1]
	p := startProducer(t, a)
	if err := db.Exec(ctx, "sc_inc", "INSERT INTO codes VALUES (1, '42')"); err != nil {
		t.Fatal(err)
	}
	published(t, ctx, p, prefix+".sc_inc.codes", 1)
	if err := db.Exec(ctx, "sc_inc", "ALTER TABLE codes MODIFY code INT", "INSERT INTO codes VALUES (2, 43)",
		"CREATE TABLE after_it (id INT PRIMARY KEY)", "INSERT INTO after_it VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	published(t, ctx, p, prefix+".sc_inc.after_it", 1)

	dead := records(t, ctx, env.kafka.ListenAddrs(), prefix+"._dead_letter", 1)
	if len(dead) != 1 || header(dead[0], "strait.reason") != "schema_rejected" {
		t.Fatalf("dead letters = %d, want one schema_rejected", len(dead))
	}
	change := "column code (position 2) changed from string to int32"
	if !full {
		change = "column code (position 2) changed from varchar(5) (string) to int(11) (int32)"
	}
	msg := header(dead[0], "strait.error")
	for _, want := range []string{"sc_inc.codes at mysql-bin.", "subject " + prefix + ".sc_inc.codes-value", change, "incompatible", "NONE", "re-snapshot"} {
		if !strings.Contains(msg, want) {
			t.Errorf("dead letter error lacks %q:\n%s", want, msg)
		}
	}
	if got := decoded(t, ctx, records(t, ctx, env.kafka.ListenAddrs(), prefix+".sc_inc.codes", 1)); len(got) != 1 || plain(row(got[0].Value, "after"))["code"] != "42" {
		t.Errorf("codes topic = %v, want only the row before the change", got)
	}
	if versions, err := registryClient(t).SubjectVersions(ctx, prefix+".sc_inc.codes-value"); err != nil || len(versions) != 1 {
		t.Errorf("codes value versions = %v (%v), want the first only", versions, err)
	}
}

// testOlderRows is the race without full metadata: the producer starts at
// an older position, so it reads rows written before a DDL that already
// ran. calm's row has no DDL of its own ahead and decodes; race's rows
// predate a swap of two same-typed columns, which information_schema
// cannot reveal: with FULL metadata they decode with their own names, with
// MINIMAL the producer stops, naming the table, the DDL and the positions,
// and publishes none of them.
func testOlderRows(t *testing.T, ctx context.Context, db *testenv.MariaDB, args func(include string, extra ...string) []string, full bool) {
	if err := db.Exec(ctx, "", "CREATE DATABASE sc_old",
		"CREATE TABLE sc_old.race (id INT PRIMARY KEY, a INT, b INT)", "CREATE TABLE sc_old.calm (id INT PRIMARY KEY, v VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	a := args("sc_old.*")
	prefix := a[indexOf(a, "-kafka.topic_prefix")+1]
	// Without full metadata the swap is in the next binlog file: finding it
	// follows the rotation. (The shared FULL server is not rotated: other
	// tests read its file index.)
	rotate := "FLUSH BINARY LOGS"
	if full {
		rotate = "DO 0"
	}
	if err := db.Exec(ctx, "sc_old", "INSERT INTO calm VALUES (1, 'x')", "INSERT INTO race VALUES (1, 10, 20)", rotate,
		"ALTER TABLE race CHANGE a b INT, CHANGE b a INT", "INSERT INTO race VALUES (2, 30, 40)"); err != nil {
		t.Fatal(err)
	}
	p := startProducer(t, a)
	calm := decoded(t, ctx, records(t, ctx, env.kafka.ListenAddrs(), prefix+".sc_old.calm", 1))
	if diff := cmp.Diff(plain(row(calm[0].Value, "after")), map[string]any{"id": int32(1), "v": "x"}); diff != "" {
		t.Errorf("calm (-got +want):\n%s", diff)
	}
	if full {
		race := decoded(t, ctx, records(t, ctx, env.kafka.ListenAddrs(), prefix+".sc_old.race", 2))
		var rows []map[string]any
		for _, c := range race {
			rows = append(rows, plain(row(c.Value, "after")))
		}
		if diff := cmp.Diff(rows, []map[string]any{{"id": int32(1), "a": int32(10), "b": int32(20)}, {"id": int32(2), "b": int32(30), "a": int32(40)}}); diff != "" {
			t.Errorf("race rows (-got +want):\n%s", diff)
		}
		if race[0].valueID == race[1].valueID {
			t.Errorf("both race rows have value schema %d, want a new version after the swap", race[0].valueID)
		}
		return
	}
	err := p.wait(t, ctx)
	if err == nil {
		t.Fatal("producer ended without error after rows older than a column swap")
	}
	t.Logf("producer stopped: %v", err)
	for _, want := range []string{"sc_old.race", "ALTER TABLE race CHANGE a b INT, CHANGE b a INT", "mysql-bin.", "binlog_row_metadata=FULL", "source.start_position="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	topics, lerr := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs())).ListTopics(ctx)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if topics.Has(prefix + ".sc_old.race") {
		t.Errorf("race rows were published despite an unknown schema")
	}
}

// testRestartAcrossDDL is the schema history at work: the producer stops,
// and while it is down rows are written, then DDL changes their tables
// (a swap of two same-typed columns, an added column on a table the
// producer had not seen rows of), then more rows. Restarted, it resumes at
// its checkpoint — before the older rows — and decodes each row with the
// schema of its time, with or without full row metadata.
func testRestartAcrossDDL(t *testing.T, ctx context.Context, db *testenv.MariaDB, args func(include string, extra ...string) []string, full bool) {
	if err := db.Exec(ctx, "", "CREATE DATABASE sc_rs",
		"CREATE TABLE sc_rs.race (id INT PRIMARY KEY, a INT, b INT)", "CREATE TABLE sc_rs.late (id INT PRIMARY KEY, v VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	a := args("sc_rs.*")
	prefix := a[indexOf(a, "-kafka.topic_prefix")+1]
	p := startProducer(t, a)
	if err := db.Exec(ctx, "sc_rs", "INSERT INTO race VALUES (1, 10, 20)"); err != nil {
		t.Fatal(err)
	}
	published(t, ctx, p, prefix+".sc_rs.race", 1)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	rotate := "FLUSH BINARY LOGS" // the DDL in another file than the older rows
	if full {
		rotate = "DO 0" // the shared FULL server is not rotated: other tests read its file index
	}
	if err := db.Exec(ctx, "sc_rs", "INSERT INTO race VALUES (2, 30, 40)", "INSERT INTO late VALUES (1, 'x')", rotate,
		"ALTER TABLE race CHANGE a b INT, CHANGE b a INT", "ALTER TABLE late ADD COLUMN w INT",
		"INSERT INTO race VALUES (3, 50, 60)", "INSERT INTO late VALUES (2, 'y', 7)"); err != nil {
		t.Fatal(err)
	}
	// The same source, no configured start: resume at the checkpoint.
	p = startProducer(t, append(a, "-source.start_position", ""))
	race := decoded(t, ctx, records(t, ctx, env.kafka.ListenAddrs(), prefix+".sc_rs.race", 3))
	late := decoded(t, ctx, records(t, ctx, env.kafka.ListenAddrs(), prefix+".sc_rs.late", 2))
	var got []map[string]any
	for _, c := range append(race, late...) {
		got = append(got, plain(row(c.Value, "after")))
	}
	want := []map[string]any{
		{"id": int32(1), "a": int32(10), "b": int32(20)},
		{"id": int32(2), "a": int32(30), "b": int32(40)},
		{"id": int32(3), "b": int32(50), "a": int32(60)},
		{"id": int32(1), "v": "x"},
		{"id": int32(2), "v": "y", "w": int32(7)},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	if !full && !strings.Contains(p.logs.String(), "resuming from the checkpoint") {
		t.Errorf("the producer did not resume from its checkpoint")
	}
}

// published waits until topic holds at least n records, failing early if
// the producer stops.
func published(t *testing.T, ctx context.Context, p *producer, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	records(t, ctx, env.kafka.ListenAddrs(), topic, n)
}

// framed is a consumed record decoded, with its value schema id.
type framed struct {
	valueID int
	Value   map[string]any
}

func decoded(t *testing.T, ctx context.Context, rs []*kgo.Record) []framed {
	t.Helper()
	codecs := map[int]codec{}
	var out []framed
	for _, r := range rs {
		out = append(out, framed{valueID: int(binary.BigEndian.Uint32(r.Value[1:5])), Value: decodeFramed(t, ctx, codecs, r.Value)})
	}
	return out
}

// plain unwraps an image's nullable values.
func plain(img map[string]any) map[string]any {
	if img == nil {
		return nil
	}
	out := map[string]any{}
	for k, v := range img {
		out[k] = unwrap(v)
	}
	return out
}

func indexOf(args []string, flag string) int {
	for i, a := range args {
		if a == flag {
			return i
		}
	}
	return -1
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func registryClient(t *testing.T) *sr.Client {
	cl, err := sr.NewClient(sr.URLs(env.registry.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// versionsByID maps the schema ids of subject to their versions.
func versionsByID(t *testing.T, ctx context.Context, subject string) map[int]int {
	t.Helper()
	schemas, err := registryClient(t).Schemas(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, s := range schemas {
		out[s.ID] = s.Version
	}
	return out
}

// valueField returns a field of the row record of an envelope schema.
func valueField(t *testing.T, schema, name string) map[string]any {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal([]byte(schema), &env); err != nil {
		t.Fatal(err)
	}
	for _, f := range rowRecord(env)["fields"].([]any) {
		if f := f.(map[string]any); f["name"] == name {
			return f
		}
	}
	t.Fatalf("no field %s in %s", name, schema)
	return nil
}

// rowRecord returns the record defined by an envelope's "before" field.
func rowRecord(env map[string]any) map[string]any {
	for _, f := range env["fields"].([]any) {
		if f := f.(map[string]any); f["name"] == "before" {
			return f["type"].([]any)[1].(map[string]any)
		}
	}
	return nil
}

// enforceBackward makes the shared srfake registry check BACKWARD
// compatibility, as Confluent's does by default, for the value subjects of
// table topics starting with prefix: srfake itself accepts every schema. A
// refused schema gets Confluent's answer (HTTP 409, error code 409).
func enforceBackward(t *testing.T, prefix string) {
	interceptRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		subject, ok := strings.CutPrefix(r.URL.Path, "/subjects/")
		subject, isPost := strings.CutSuffix(subject, "/versions")
		if r.Method != http.MethodPost || !ok || !isPost || !strings.HasPrefix(subject, prefix) || !strings.HasSuffix(subject, "-value") ||
			strings.Contains(subject, "._") { // not a table topic: the checkpoint, the schema history
			return false
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var s sr.Schema
		if err := json.Unmarshal(body, &s); err != nil {
			return false
		}
		var latest string
		for v := 1; ; v++ {
			ss, ok := env.registry.GetSchema(subject, v)
			if !ok {
				break
			}
			latest = ss.Schema.Schema
		}
		if latest == "" {
			return false
		}
		if err := backwardCompatible(latest, s.Schema); err != nil {
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]any{"error_code": 409,
				"message": fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q: %v", subject, err)})
			return true
		}
		return false
	})
}

// backwardCompatible reports whether a reader with envelope schema reader
// reads records written with writer, by Avro's resolution rules for the
// shapes strait writes: row fields matched by name, a reader field missing
// from the writer needs a default, types equal or promoted.
func backwardCompatible(writer, reader string) error {
	var w, r map[string]any
	if err := json.Unmarshal([]byte(writer), &w); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(reader), &r); err != nil {
		return err
	}
	wf := map[string]map[string]any{}
	for _, f := range rowRecord(w)["fields"].([]any) {
		wf[f.(map[string]any)["name"].(string)] = f.(map[string]any)
	}
	for _, f := range rowRecord(r)["fields"].([]any) {
		f := f.(map[string]any)
		name := f["name"].(string)
		old, ok := wf[name]
		if !ok {
			if !hasKey(f, "default") {
				return fmt.Errorf("reader field %s has no default", name)
			}
			continue
		}
		if !promotes(base(old["type"]), base(f["type"])) {
			return fmt.Errorf("field %s: writer type %s cannot be read as %s", name, base(old["type"]), base(f["type"]))
		}
	}
	return nil
}

// base returns the primitive type under a nullable union and logical type.
func base(t any) string {
	switch t := t.(type) {
	case []any:
		return base(t[len(t)-1])
	case map[string]any:
		return base(t["type"])
	case string:
		return t
	}
	return fmt.Sprint(t)
}

func promotes(from, to string) bool {
	ok := map[string][]string{"int": {"long", "float", "double"}, "long": {"float", "double"}, "float": {"double"},
		"string": {"bytes"}, "bytes": {"string"}}
	if from == to {
		return true
	}
	for _, t := range ok[from] {
		if t == to {
			return true
		}
	}
	return false
}
