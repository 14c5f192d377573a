package binlog

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// checkNames are the results of Check against a MariaDB >= 10.5, in order.
var checkNames = []string{"connect", "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata",
	"binlog_row_value_options", "gtid", "log_slave_updates", "binlog retention", "net_read_timeout", "net_write_timeout", "wait_timeout",
	"read_only", "privilege REPLICATION SLAVE", "privilege BINLOG MONITOR", "privilege SELECT",
	"captured tables", "column types", "binlog_checksum", "version", "server_id", "server_id in use"}

// expectStatuses returns "name STATUS" for every check: PASS unless listed.
func expectStatuses(notPass map[string]cdc.Status) []string {
	var out []string
	for _, n := range checkNames {
		out = append(out, n+" "+notPass[n].String()) // the zero Status is Pass
	}
	return out
}

func TestCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// server (TestMain) is configured as strait needs it, but with MariaDB's
	// default timeouts. odd is a misconfigured replica on (fake) RDS.
	odd, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{ServerID: 2, RowMetadata: "MINIMAL", Args: []string{
		"--binlog-format=STATEMENT", "--net-read-timeout=3600", "--net-write-timeout=3600",
		"--wait-timeout=86400", "--read-only=1", "--log-slave-updates=OFF"}})
	if err != nil {
		t.Fatal(err)
	}
	defer odd.Stop()
	if err := odd.Exec(ctx, "",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='root'", server.Port),
		// RDS's configuration table and procedure; their presence makes Check treat the server as RDS.
		"CREATE TABLE mysql.rds_configuration (name VARCHAR(100) NOT NULL PRIMARY KEY, value VARCHAR(100), description VARCHAR(300) NOT NULL)",
		`INSERT INTO mysql.rds_configuration VALUES ('binlog retention hours', '24',
			'binlog retention hours specifies the duration in hours before binary logs are automatically deleted.')`,
		"CREATE PROCEDURE mysql.rds_show_configuration() SELECT name, value, description FROM mysql.rds_configuration",
		"CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY)",
	); err != nil {
		t.Fatal(err)
	}
	if err := server.Exec(ctx, "",
		"CREATE DATABASE IF NOT EXISTS shop", "CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY)",
		"CREATE DATABASE IF NOT EXISTS other", "CREATE TABLE IF NOT EXISTS other.t (id INT PRIMARY KEY)",
		"CREATE OR REPLACE USER 'sel'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT ON *.* TO 'sel'@'%'",
		"CREATE OR REPLACE USER 'noshop'@'%' IDENTIFIED BY 'pw'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'noshop'@'%'",
		"GRANT SELECT ON `other`.* TO 'noshop'@'%'",
		"CREATE OR REPLACE ROLE strait_reader",
		"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO strait_reader",
		"GRANT SELECT ON `shop`.* TO strait_reader",
		"CREATE OR REPLACE USER 'viarole'@'%' IDENTIFIED BY 'pw'",
		"GRANT strait_reader TO 'viarole'@'%'",
		"SET DEFAULT ROLE strait_reader FOR 'viarole'@'%'",
	); err != nil {
		t.Fatal(err)
	}

	cfg := func(m *testenv.MariaDB, user, password string, edit ...func(*Config)) *Config {
		c := &Config{Host: m.Host, Port: m.Port, User: user, Password: password, ServerID: 100}
		for _, e := range edit {
			e(c)
		}
		return c
	}
	timeouts := map[string]cdc.Status{"net_read_timeout": cdc.Warn, "net_write_timeout": cdc.Warn, "wait_timeout": cdc.Warn}
	with := func(a, b map[string]cdc.Status) map[string]cdc.Status {
		out := map[string]cdc.Status{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		cfg      *Config
		want     []string            // "name STATUS" of every result
		contains map[string][]string // result name → texts in its Detail or Fix
	}{{
		name: "default server",
		cfg:  cfg(server, server.User, server.Password),
		want: expectStatuses(timeouts),
		contains: map[string][]string{
			"net_read_timeout":  {"SET GLOBAL net_read_timeout=3600"},
			"wait_timeout":      {"wait_timeout=28800"},
			"binlog retention":  {"never expire"},
			"gtid":              {"gtid_strict_mode=ON"},
			"read_only":         {"source is writable (primary?) — strait never writes to it"},
			"log_slave_updates": {"log_slave_updates=ON"},
			"version":           {"mariadb 10.11"},
		},
	}, {
		name: "misconfigured replica on RDS",
		cfg:  cfg(odd, odd.User, odd.Password),
		want: expectStatuses(map[string]cdc.Status{
			"binlog_format": cdc.Fail, "binlog_row_metadata": cdc.Warn,
			"log_slave_updates": cdc.Fail, "binlog retention": cdc.Warn,
		}),
		contains: map[string][]string{
			"binlog_format":       {"RDS: set binlog_format=ROW in the DB parameter group and reboot; self-managed: SET GLOBAL binlog_format='ROW' and add binlog_format=ROW to my.cnf"},
			"binlog_row_metadata": {"binlog_row_metadata=MINIMAL"},
			"log_slave_updates":   {fmt.Sprintf("replica of 127.0.0.1:%d", server.Port)},
			"binlog retention":    {"RDS binlog retention hours=24", "CALL mysql.rds_set_configuration('binlog retention hours', 168)"},
			"read_only":           {"read_only=ON: read replica: snapshots never write"},
			"server_id":           {"server_id=2"},
		},
	}, {
		name: "only SELECT",
		cfg:  cfg(server, "sel", "pw"),
		want: expectStatuses(with(timeouts, map[string]cdc.Status{
			"privilege REPLICATION SLAVE": cdc.Fail, "privilege BINLOG MONITOR": cdc.Fail, "server_id in use": cdc.Warn,
		})),
		contains: map[string][]string{
			"privilege REPLICATION SLAVE": {"sel@% lacks REPLICATION SLAVE", "GRANT REPLICATION SLAVE ON *.* TO 'sel'@'%'"},
			"privilege BINLOG MONITOR":    {"sel@% lacks BINLOG MONITOR", "GRANT BINLOG MONITOR ON *.* TO 'sel'@'%'"},
			"privilege SELECT":            {"SELECT ON *.*"},
		},
	}, {
		name: "no SELECT on a captured database",
		cfg:  cfg(server, "noshop", "pw", func(c *Config) { c.Include = []string{"shop.*", "other.*"} }),
		want: expectStatuses(with(timeouts, map[string]cdc.Status{"privilege SELECT": cdc.Fail, "captured tables": cdc.Warn, "server_id in use": cdc.Warn})),
		contains: map[string][]string{
			"privilege SELECT":         {"noshop@% lacks SELECT on shop, needed", "GRANT SELECT ON `shop`.* TO 'noshop'@'%'"},
			"captured tables":          {"database shop named in source.include does not exist (or noshop@% has no privilege on it)", "other.t"},
			"privilege BINLOG MONITOR": {"BINLOG MONITOR granted"}, // REPLICATION CLIENT is its alias
		},
	}, {
		name: "privileges through the default role",
		cfg:  cfg(server, "viarole", "pw", func(c *Config) { c.Include = []string{"shop.*"} }),
		// SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN, which strait
		// does not need otherwise.
		want: expectStatuses(with(timeouts, map[string]cdc.Status{"server_id in use": cdc.Warn})),
		contains: map[string][]string{
			"privilege SELECT": {"SELECT on shop granted to viarole@%"},
		},
	}, {
		name: "same server_id",
		cfg:  cfg(server, server.User, server.Password, func(c *Config) { c.ServerID = server.ServerID }),
		want: expectStatuses(with(timeouts, map[string]cdc.Status{"server_id": cdc.Fail})),
		contains: map[string][]string{
			"server_id": {"choose another source.server_id"},
		},
	}, {
		name: "include names a database that does not exist",
		cfg:  cfg(server, server.User, server.Password, func(c *Config) { c.Include = []string{"nosuchdb.*"} }),
		want: expectStatuses(with(timeouts, map[string]cdc.Status{"captured tables": cdc.Fail})),
		contains: map[string][]string{
			"captured tables":  {"database nosuchdb named in source.include does not exist", "capture no table"},
			"privilege SELECT": {"SELECT ON *.*"},
		},
	}, {
		name: "server_id of a replica connected now",
		cfg:  cfg(server, server.User, server.Password, func(c *Config) { c.ServerID = 777 }),
		want: expectStatuses(with(timeouts, map[string]cdc.Status{"server_id in use": cdc.Fail})),
		contains: map[string][]string{
			"server_id in use": {"registered with server_id 777", "give each producer its own source.server_id"},
		},
	}, {
		name: "wrong flavor",
		cfg:  cfg(server, server.User, server.Password, func(c *Config) { c.Flavor = "mysql" }),
		want: expectStatuses(with(timeouts, map[string]cdc.Status{"version": cdc.Fail})),
		contains: map[string][]string{
			"version": {"set source.flavor: mariadb"},
		},
	}, {
		name:     "wrong password",
		cfg:      cfg(server, "sel", "wrong"),
		want:     []string{"connect FAIL"},
		contains: map[string][]string{"connect": {"Access denied", "source.password_file"}},
	}}
	// A replica of server registered with server_id 777, as another
	// producer would be.
	other := sourceConfig(server, "shop.*")
	other.ServerID = 777
	openAtCurrent(t, ctx, other)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(ctx, tt.cfg)
			var got []string
			byName := map[string]cdc.CheckResult{}
			for _, r := range res {
				got = append(got, r.Name+" "+r.Status.String())
				byName[r.Name] = r
				if r.Status != cdc.Pass && r.Fix == "" {
					t.Errorf("%s %s has no fix: %s", r.Name, r.Status, r.Detail)
				}
				if r.Detail == "" {
					t.Errorf("%s %s has no detail", r.Name, r.Status)
				}
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("statuses (-got +want):\n%s\nresults:\n%s", diff, formatResults(res))
			}
			for name, texts := range tt.contains {
				r := byName[name]
				for _, text := range texts {
					if !strings.Contains(r.Detail+"\n"+r.Fix, text) {
						t.Errorf("%s: detail %q, fix %q: want %q in one of them", name, r.Detail, r.Fix, text)
					}
				}
			}
		})
	}
}

