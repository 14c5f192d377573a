package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// table is a sample table: its DDL, and how to print its rows so that
// MariaDB's and BigQuery's forms compare equal.
type table struct {
	name string
	ddl  string
	// selectList prints a row from MariaDB, one expression per column
	// (the session's time zone is UTC), in the order of cols.
	selectList string
	cols       []string
}

var tables = []table{
	{
		name: "customers",
		ddl: `CREATE TABLE shop.customers (id BIGINT PRIMARY KEY, name VARCHAR(60) CHARACTER SET utf8mb4 NOT NULL,
			email VARCHAR(80), tier ENUM('free', 'pro', 'enterprise') NOT NULL, signed_up DATE, updated_at DATETIME(6) NOT NULL)`,
		selectList: `id, name, email, tier, DATE_FORMAT(signed_up, '%Y-%m-%d'), DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f')`,
		cols:       []string{"id", "name", "email", "tier", "signed_up", "updated_at"},
	},
	{
		name: "orders",
		ddl: `CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, amount DECIMAL(12,2) NOT NULL,
			status ENUM('new', 'paid', 'shipped', 'cancelled') NOT NULL, placed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), details JSON)`,
		selectList: `id, customer_id, amount, status, DATE_FORMAT(placed_at, '%Y-%m-%d %H:%i:%s.%f'), details`,
		cols:       []string{"id", "customer_id", "amount", "status", "placed_at", "details"},
	},
	{
		name: "order_items",
		ddl: `CREATE TABLE shop.order_items (order_id BIGINT, line INT, sku VARCHAR(20) NOT NULL, qty INT NOT NULL,
			price DECIMAL(10,2) NOT NULL, PRIMARY KEY (order_id, line))`,
		selectList: `order_id, line, sku, qty, price`,
		cols:       []string{"order_id", "line", "sku", "qty", "price"},
	},
}

func tableList() string {
	var names []string
	for _, t := range tables {
		names = append(names, t.name)
	}
	return strings.Join(names, ", ")
}

// loadSchema creates the sample tables with some rows already in them,
// which the producer's initial snapshot backfills.
func loadSchema(ctx context.Context, db *testenv.MariaDB) error {
	stmts := []string{"CREATE DATABASE shop", "SET SESSION max_recursive_iterations = 100000"}
	for _, t := range tables {
		stmts = append(stmts, t.ddl)
	}
	seq := func(n int) string {
		return fmt.Sprintf("WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < %d) ", n)
	}
	stmts = append(stmts,
		"INSERT INTO shop.customers "+seq(500)+`SELECT k, CONCAT(ELT(1 + k % 4, 'Ana ', 'Björn ', 'Chen ', 'Dèsirée '), k),
			IF(k % 5 = 0, NULL, CONCAT('c', k, '@example.com')), ELT(1 + k % 3, 'free', 'pro', 'enterprise'),
			DATE('2020-01-01') + INTERVAL k DAY, TIMESTAMP('2024-01-01') + INTERVAL k * 1000003 MICROSECOND FROM seq`,
		"INSERT INTO shop.orders "+seq(1000)+`SELECT k, 1 + k % 500, k * 1.25, ELT(1 + k % 4, 'new', 'paid', 'shipped', 'cancelled'),
			TIMESTAMP('2024-06-01') + INTERVAL k MINUTE, JSON_OBJECT('channel', ELT(1 + k % 2, 'web', 'app'), 'gift', k % 7 = 0) FROM seq`,
		"INSERT INTO shop.order_items "+seq(2000)+`SELECT 1 + (k - 1) DIV 2, 1 + (k - 1) % 2, CONCAT('SKU-', k % 97), 1 + k % 5, 9.99 + k % 10 FROM seq`,
	)
	return db.Exec(ctx, "", stmts...)
}

