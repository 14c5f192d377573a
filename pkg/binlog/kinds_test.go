package binlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestKindsHaveSamples: every kind only the table's definition tells has
// a sample in testenv.TypeCases, which the type walk (pkg/bigquery,
// TestTypeWalk) takes through every stage.
func TestKindsHaveSamples(t *testing.T) {
	for k := kindJSON; int(k) < len(kindNames); k++ {
		name := strings.ToUpper(k.sqlName())
		if !slices.ContainsFunc(testenv.TypeCases, func(c testenv.TypeCase) bool { return c.Def == name }) {
			t.Errorf("kind %s (kinds.go): no column of type %s in testenv.TypeCases", k.sqlName(), name)
		}
	}
}

// TestKindsMatchSelect: MariaDB's UUID, INET6 and INET4 values — UUIDs of
// every version and variant the server accepts (it stores versions 1 to 5
// byte-swapped, others not), IPv6 addresses with zero runs of every length
// and place, IPv4-mapped and -compatible ones — read from the binlog and by
// the snapshot are the text SELECT prints for them, value by value, and
// MariaDB's JSON (LONGTEXT with json_valid) is JSON on both paths.
func TestKindsMatchSelect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS kinds", "CREATE DATABASE kinds",
		"CREATE TABLE kinds.t (id INT PRIMARY KEY, u UUID, a INET6, b INET4, j JSON)"); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(7, 3))
	var uuids, addrs, ipv4s []string
	for v := range 16 { // every version nibble, each with every variant's top bits
		for _, variant := range []byte{0x00, 0x80, 0xc0, 0xe0} {
			var b [16]byte
			for i := range b {
				b[i] = byte(rnd.Uint32())
			}
			b[6] = byte(v)<<4 | b[6]&0x0f
			b[8] = variant | b[8]&0x1f
			if v >= 8 && variant == 0 {
				continue // the server refuses it
			}
			uuids = append(uuids, uuidText(b))
		}
	}
	uuids = append(uuids, "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-1fff-bfff-ff0000000000")
	addrs = []string{"::", "::1", "1::", "::ffff:1.2.3.4", "::1.2.3.4", "::ffff:0:0", "1:0:0:2:0:0:0:3", "1:0:2:0:3:0:4:0",
		"0:0:1:0:0:1:0:0", "fe80::1:2", "2001:db8::ff00:42:8329", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:1:2"}
	for range 40 {
		var b [16]byte
		for i := range b {
			if rnd.IntN(3) > 0 { // many zero words
				b[i] = byte(rnd.Uint32())
			}
		}
		addrs = append(addrs, inet6Text(b))
	}
	for range 10 {
		ipv4s = append(ipv4s, fmt.Sprintf("%d.%d.%d.%d", rnd.IntN(256), rnd.IntN(256), rnd.IntN(256), rnd.IntN(256)))
	}
	r := openAtCurrent(t, ctx, sourceConfig(server, "kinds.*"))
	n := max(len(uuids), len(addrs))
	var rows []string
	for i := range n {
		lit := func(list []string) string {
			if i >= len(list) {
				return "NULL"
			}
			return "'" + list[i] + "'"
		}
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, '{\"i\": %d, \"ü\": [true]}')", i, lit(uuids), lit(addrs), lit(ipv4s), i))
	}
	if err := server.Exec(ctx, "kinds", "INSERT INTO t VALUES "+strings.Join(rows, ", ")); err != nil {
		t.Fatal(err)
	}
	want := map[int64][]cdc.Value{}
	selected, err := server.Query(ctx, "kinds", "SELECT id, CAST(u AS CHAR), CAST(a AS CHAR), CAST(b AS CHAR), j FROM t")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range selected {
		var vals []cdc.Value
		for _, v := range row[1:] {
			if v == nil {
				vals = append(vals, cdc.Null)
			} else {
				vals = append(vals, cdc.Str(*v))
			}
		}
		want[int64(atoiTest(*row[0]))] = vals
	}

	evs := readEvents(t, ctx, r, n)
	streamed := map[int64][]cdc.Value{}
	for _, e := range evs {
		streamed[e.After[0].Int] = e.After[1:]
	}
	if diff := cmp.Diff(streamed, want); diff != "" {
		t.Errorf("binlog values against SELECT (-binlog +select):\n%s", diff)
	}
	if got := evs[0].Table.Columns; got[1].Type != cdc.TypeString || got[1].SQLType != "uuid" || got[4].Type != cdc.TypeJSON || got[4].SQLType != "json" {
		t.Errorf("binlog columns: %+v, want u a uuid string and j json", got)
	}

	conn := newSnapshotConn(t, ctx, sourceConfig(server, "kinds.*"))
	s, err := readSchema(conn, "kinds", "t")
	if err != nil {
		t.Fatal(err)
	}
	info, err := snapshotInfo(s, true)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := newConverter(info)
	if err != nil {
		t.Fatal(err)
	}
	read, err := readChunk(ctx, conn, info, conv, nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	snapshotted := map[int64][]cdc.Value{}
	for _, row := range read {
		snapshotted[row[0].Int] = row[1:]
	}
	if diff := cmp.Diff(snapshotted, want); diff != "" {
		t.Errorf("snapshot values against SELECT (-snapshot +select):\n%s", diff)
	}
	if diff := cmp.Diff(info.table.Columns, evs[0].Table.Columns); diff != "" {
		t.Errorf("snapshot schema against the binlog's (-snapshot +binlog):\n%s", diff)
	}
}