func formatResults(res []cdc.CheckResult) string {
	var b strings.Builder
	for _, r := range res {
		fmt.Fprintf(&b, "%s %s: %s | %s\n", r.Status, r.Name, r.Detail, r.Fix)
	}
	return b.String()
}

func TestCheckCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Check(ctx, &Config{Host: server.Host, Port: server.Port, User: server.User})
	if len(res) != 1 || res[0].Name != "connect" || res[0].Status != cdc.Fail {
		t.Errorf("got %s, want one connect FAIL", formatResults(res))
	}
}

func TestCheckGrants(t *testing.T) {
	tests := []struct {
		name   string
		grants []string
		db     string // "" for a global privilege
		table  string
		privs  []string
		want   bool
	}{
		{"all privileges", []string{"GRANT ALL PRIVILEGES ON *.* TO `root`@`%` WITH GRANT OPTION"}, "", "", []string{"REPLICATION SLAVE"}, true},
		{"mariadb shows REPLICATION CLIENT as BINLOG MONITOR", []string{"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `s`@`%` IDENTIFIED BY PASSWORD '*B69'"}, "", "", []string{"BINLOG MONITOR", "REPLICATION CLIENT"}, true},
		{"mysql 8 lists static and dynamic privileges", []string{"GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `s`@`%`", "GRANT BACKUP_ADMIN,REPLICATION_SLAVE_ADMIN ON *.* TO `s`@`%`"}, "", "", []string{"REPLICATION CLIENT"}, true},
		{"database privilege is not global", []string{"GRANT ALL PRIVILEGES ON `shop`.* TO `s`@`%`"}, "", "", []string{"REPLICATION SLAVE"}, false},
		{"database ALL gives SELECT", []string{"GRANT ALL PRIVILEGES ON `shop`.* TO `s`@`%`"}, "shop", "", []string{"SELECT"}, true},
		{"global SELECT", []string{"GRANT SELECT ON *.* TO `s`@`%`"}, "shop", "", []string{"SELECT"}, true},
		{"other database", []string{"GRANT SELECT ON `shop`.* TO `s`@`%`"}, "crm", "", []string{"SELECT"}, false},
		{"wildcard database", []string{"GRANT SELECT ON `shop_%`.* TO `s`@`%`"}, "shop_eu", "", []string{"SELECT"}, true},
		{"escaped underscore", []string{"GRANT SELECT ON `my\\_db`.* TO `s`@`%`"}, "myxdb", "", []string{"SELECT"}, false},
		{"escaped underscore matches itself", []string{"GRANT SELECT ON `my\\_db`.* TO `s`@`%`"}, "my_db", "", []string{"SELECT"}, true},
		{"table grant for one table", []string{"GRANT SELECT ON `shop`.`orders` TO `s`@`%`"}, "shop", "orders", []string{"SELECT"}, true},
		{"table grant is not the database", []string{"GRANT SELECT ON `shop`.`orders` TO `s`@`%`"}, "shop", "", []string{"SELECT"}, false},
		{"column privilege is not SELECT", []string{"GRANT SELECT (`id`), INSERT ON `shop`.`orders` TO `s`@`%`"}, "shop", "orders", []string{"SELECT"}, false},
		{"role and routine lines are skipped", []string{"GRANT `r1` TO `s`@`%`", "GRANT EXECUTE ON PROCEDURE `mysql`.`rds_show_configuration` TO `s`@`%`"}, "mysql", "", []string{"SELECT", "EXECUTE"}, false},
		{"quoted backquote", []string{"GRANT SELECT ON `we``ird`.* TO `s`@`%`"}, "we`ird", "", []string{"SELECT"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := grantsAllow(parseGrants(tt.grants), tt.db, tt.table, tt.privs...); got != tt.want {
				t.Errorf("grantsAllow(%q, %q, %q, %q) = %v, want %v", tt.grants, tt.db, tt.table, tt.privs, got, tt.want)
			}
		})
	}
}