// workload runs random source transactions at rate per second for d,
// printing a progress line every second.
func (st *stack) workload(ctx context.Context, d time.Duration, rate int) error {
	c, err := st.db.Conn(ctx, "shop")
	if err != nil {
		return err
	}
	defer c.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	nextOrder, nextCustomer := 1001, 501
	txs := 0
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-progress.C:
			fmt.Fprintf(st.out, "  %3.0fs  source transactions %6d   published records %8.0f   applied to BigQuery %8.0f\n",
				time.Since(start).Seconds(), txs,
				sum(st.metrics["producer"], "strait_producer_records_published_total"),
				sum(st.metrics["consumer"], "strait_consumer_rows_applied_total"))
			continue
		case <-tick.C:
		}
		var stmts []string
		switch rnd.IntN(6) {
		case 0, 1: // a new order with its items
			id := nextOrder
			nextOrder++
			stmts = append(stmts, fmt.Sprintf(`INSERT INTO orders (id, customer_id, amount, status, details) VALUES (%d, %d, %d.%02d, 'new', '{"channel": "web", "items": %d}')`,
				id, 1+rnd.IntN(nextCustomer-1), rnd.IntN(500), rnd.IntN(100), 1+rnd.IntN(3)))
			for line := 1; line <= 1+rnd.IntN(3); line++ {
				stmts = append(stmts, fmt.Sprintf("INSERT INTO order_items VALUES (%d, %d, 'SKU-%d', %d, %d.%02d)", id, line, rnd.IntN(97), 1+rnd.IntN(4), rnd.IntN(50), rnd.IntN(100)))
			}
		case 2: // an order moves on
			stmts = append(stmts, fmt.Sprintf("UPDATE orders SET status = ELT(1 + FIELD(status, 'new', 'paid', 'shipped', 'cancelled') %% 4, 'new', 'paid', 'shipped', 'cancelled') WHERE id = %d", 1+rnd.IntN(nextOrder-1)))
		case 3: // a customer changes
			stmts = append(stmts, fmt.Sprintf("UPDATE customers SET tier = ELT(1 + %d, 'free', 'pro', 'enterprise'), email = IF(email IS NULL, 'new@example.com', NULL), updated_at = NOW(6) WHERE id = %d",
				rnd.IntN(3), 1+rnd.IntN(nextCustomer-1)))
		case 4: // a new customer
			stmts = append(stmts, fmt.Sprintf("INSERT INTO customers VALUES (%d, 'Neu Kunde %d 🙂', NULL, 'free', CURDATE(), NOW(6))", nextCustomer, nextCustomer))
			nextCustomer++
		case 5: // a line removed, an order cancelled
			id := 1 + rnd.IntN(nextOrder-1)
			stmts = append(stmts, fmt.Sprintf("DELETE FROM order_items WHERE order_id = %d AND line = 1", id),
				fmt.Sprintf("UPDATE orders SET status = 'cancelled', amount = 0 WHERE id = %d", id))
		}
		if _, err := c.Execute("BEGIN"); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := c.Execute(s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		if _, err := c.Execute("COMMIT"); err != nil {
			return err
		}
		txs++
	}
	return nil
}

