package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/civil"

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
// passes, and prints its last report.
func (st *stack) verify(ctx context.Context, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		cmd := exec.CommandContext(ctx, filepath.Join(st.o.bin, "producer"), "verify", "-config", filepath.Join(st.o.dir, "producer.yaml"), "-max-shown", "20")
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
			fields[j], _ = res.GetString(i, j)
			fields[j] = strings.Clone(fields[j])
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
			fields[i] = v.FloatString(2)
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