func TestCheckCapturedObjects(t *testing.T) {
	dbs := []string{"information_schema", "mysql", "shop_eu", "shop_us", "crm"}
	tests := []struct {
		include, exclude []string
		want             []string
	}{
		{nil, nil, []string{"shop_eu", "shop_us", "crm"}},
		{[]string{"shop.*", "crm.orders"}, nil, []string{"shop", "crm.orders"}},
		{[]string{"shop_*.*"}, []string{"shop_us.*"}, []string{"shop_eu"}},
		{[]string{"crm.orders", "crm.users"}, []string{"crm.users"}, []string{"crm.orders"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.include, ","), func(t *testing.T) {
			var got []string
			for _, o := range capturedObjects(&Config{Include: tt.include, Exclude: tt.exclude}, dbs) {
				got = append(got, o.String())
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestCheckRetention(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		s    sourceFacts
		want cdc.Status
		fix  string
	}{
		{"never expires", sourceFacts{vars: map[string]string{"binlog_expire_logs_seconds": "0", "expire_logs_days": "0.000000"}}, cdc.Pass, ""},
		{"one day", sourceFacts{vars: map[string]string{"binlog_expire_logs_seconds": "86400", "expire_logs_days": "1.000000"}}, cdc.Warn, "SET GLOBAL binlog_expire_logs_seconds=604800"},
		{"mysql 5.7 days", sourceFacts{vars: map[string]string{"expire_logs_days": "3"}}, cdc.Warn, "SET GLOBAL expire_logs_days=7"},
		{"thirty days", sourceFacts{vars: map[string]string{"binlog_expire_logs_seconds": "2592000"}}, cdc.Pass, ""},
		{"RDS NULL", sourceFacts{rds: true}, cdc.Warn, "CALL mysql.rds_set_configuration('binlog retention hours', 168)"},
		{"RDS 7 days", sourceFacts{rds: true, rdsRetention: str("168")}, cdc.Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.s.checkRetention()
			if r.Status != tt.want || !strings.Contains(r.Fix, tt.fix) || (tt.fix == "") != (r.Fix == "") {
				t.Errorf("got %s %q (fix %q), want %s with fix %q", r.Status, r.Detail, r.Fix, tt.want, tt.fix)
			}
		})
	}
}

func TestCheckMySQL(t *testing.T) {
	// What a MySQL 8 replica without GTIDs and with log_replica_updates off reports.
	s := &sourceFacts{vars: map[string]string{"version": "8.0.35", "gtid_mode": "OFF", "enforce_gtid_consistency": "OFF",
		"log_slave_updates": "OFF", "log_replica_updates": "OFF"}, replicaOf: "10.0.0.1:3306"}
	s.mariadb, s.major, s.minor = parseServerVersion(s.vars["version"])
	s.vars["binlog_row_value_options"] = "PARTIAL_JSON"
	got := []string{s.checkGTID().Status.String(), s.checkReplicaUpdates().Name, s.checkReplicaUpdates().Status.String(), s.checkVersion("").Status.String(),
		s.checkRowValueOptions().Status.String()}
	want := []string{"WARN", "log_replica_updates", "FAIL", "PASS", "FAIL"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	s.user, s.grants = "strait@10.%", []string{"GRANT SELECT, REPLICATION SLAVE ON *.* TO `strait`@`10.%`"}
	res := s.checkPrivileges(&Config{})
	if res[1].Name != "privilege REPLICATION CLIENT" || res[1].Fix != "GRANT REPLICATION CLIENT ON *.* TO 'strait'@'10.%'" {
		t.Errorf("got %s %s %q, want the REPLICATION CLIENT grant", res[1].Name, res[1].Status, res[1].Fix)
	}
}

func TestCheckQueryReadsCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS strait_check",
		"CREATE OR REPLACE PROCEDURE strait_check.show_config() SELECT 'binlog retention hours' AS name, NULL AS value"); err != nil {
		t.Fatal(err)
	}
	defer server.Exec(ctx, "", "DROP DATABASE strait_check")
	// A CALL that returns rows needs CLIENT_MULTI_RESULTS (else ERROR 1312).
	conn, err := client.ConnectWithContext(ctx, server.Addr(), server.User, server.Password, "", 10*time.Second,
		func(c *client.Conn) error { return c.SetCapability(mysql.CLIENT_MULTI_RESULTS) })
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := checkQuery(conn, "CALL strait_check.show_config()")
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"name": "binlog retention hours"}} // NULL value absent
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	// The connection still works after the CALL's final OK packet.
	if _, err := checkQuery(conn, "SELECT 1"); err != nil {
		t.Errorf("after CALL: %v", err)
	}
}