// verify runs `bin/producer verify` (pkg/verify: the source in key
// ranges against BigQuery read through the Storage Read API, the local
// endpoint's or a real project's) until every table matches or timeout
// passes, and prints its last report. Verify itself re-checks the keys
// of upsert tables that BigQuery may not have applied yet for as long as
// timeout (0: reported at once).
func (st *stack) verify(ctx context.Context, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		cmd := exec.CommandContext(ctx, filepath.Join(st.o.bin, "producer"), "verify", "-config", filepath.Join(st.o.dir, "producer.yaml"), "-max-shown", "20",
			"-max-wait", timeout.String()) // pending keys: re-checked while the caller waits
		cmd.Env = append(os.Environ(), "STRAIT_SOURCE_PASSWORD="+st.db.Password)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return false, fmt.Errorf("producer verify: %w", err)
		}
		if err == nil || time.Now().After(deadline) {
			fmt.Fprintf(st.out, "\n$ %s verify -config %s\n%s", filepath.Join(st.o.bin, "producer"), filepath.Join(st.o.dir, "producer.yaml"), out.String())
			if err != nil && !strings.Contains(out.String(), "DIFFERS") {
				fmt.Fprint(st.out, errOut.String()) // it failed before comparing: say why
			}
			return err == nil, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// compare reads every table of ts on both sides and reports whether all
// match, with one line per table.
func (st *stack) compare(ctx context.Context, ts []table) (bool, []string, error) {
	same := true
	var lines []string
	for _, t := range ts {
		src, err := st.sourceRows(ctx, t)
		if err != nil {
			return false, nil, err
		}
		rows, err := st.bq.Rows("demo", st.o.dataset, "shop_"+t.name)
		if err != nil {
			rows = nil // not created yet
		}
		var dst []string
		for _, r := range rows {
			dst = append(dst, bigQueryRow(t, r))
		}
		a, b := checksum(src), checksum(dst)
		verdict := "match"
		if a != b {
			verdict, same = "DIFFERS (BigQuery "+b+")", false
		}
		lines = append(lines, fmt.Sprintf("%-12s %12d %12d  %-12s  %s", t.name, len(src), len(dst), a, verdict))
	}
	return same, lines, nil
}

// sourceRows prints every row of t as MariaDB holds it.
func (st *stack) sourceRows(ctx context.Context, t table) ([]string, error) {
	c, err := st.db.Conn(ctx, "shop")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Execute("SET SESSION time_zone = '+00:00'"); err != nil {
		return nil, err
	}
	res, err := c.Execute("SELECT " + t.selectList + " FROM " + t.name)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out []string
	for i := range res.RowNumber() {
		fields := make([]string, len(t.cols))
		for j := range t.cols {
			if null, _ := res.IsNull(i, j); null {
				fields[j] = "NULL"
				continue
			}
			text, _ := res.GetString(i, j)
			fields[j] = sourceValue(res.Fields[j].Type, text)
		}
		out = append(out, strings.Join(fields, "|"))
	}
	return out, nil
}

// bigQueryRow prints a BigQuery row (bqfake's Go values) as sourceRows
// prints the source's.
func bigQueryRow(t table, r map[string]any) string {
	fields := make([]string, len(t.cols))
	for i, c := range t.cols {
		switch v := r[c].(type) {
		case nil:
			fields[i] = "NULL"
		case *big.Rat:
			fields[i] = trimDecimal(v.FloatString(38)) // BIGNUMERIC's scale
		case float64:
			fields[i] = canonicalFloat(v)
		case bool:
			fields[i] = "0"
			if v {
				fields[i] = "1"
			}
		case []byte:
			fields[i] = fmt.Sprintf("%X", v)
		case civil.Date:
			fields[i] = v.String()
		case civil.DateTime:
			fields[i] = fmt.Sprintf("%s %02d:%02d:%02d.%06d", v.Date, v.Time.Hour, v.Time.Minute, v.Time.Second, v.Time.Nanosecond/1000)
		case time.Time:
			fields[i] = v.UTC().Format("2006-01-02 15:04:05.000000")
		default:
			fields[i] = fmt.Sprint(v)
		}
	}
	return strings.Join(fields, "|")
}

// sourceValue prints a value MariaDB sent as text (of the given MySQL
// column type) as bigQueryRow prints BigQuery's: decimals without trailing
// fractional zeros, floating-point numbers by canonicalFloat (MariaDB
// prints them in positional notation).
func sourceValue(typ uint8, text string) string {
	switch typ {
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return trimDecimal(text)
	case mysql.MYSQL_TYPE_FLOAT:
		if f, err := strconv.ParseFloat(text, 32); err == nil {
			return canonicalFloat(f)
		}
	case mysql.MYSQL_TYPE_DOUBLE:
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return canonicalFloat(f)
		}
	}
	return strings.Clone(text)
}

