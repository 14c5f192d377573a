package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/bigquery"
)

// TestVerifyRenamedColumns: columns BigQuery holds under another name
// (a reserved prefix or _strait_ gets _strait_ in front, the key too) and
// a DOUBLE key (a STRING in BigQuery) are compared under those names: equal
// tables match, and a changed value is reported with the BigQuery names.
func TestVerifyRenamedColumns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := "verify_names"
	if err := env.db.Exec(ctx, "", "CREATE DATABASE "+db, "USE "+db,
		"CREATE TABLE odd (`_PARTITION_id` INT PRIMARY KEY, `_CHANGE_TYPE` VARCHAR(10), `_strait_op` VARCHAR(10), name VARCHAR(10))",
		"INSERT INTO odd VALUES (1, 'DELETE', 'x', 'one'), (2, NULL, 'y', 'two'), (3, 'UPSERT', NULL, NULL)",
		"CREATE TABLE points (d DOUBLE PRIMARY KEY, v INT)",
		"INSERT INTO points VALUES (0.1, 1), (-2.5e300, 2), (0, 3)",
	); err != nil {
		t.Fatal(err)
	}
	e := newBQEnv(t, ctx, bigquery.ModeUpsert)
	e.snapshot(t, ctx, db, "odd")
	e.snapshot(t, ctx, db, "points")
	out, _, err := e.verify(ctx, db)
	if err != nil {
		t.Fatalf("verify of equal tables: %v\n%s", err, out)
	}
	wantLines(t, out,
		"verify_names.odd: match — source rows 3, BigQuery rows 3, <sum>, 2 key ranges, 0 differences",
		"verify_names.points: match — source rows 3, BigQuery rows 3, <sum>, whole table, 0 differences")

	if err := env.db.Exec(ctx, db, "SET SESSION sql_log_bin = 0",
		"UPDATE odd SET `_CHANGE_TYPE` = 'X' WHERE `_PARTITION_id` = 1",
		"UPDATE points SET v = 30 WHERE d = 0.1"); err != nil {
		t.Fatal(err)
	}
	out, _, err = e.verify(ctx, db)
	if !errors.Is(err, errDifferences) {
		t.Fatalf("verify of changed tables: error %v, want %v\n%s", err, errDifferences, out)
	}
	wantLines(t, out,
		"verify_names.odd: different (_strait__PARTITION_id=1): _strait__CHANGE_TYPE: source X, BigQuery DELETE",
		"verify_names.points: different (d=0.1): v: source 30, BigQuery 1")
}