// TestKindsAsSnapshotKeys: tables keyed by a UUID or an INET6 are read in
// chunks resumed after the last key (compared as the server compares the
// type: UUIDs in their storage order), every row once.
func TestKindsAsSnapshotKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS kinds_keys", "CREATE DATABASE kinds_keys",
		"CREATE TABLE kinds_keys.u (k UUID PRIMARY KEY)", "CREATE TABLE kinds_keys.a (k INET6 PRIMARY KEY)",
		"SET SESSION max_recursive_iterations = 1000",
		// UUID(): version 1, stored swapped; the others as they come.
		"INSERT INTO kinds_keys.u WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100) SELECT UUID() FROM s",
		"INSERT INTO kinds_keys.u WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100) SELECT CONCAT(LPAD(HEX(i), 8, '0'), '-0000-7000-8000-', LPAD(HEX(i * 7919), 12, '0')) FROM s",
		"INSERT INTO kinds_keys.a WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 150) SELECT CONCAT('2001:db8::', HEX(i * 331)) FROM s",
	); err != nil {
		t.Fatal(err)
	}
	conn := newSnapshotConn(t, ctx, sourceConfig(server, "kinds_keys.*"))
	for _, table := range []string{"u", "a"} {
		t.Run(table, func(t *testing.T) {
			s, err := readSchema(conn, "kinds_keys", table)
			if err != nil {
				t.Fatal(err)
			}
			info, err := snapshotInfo(s, true)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := newConverter(info)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			var after []cdc.Value
			for {
				rows, err := readChunk(ctx, conn, info, conv, after, 7, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, row := range rows {
					seen[row[0].Str]++
				}
				if len(rows) < 7 {
					break
				}
				after = keyValues(info.key, rows[len(rows)-1])
			}
			selected, err := server.Query(ctx, "kinds_keys", "SELECT CAST(k AS CHAR) FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{}
			for _, row := range selected {
				want[*row[0]]++
			}
			if diff := cmp.Diff(seen, want); diff != "" {
				t.Errorf("keys read in chunks, times each (-chunks +select):\n%s", diff)
			}
		})
	}
}

// TestZeroDateInNotNullColumnIsNull: a zero date in a NOT NULL column has
// no calendar value either; it is NULL on the binlog path and in the
// snapshot alike (strait never invents one; Debezium sends the epoch).
func TestZeroDateInNotNullColumnIsNull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS zero_nn", "CREATE DATABASE zero_nn",
		"CREATE TABLE zero_nn.t (id INT PRIMARY KEY, d DATE NOT NULL, dt DATETIME NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "zero_nn.*")
	r := openAtCurrent(t, ctx, cfg)
	if err := server.Exec(ctx, "zero_nn", "SET SESSION sql_mode = ''", "INSERT INTO t VALUES (1, '0000-00-00', '0000-00-00 00:00:00')"); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, ctx, r, 1)
	conn := newSnapshotConn(t, ctx, cfg)
	s, err := readSchema(conn, "zero_nn", "t")
	if err != nil {
		t.Fatal(err)
	}
	info, err := snapshotInfo(s, true)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := newConverter(info)
	if err != nil {
		t.Fatal(err)
	}
	read, err := readChunk(ctx, conn, info, conv, nil, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, row := range map[string][]cdc.Value{"binlog": evs[0].After, "snapshot": read[0]} {
		if !row[1].Null || !row[2].Null {
			t.Errorf("%s: %+v, want the zero DATE and DATETIME of NOT NULL columns as NULL", name, row)
		}
	}
}