// trimDecimal drops the trailing fractional zeros of decimal text (and the
// point when nothing is left after it).
func trimDecimal(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// canonicalFloat prints a FLOAT64 that came from a FLOAT column (it is a
// float32 value) with float32's shortest digits and any other with
// float64's, so that a FLOAT and its BigQuery FLOAT64 print alike.
func canonicalFloat(f float64) string {
	if float64(float32(f)) == f {
		return strconv.FormatFloat(f, 'g', -1, 32)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// checksum is the first 12 hex digits of the SHA-256 of the sorted rows.
func checksum(rows []string) string {
	sorted := slices.Clone(rows)
	slices.Sort(sorted)
	h := sha256.New()
	for _, r := range sorted {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// typedColumn is a column of the all-types table: its SQL type, the edge
// values the workload writes to it (SQL literals) and a generator of
// random ones.
type typedColumn struct {
	name, sqlType string
	// print is the expression that prints the column from MariaDB as
	// bigQueryRow prints BigQuery's value; empty: the column itself.
	print  string
	edges  []string
	random func(r *rand.Rand) string
}

// typedColumns covers every MySQL/MariaDB type of the README's type
// mapping (geometry aside): integers of every width signed and unsigned,
// decimals mapped to NUMERIC and to BIGNUMERIC, FLOAT and DOUBLE, BIT(1)
// and BIT(n), the temporal types, character data in utf8mb4 and latin1,
// binary data, ENUM, SET and JSON. Every column but the key is nullable.
var typedColumns = []typedColumn{
	intColumn("i8", "TINYINT", -128, 127),
	uintColumn("u8", "TINYINT UNSIGNED", 255),
	intColumn("i16", "SMALLINT", -32768, 32767),
	uintColumn("u16", "SMALLINT UNSIGNED", 65535),
	intColumn("i24", "MEDIUMINT", -8388608, 8388607),
	uintColumn("u24", "MEDIUMINT UNSIGNED", 16777215),
	intColumn("i32", "INT", math.MinInt32, math.MaxInt32),
	uintColumn("u32", "INT UNSIGNED", math.MaxUint32),
	intColumn("i64", "BIGINT", math.MinInt64, math.MaxInt64),
	uintColumn("u64", "BIGINT UNSIGNED", math.MaxUint64),
	decimalColumn("dec_int", 5, 0),
	decimalColumn("dec_num", 20, 9),  // NUMERIC
	decimalColumn("dec_big", 65, 30), // BIGNUMERIC
	{name: "f32", sqlType: "FLOAT", edges: []string{"3.40282e38", "-3.40282e38", "1.17549e-38", "0", "0.1"},
		random: func(r *rand.Rand) string {
			return fmt.Sprintf("%.5e", r.NormFloat64()*math.Pow(10, float64(r.IntN(20)-10)))
		}},
	{name: "f64", sqlType: "DOUBLE", edges: []string{"1.7976931348623157e308", "-2.2250738585072014e-308", "0.30000000000000004", "0", "-1.5"},
		random: func(r *rand.Rand) string {
			return fmt.Sprintf("%.16e", r.NormFloat64()*math.Pow(10, float64(r.IntN(200)-100)))
		}},
	{name: "flag", sqlType: "BIT(1)", print: "flag + 0", edges: []string{"b'0'", "b'1'"},
		random: func(r *rand.Rand) string { return fmt.Sprintf("b'%d'", r.IntN(2)) }},
	{name: "bits", sqlType: "BIT(12)", print: "LPAD(HEX(bits), 4, '0')", edges: []string{"b'0'", "b'111111111111'", "b'100000000001'"},
		random: func(r *rand.Rand) string { return fmt.Sprintf("b'%b'", r.IntN(1<<12)) }},
	{name: "day", sqlType: "DATE", print: "DATE_FORMAT(day, '%Y-%m-%d')", edges: []string{"'1000-01-01'", "'9999-12-31'", "'1970-01-01'"},
		random: func(r *rand.Rand) string {
			return "'" + time.Date(1000+r.IntN(9000), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(365)).Format(time.DateOnly) + "'"
		}},
	{name: "wall", sqlType: "DATETIME(6)", print: "DATE_FORMAT(wall, '%Y-%m-%d %H:%i:%s.%f')",
		edges: []string{"'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", "'2024-02-29 12:00:00.000001'"},
		random: func(r *rand.Rand) string {
			return "'" + time.Date(1000+r.IntN(9000), 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(365*24*3600*1e6))*time.Microsecond).Format("2006-01-02 15:04:05.000000") + "'"
		}},
	// The session time zone is UTC where rows are written and read.
	{name: "instant", sqlType: "TIMESTAMP(6) NULL DEFAULT NULL", print: "DATE_FORMAT(instant, '%Y-%m-%d %H:%i:%s.%f')",
		edges: []string{"'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'"},
		random: func(r *rand.Rand) string {
			return "'" + time.Unix(1+r.Int64N(math.MaxInt32-1), r.Int64N(1e6)*1e3).UTC().Format("2006-01-02 15:04:05.000000") + "'"
		}},
	{name: "dur", sqlType: "TIME(6)", print: "CAST(TIME_TO_SEC(dur) * 1000000 AS SIGNED)",
		edges: []string{"'-838:59:59.999999'", "'838:59:59.999999'", "'00:00:00'", "'-00:00:00.000001'", "'24:00:00'"},
		random: func(r *rand.Rand) string {
			us := r.Int64N(2*838*3600e6) - 838*3600e6
			sign := ""
			if us < 0 {
				sign, us = "-", -us
			}
			return fmt.Sprintf("'%s%d:%02d:%02d.%06d'", sign, us/3600e6, us/60e6%60, us/1e6%60, us%1e6)
		}},
	{name: "yr", sqlType: "YEAR", edges: []string{"1901", "2155"},
		random: func(r *rand.Rand) string { return fmt.Sprint(1901 + r.IntN(255)) }},
	textColumn("c_utf", "CHAR(12) CHARACTER SET utf8mb4", 12, utf8Runes, []string{"''", "'ü🙂'", "'  leading'"}),
	textColumn("vc_utf", "VARCHAR(40) CHARACTER SET utf8mb4", 40, utf8Runes, []string{"''", "'trailing  '", "'🙂 𝄞 emoji'", `'quote '' backslash \\'`}),
	textColumn("tx_utf", "TEXT CHARACTER SET utf8mb4", 300, utf8Runes, []string{"''", `'line 1\nline 2\ttab'`, "REPEAT('ab🙂', 2000)"}),
	textColumn("c_lat", "CHAR(12) CHARACTER SET latin1", 12, latin1Runes, []string{"''", "'€Ÿ'", "'Ærø'"}),
	textColumn("vc_lat", "VARCHAR(40) CHARACTER SET latin1", 40, latin1Runes, []string{"''", "'Ærøskøbing €Šš'", "'trailing '"}),
	textColumn("tx_lat", "TEXT CHARACTER SET latin1", 300, latin1Runes, []string{"'Grüße ½ ¾ ©'", "REPEAT('é€', 3000)"}),
	bytesColumn("bin", "BINARY(6)", 6, []string{"X''", "X'01'", "X'FFFFFFFFFFFF'", "X'000000000000'"}),
	bytesColumn("vbin", "VARBINARY(20)", 20, []string{"X''", "X'00'", "X'00FF10'"}),
	bytesColumn("blb", "BLOB", 200, []string{"X''", "REPEAT(X'00FF', 5000)"}),
	{name: "e", sqlType: "ENUM('a', 'b', 'c d')", edges: []string{"'a'", "'c d'"},
		random: func(r *rand.Rand) string { return []string{"'a'", "'b'", "'c d'"}[r.IntN(3)] }},
	{name: "s", sqlType: "SET('x', 'y', 'z')", edges: []string{"''", "'x,y,z'"},
		random: func(r *rand.Rand) string { return []string{"''", "'x'", "'y,z'", "'x,z'", "'x,y,z'"}[r.IntN(5)] }},
	{name: "doc", sqlType: "JSON", edges: []string{"'{}'", "'[]'", "'null'", `'"text"'`, `'{"a": [1, 2.5, null, true], "ü": "🙂", "n": {"deep": [[]]}}'`},
		random: func(r *rand.Rand) string {
			return fmt.Sprintf(`'{"k": %d, "f": %g, "s": "v%d 🙂", "l": [%d, null]}'`, r.IntN(1000), r.Float64(), r.IntN(99), r.IntN(9))
		}},
}

func intColumn(name, sqlType string, lo, hi int64) typedColumn {
	return typedColumn{name: name, sqlType: sqlType, edges: []string{fmt.Sprint(lo), fmt.Sprint(hi), "0", "-1"},
		random: func(r *rand.Rand) string {
			if hi == math.MaxInt64 {
				return fmt.Sprint(int64(r.Uint64()))
			}
			return fmt.Sprint(lo + r.Int64N(hi-lo+1))
		}}
}

func uintColumn(name, sqlType string, hi uint64) typedColumn {
	return typedColumn{name: name, sqlType: sqlType, edges: []string{"0", fmt.Sprint(hi), fmt.Sprint(hi / 2), fmt.Sprint(hi/2 + 1)},
		random: func(r *rand.Rand) string { return fmt.Sprint(r.Uint64N(hi) + r.Uint64N(2)) }}
}

// decimalColumn is a DECIMAL(p,s) column; its edges are the largest and
// smallest values and the smallest step.
func decimalColumn(name string, p, s int) typedColumn {
	lit := func(whole, frac string) string {
		if frac == "" {
			return whole
		}
		return whole + "." + frac
	}
	nines := lit(strings.Repeat("9", p-s), strings.Repeat("9", s))
	step := "1"
	if s > 0 {
		step = lit("0", strings.Repeat("0", s-1)+"1")
	}
	return typedColumn{name: name, sqlType: fmt.Sprintf("DECIMAL(%d,%d)", p, s), edges: []string{nines, "-" + nines, step, "0"},
		random: func(r *rand.Rand) string {
			digits := func(n int) string {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte('0' + r.IntN(10))
				}
				return string(b)
			}
			sign := ""
			if r.IntN(2) == 0 {
				sign = "-"
			}
			return sign + lit(digits(1+r.IntN(p-s)), digits(s))
		}}
}

var (
	utf8Runes   = []rune("abcXYZ 019-_'\\äéßñ€ŸЖ中文🙂𝄞")
	latin1Runes = []rune("abcXYZ 019-_'\\äéßñ€ŸŠšÆø½©") // MariaDB's latin1 is cp1252
)

// textColumn is a character column whose random values are up to n runes
// of pool, quoted for SQL.
func textColumn(name, sqlType string, n int, pool []rune, edges []string) typedColumn {
	return typedColumn{name: name, sqlType: sqlType, edges: edges,
		random: func(r *rand.Rand) string {
			var b strings.Builder
			for range r.IntN(n + 1) {
				b.WriteRune(pool[r.IntN(len(pool))])
			}
			// CHAR drops trailing spaces when stored and read: none
			// at the end of a random value.
			s := strings.TrimRight(b.String(), " ")
			return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
		}}
}

// bytesColumn is a binary column whose random values are up to n bytes;
// it prints as upper-case hex.
func bytesColumn(name, sqlType string, n int, edges []string) typedColumn {
	return typedColumn{name: name, sqlType: sqlType, print: "HEX(" + name + ")", edges: edges,
		random: func(r *rand.Rand) string {
			b := make([]byte, r.IntN(n+1))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			return fmt.Sprintf("X'%X'", b)
		}}
}

// allTypes is the chaos test's table of every type: typedColumns and the
// key id.
var allTypes = func() table {
	t := table{name: "all_types", selectList: "id", cols: []string{"id"}}
	defs := []string{"id BIGINT PRIMARY KEY"}
	for _, c := range typedColumns {
		defs = append(defs, c.name+" "+c.sqlType)
		expr := c.print
		if expr == "" {
			expr = c.name
		}
		t.selectList += ", " + expr
		t.cols = append(t.cols, c.name)
	}
	t.ddl = "CREATE TABLE shop.all_types (" + strings.Join(defs, ", ") + ")"
	return t
}()

// typedValues returns one SQL literal per column of typedColumns: edge
// row k (k >= 0) takes each column's edge k (cycling), NULL for every column
// when k is -2, and random values (an edge or NULL now and then) when k is
// -1.
func typedValues(r *rand.Rand, k int) []string {
	out := make([]string, len(typedColumns))
	for i, c := range typedColumns {
		out[i] = typedValue(r, c, k)
	}
	return out
}

func typedValue(r *rand.Rand, c typedColumn, k int) string {
	switch {
	case k >= 0:
		return c.edges[k%len(c.edges)]
	case k == -2:
		return "NULL"
	}
	switch r.IntN(10) {
	case 0:
		return "NULL"
	case 1, 2:
		return c.edges[r.IntN(len(c.edges))]
	}
	return c.random(r)
}

// insertTyped is the INSERT of one all-types row.
func insertTyped(id int, values []string) string {
	return fmt.Sprintf("INSERT INTO all_types VALUES (%d, %s)", id, strings.Join(values, ", "))
}

// loadAllTypes creates shop.all_types with its edge rows, a row of NULLs
// and n random rows; their keys are 1 to the id it returns, exclusive.
func loadAllTypes(ctx context.Context, db *testenv.MariaDB, r *rand.Rand, n int) (int, error) {
	stmts := []string{"SET SESSION time_zone = '+00:00'", allTypes.ddl}
	id := 1
	edges := 0
	for _, c := range typedColumns {
		edges = max(edges, len(c.edges))
	}
	for k := range edges {
		stmts = append(stmts, insertTyped(id, typedValues(r, k)))
		id++
	}
	stmts = append(stmts, insertTyped(id, typedValues(r, -2)))
	id++
	for range n {
		stmts = append(stmts, insertTyped(id, typedValues(r, -1)))
		id++
	}
	return id, db.Exec(ctx, "shop", stmts...)
}
