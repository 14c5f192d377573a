package binlog

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/config"
)

const testHashKey = "0123456789abcdef0123456789abcdef"

// TestColumnRulesFromYAML reads source.columns from a YAML file, the hash
// key from the environment: mask null written as YAML's null, as "null",
// or empty is the null mask.
func TestColumnRulesFromYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "producer.yaml")
	yaml := `source:
  host: db
  user: strait
  columns:
    - table: shop.customers
      exclude: [ssn, notes]
      mask:
        email: hash
        phone: null
        fax: "null"
    - table: hr.*
      include: [id, name]
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Source Config `yaml:"source"`
	}
	cfg.Source.Defaults()
	env := map[string]string{"STRAIT_SOURCE_COLUMN_HASH_KEY": testHashKey}
	if err := config.Load(&cfg, path, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Source.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	want := ColumnRules{
		{Table: "shop.customers", Exclude: []string{"ssn", "notes"}, Mask: map[string]string{"email": MaskHash, "phone": "", "fax": MaskNull}},
		{Table: "hr.*", Include: []string{"id", "name"}},
	}
	if d := cmp.Diff(cfg.Source.Columns, want); d != "" {
		t.Errorf("columns (-got +want):\n%s", d)
	}
	if cfg.Source.ColumnHash.Key != testHashKey {
		t.Errorf("hash key not read from STRAIT_SOURCE_COLUMN_HASH_KEY")
	}
	if strings.Contains(config.Dump(&cfg), testHashKey) {
		t.Errorf("the hash key is printed by Dump")
	}

	// The key in the file is refused, naming the variable.
	bad := strings.Replace(yaml, "  columns:", "  column_hash:\n    key: secret-in-file-1234\n  columns:", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err := config.Load(&cfg, path, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "STRAIT_SOURCE_COLUMN_HASH_KEY") || strings.Contains(err.Error(), "secret-in-file") {
		t.Errorf("key in the file: error %v, want one naming STRAIT_SOURCE_COLUMN_HASH_KEY", err)
	}
}

// TestColumnRulesFromEnvironment reads source.columns from its variable,
// written as JSON (YAML's flow style).
func TestColumnRulesFromEnvironment(t *testing.T) {
	var cfg struct {
		Source Config `yaml:"source"`
	}
	env := map[string]string{"STRAIT_SOURCE_COLUMNS": `[{"table": "shop.users", "exclude": ["ssn"], "mask": {"email": "hash", "phone": null}}]`}
	if err := config.Load(&cfg, "", func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	want := ColumnRules{{Table: "shop.users", Exclude: []string{"ssn"}, Mask: map[string]string{"email": MaskHash, "phone": ""}}}
	if d := cmp.Diff(cfg.Source.Columns, want); d != "" {
		t.Errorf("columns (-got +want):\n%s", d)
	}
	env["STRAIT_SOURCE_COLUMNS"] = `[{"table": "shop.users", "exclud": ["ssn"]}]`
	if err := config.Load(&cfg, "", func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "STRAIT_SOURCE_COLUMNS") {
		t.Errorf("unknown key: error %v, want one naming STRAIT_SOURCE_COLUMNS", err)
	}
}

// TestColumnRulesValidate names the key, the table pattern and the column
// of every mistake.
func TestColumnRulesValidate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rules ColumnRules
		key   string
		query bool
		keys  []string // source.snapshot_keys
		want  []string // in the error; none: valid
	}{
		{name: "valid", rules: ColumnRules{{Table: "shop.users", Exclude: []string{"ssn"}, Mask: map[string]string{"email": "hash", "phone": ""}}}, key: testHashKey},
		{name: "null mask needs no key", rules: ColumnRules{{Table: "shop.users", Mask: map[string]string{"phone": "null"}}}},
		{name: "hash without key", rules: ColumnRules{{Table: "shop.users", Mask: map[string]string{"email": "hash"}}},
			want: []string{"source.columns", "shop.users", "email", "STRAIT_SOURCE_COLUMN_HASH_KEY"}},
		{name: "short key", rules: ColumnRules{{Table: "shop.users", Mask: map[string]string{"email": "hash"}}}, key: "short",
			want: []string{"STRAIT_SOURCE_COLUMN_HASH_KEY", "at least 16 bytes"}},
		{name: "unknown mask", rules: ColumnRules{{Table: "shop.users", Mask: map[string]string{"email": "md5"}}},
			want: []string{"source.columns", "shop.users", "email", `"md5"`, "hash or null"}},
		{name: "no table", rules: ColumnRules{{Exclude: []string{"ssn"}}}, want: []string{"source.columns[0].table", "required"}},
		{name: "bad pattern", rules: ColumnRules{{Table: "shop.[", Exclude: []string{"ssn"}}}, want: []string{"source.columns", "shop.["}},
		{name: "not database.table", rules: ColumnRules{{Table: "users", Exclude: []string{"ssn"}}}, want: []string{"source.columns", `"users"`, "database.table"}},
		{name: "include and exclude", rules: ColumnRules{{Table: "shop.users", Include: []string{"id"}, Exclude: []string{"ssn"}}},
			want: []string{"source.columns", "shop.users", "include or exclude"}},
		{name: "nothing to do", rules: ColumnRules{{Table: "shop.users"}}, want: []string{"source.columns", "shop.users", "include, exclude or mask"}},
		{name: "excluded and masked", rules: ColumnRules{{Table: "shop.users", Exclude: []string{"ssn"}, Mask: map[string]string{"SSN": "null"}}},
			want: []string{"shop.users", "SSN", "excluded and masked"}},
		{name: "masked not included", rules: ColumnRules{{Table: "shop.users", Include: []string{"id"}, Mask: map[string]string{"email": "null"}}},
			want: []string{"shop.users", "email", "not in include"}},
		{name: "masked twice", rules: ColumnRules{{Table: "shop.users", Mask: map[string]string{"Email": "null", "email": "null"}}},
			want: []string{"shop.users", "email", "masked twice"}},
		{name: "empty column name", rules: ColumnRules{{Table: "shop.users", Exclude: []string{""}}}, want: []string{"shop.users", "empty column name"}},
		{name: "with include_query", rules: ColumnRules{{Table: "shop.users", Exclude: []string{"ssn"}}}, query: true,
			want: []string{"source.include_query", "source.columns"}},
		{name: "snapshot key masked", rules: ColumnRules{{Table: "shop.*", Mask: map[string]string{"code": "null"}}}, keys: []string{"shop.logs:code"},
			want: []string{"source.columns", "shop.logs", "code", "source.snapshot_keys"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Host: "db", User: "u", Columns: tt.rules, IncludeQuery: tt.query, SnapshotKeys: tt.keys}
			cfg.ColumnHash.Key = tt.key
			cfg.Defaults()
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.key != "" && strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func hmacHex(key, v string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

func customersTable() *cdc.Table {
	return &cdc.Table{Database: "shop", Name: "customers", PrimaryKey: []int{1},
		Columns: []cdc.Column{
			{Name: "region", Type: cdc.TypeInt32},
			{Name: "id", Type: cdc.TypeInt64, SQLType: "bigint(20)"},
			{Name: "email", Type: cdc.TypeString, SQLType: "varchar(100)", Nullable: true},
			{Name: "ssn", Type: cdc.TypeString, SQLType: "char(11)"},
			{Name: "phone", Type: cdc.TypeString, SQLType: "varchar(20)"},
			{Name: "born", Type: cdc.TypeDate},
			{Name: "salary", Type: cdc.TypeDecimal, Precision: 10, Scale: 2, Nullable: true},
		}}
}

// TestColumnPlan builds the published schema of a table and masks rows:
// excluded columns gone, hashed ones strings of the HMAC, nulled ones
// nullable and NULL, the key's indexes moved with its columns.
func TestColumnPlan(t *testing.T) {
	p := newColumnPolicy(&Config{Columns: ColumnRules{
		{Table: "shop.*", Exclude: []string{"REGION", "ssn"}},
		{Table: "shop.customers", Mask: map[string]string{"Email": "hash", "phone": "", "salary": "hash", "born": "hash"}},
		{Table: "other.*", Exclude: []string{"id"}},
	}, ColumnHash: ColumnHashConfig{Key: testHashKey}})
	src := customersTable()
	plan, err := p.plan(src)
	if err != nil {
		t.Fatal(err)
	}
	want := &cdc.Table{Database: "shop", Name: "customers", PrimaryKey: []int{0},
		Columns: []cdc.Column{
			{Name: "id", Type: cdc.TypeInt64, SQLType: "bigint(20)"},
			{Name: "email", Type: cdc.TypeString, SQLType: "varchar(100) masked: hash", Nullable: true},
			{Name: "phone", Type: cdc.TypeString, SQLType: "varchar(20) masked: null", Nullable: true},
			{Name: "born", Type: cdc.TypeString, SQLType: "masked: hash"},
			{Name: "salary", Type: cdc.TypeString, SQLType: "masked: hash", Nullable: true},
		}}
	if d := cmp.Diff(plan.table, want); d != "" {
		t.Errorf("published table (-got +want):\n%s", d)
	}
	row := []cdc.Value{cdc.Int(3), cdc.Int(42), cdc.Str("ada@example.com"), cdc.Str("123-45-6789"), cdc.Str("555"), cdc.Int(19000), cdc.Str("-12.50")}
	got := plan.apply(p, make([]cdc.Value, len(plan.src)), row)
	wantRow := []cdc.Value{cdc.Int(42), cdc.Str(hmacHex(testHashKey, "ada@example.com")), cdc.Null,
		cdc.Str(hmacHex(testHashKey, "19000")), cdc.Str(hmacHex(testHashKey, "-12.50"))}
	if d := cmp.Diff(got, wantRow); d != "" {
		t.Errorf("masked row (-got +want):\n%s", d)
	}
	// NULL stays NULL; the same value gives the same token.
	row2 := []cdc.Value{cdc.Int(1), cdc.Int(7), cdc.Str("ada@example.com"), cdc.Null, cdc.Null, cdc.Int(0), cdc.Null}
	got = plan.apply(p, make([]cdc.Value, len(plan.src)), row2)
	if got[1] != wantRow[1] || !got[2].Null || !got[4].Null {
		t.Errorf("second row masked as %v", got)
	}
	// A JSON document hashes alike however it is spaced or its keys
	// ordered: the snapshot reads MySQL's text, the stream its binary form.
	doc := &cdc.Column{Name: "doc", Type: cdc.TypeJSON}
	if a, b := p.hash(doc, cdc.Str(`{"b": 1.50, "a": [true, null, "é<"]}`)), p.hash(doc, cdc.Str(`{"a":[true,null,"é<"],"b":1.50}`)); a != b || a != hmacHex(testHashKey, `{"a":[true,null,"é<"],"b":1.50}`) {
		t.Errorf("JSON hashes %s and %s, want both the hash of the compact sorted document", a, b)
	}
	// The plan is kept per table version.
	if again, _ := p.plan(src); again != plan {
		t.Errorf("a second plan for the same table version")
	}
	// A table no rule touches passes unchanged.
	if plan, err := p.plan(&cdc.Table{Database: "shopx", Name: "customers", Columns: src.Columns}); plan != nil || err != nil {
		t.Errorf("untouched table: plan %v, error %v", plan, err)
	}
}

// TestColumnPlanRefusesKeyColumns refuses a rule that leaves out or masks
// a primary-key column, naming the table and the column.
func TestColumnPlanRefusesKeyColumns(t *testing.T) {
	for _, rule := range []ColumnRule{
		{Table: "shop.customers", Exclude: []string{"id"}},
		{Table: "shop.*", Include: []string{"email"}},
		{Table: "shop.customers", Mask: map[string]string{"ID": "null"}},
		{Table: "shop.customers", Mask: map[string]string{"id": "hash"}},
	} {
		p := newColumnPolicy(&Config{Columns: ColumnRules{rule}, ColumnHash: ColumnHashConfig{Key: testHashKey}})
		_, err := p.plan(customersTable())
		if err == nil || !strings.Contains(err.Error(), "shop.customers") || !strings.Contains(err.Error(), "column id") || !strings.Contains(err.Error(), "primary key") {
			t.Errorf("%+v: error %v, want one naming shop.customers, column id and the primary key", rule, err)
		}
	}
	// Two rules masking one column differently.
	p := newColumnPolicy(&Config{Columns: ColumnRules{
		{Table: "shop.*", Mask: map[string]string{"email": "null"}},
		{Table: "shop.customers", Mask: map[string]string{"email": "hash"}},
	}, ColumnHash: ColumnHashConfig{Key: testHashKey}})
	if _, err := p.plan(customersTable()); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("two masks: error %v, want one naming email", err)
	}
	// A hash mask without a key (a configuration not validated).
	p = newColumnPolicy(&Config{Columns: ColumnRules{{Table: "shop.customers", Mask: map[string]string{"email": "hash"}}}})
	if _, err := p.plan(customersTable()); err == nil || !strings.Contains(err.Error(), "STRAIT_SOURCE_COLUMN_HASH_KEY") {
		t.Errorf("hash without a key: error %v, want one naming STRAIT_SOURCE_COLUMN_HASH_KEY", err)
	}
}

// TestCheckColumns reports, in producer check, rules that match no
// captured table and columns no matching table has (warnings), and a rule
// that masks a primary-key column (a failure that stops producer run).
func TestCheckColumns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE checkcols", "USE checkcols",
		"CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(50), ssn CHAR(11))"); err != nil {
		t.Fatal(err)
	}
	find := func(res []cdc.CheckResult) cdc.CheckResult {
		for _, r := range res {
			if r.Name == "columns" {
				return r
			}
		}
		t.Fatalf("no columns check in %v", res)
		return cdc.CheckResult{}
	}
	cfg := sourceConfig(server, "checkcols.*")
	cfg.ColumnHash.Key = testHashKey
	cfg.Columns = ColumnRules{{Table: "checkcols.people", Exclude: []string{"ssn"}, Mask: map[string]string{"email": "hash"}}}
	if r := find(Check(ctx, cfg)); r.Status != cdc.Pass || !strings.Contains(r.Detail, "checkcols.people") {
		t.Errorf("valid rules: %+v", r)
	}

	cfg.Columns = ColumnRules{
		{Table: "checkcols.people", Exclude: []string{"sssn"}, Mask: map[string]string{"emial": "null"}},
		{Table: "checkcols.persons", Exclude: []string{"ssn"}},
	}
	r := find(Check(ctx, cfg))
	if r.Status != cdc.Warn {
		t.Errorf("unknown names: status %v, want WARN", r.Status)
	}
	for _, w := range []string{"checkcols.persons", "sssn", "emial"} {
		if !strings.Contains(r.Detail, w) {
			t.Errorf("unknown names: detail %q lacks %q", r.Detail, w)
		}
	}

	cfg.Columns = ColumnRules{{Table: "checkcols.people", Mask: map[string]string{"id": "null"}}}
	r = find(Check(ctx, cfg))
	if r.Status != cdc.Fail || !strings.Contains(r.Detail, "checkcols.people") || !strings.Contains(r.Detail, "column id") {
		t.Errorf("masked key: %+v, want FAIL naming the table and column", r)
	}
	if err := Preflight(ctx, cfg); err == nil || !strings.Contains(err.Error(), "column id") {
		t.Errorf("preflight with a masked key: %v, want the failure", err)
	}
}

// TestReaderMasksAndRefusesKeyAfterDDL reads a masked table from the
// binlog: the events hold the published schema and values; once a DDL
// makes the masked column the primary key, the reader stops with an error
// naming the table and the column instead of publishing it.
func TestReaderMasksAndRefusesKeyAfterDDL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE colddl", "CREATE TABLE colddl.t (id INT PRIMARY KEY, email VARCHAR(50) NOT NULL, ssn CHAR(11))"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "colddl.*")
	cfg.Columns = ColumnRules{{Table: "colddl.t", Exclude: []string{"ssn"}, Mask: map[string]string{"email": "null"}}}
	r := openAtCurrent(t, ctx, cfg)
	if err := server.Exec(ctx, "colddl", "INSERT INTO t VALUES (1, 'a@example.com', '123-45-6789')", "UPDATE t SET email = 'b@example.com' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, ctx, r, 2)
	want := []cdc.Column{{Name: "id", Type: cdc.TypeInt32}, {Name: "email", Type: cdc.TypeString, Nullable: true}}
	for _, ev := range evs {
		if d := cmp.Diff(ev.Table.Columns, want, cmpopts.IgnoreFields(cdc.Column{}, "SQLType")); d != "" {
			t.Errorf("%c event's columns (-got +want):\n%s", ev.Op, d)
		}
		for _, img := range [][]cdc.Value{ev.Before, ev.After} {
			if img != nil && (len(img) != 2 || !img[1].Null) {
				t.Errorf("%c event's image %v, want id and NULL", ev.Op, img)
			}
		}
	}
	if err := server.Exec(ctx, "colddl", "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (email)", "INSERT INTO t VALUES (2, 'c@example.com', NULL)"); err != nil {
		t.Fatal(err)
	}
	for {
		var tx Tx
		err := r.ReadTx(ctx, &tx)
		if err == nil {
			for _, ev := range tx.Events {
				t.Fatalf("published %c of %s after the key became masked: %v", ev.Op, ev.Table.ID(), ev.After)
			}
			continue
		}
		if !strings.Contains(err.Error(), "colddl.t column email is part of the primary key") {
			t.Fatalf("error %v, want one naming colddl.t and its column email", err)
		}
		break
	}
}

// TestColumnRulesFromYAMLRefuseUnknownFields: a misspelt field of a rule is
// an error naming the file, line and key, as a misspelt key is; it is not
// silently ignored (which would publish the column it meant to leave out).
func TestColumnRulesFromYAMLRefuseUnknownFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "producer.yaml")
	yaml := `source:
  host: db
  columns:
    - table: shop.customers
      exlude: [ssn]
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Source Config `yaml:"source"`
	}
	cfg.Source.Defaults()
	err := config.Load(&cfg, path, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "source.columns") || !strings.Contains(err.Error(), "exlude") {
		t.Fatalf("want an error naming line 4, source.columns and exlude, got %v", err)
	}
}
