package testenv

import (
	"context"
	"testing"
	"time"
)

func TestMariaDBBinlogSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := StartMariaDB(ctx, MariaDBOptions{ServerID: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	rows, err := m.Query(ctx, "", "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@server_id")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1", "ROW", "FULL", "FULL", "7"}
	for i, w := range want {
		if got := *rows[0][i]; got != w {
			t.Errorf("column %d = %q, want %q", i, got, w)
		}
	}
}

func TestTwoServersAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := StartMariaDB(ctx, MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	b, err := StartMariaDB(ctx, MariaDBOptions{RowMetadata: "MINIMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if a.Port == b.Port {
		t.Fatalf("both servers on port %d", a.Port)
	}
	if err := a.Exec(ctx, "", "CREATE DATABASE only_a"); err != nil {
		t.Fatal(err)
	}
	rows, err := b.Query(ctx, "", "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'only_a'")
	if err != nil {
		t.Fatal(err)
	}
	if got := *rows[0][0]; got != "0" {
		t.Errorf("server b sees server a's database: count %s", got)
	}
	rows, err = b.Query(ctx, "", "SELECT @@binlog_row_metadata")
	if err != nil {
		t.Fatal(err)
	}
	if got := *rows[0][0]; got != "MINIMAL" {
		t.Errorf("binlog_row_metadata = %s, want MINIMAL", got)
	}
}

func TestKafkaAndRegistry(t *testing.T) {
	c, err := StartKafka()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.ListenAddrs()) != 1 {
		t.Errorf("listen addrs = %v, want one broker", c.ListenAddrs())
	}
	r := StartRegistry()
	defer r.Close()
	if r.URL() == "" {
		t.Error("registry has no URL")
	}
}
