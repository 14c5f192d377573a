package binlog

// columns.go: source.columns keeps columns out of everything the producer
// publishes. Per table pattern, a rule leaves columns out (an include or an
// exclude list) and masks others: hash publishes a keyed hash of the value
// (HMAC-SHA256 with a secret key, hex), null publishes NULL. The reader
// decodes and matches whole rows as before (the snapshot and the stream
// compare keys, the schema history keeps every column to decode with); the
// rows and schemas it hands out (ReadTx, TableScan) are the published ones,
// so the Avro schemas, the records, the dead letters and `producer verify`
// all see the same columns and values, and the masked values never leave
// the process.
//
// Primary-key columns are never left out nor masked: the key names the
// row in the record key, in BigQuery's upserts, and in the snapshot's
// progress kept in <prefix>._checkpoint, which would carry the raw value.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// The masks of source.columns' mask.
const (
	// MaskHash publishes the lower-case hex HMAC-SHA256 of the value under
	// source.column_hash.key: a string column; NULL stays NULL.
	MaskHash = "hash"
	// MaskNull publishes NULL; the column becomes nullable.
	MaskNull = "null"
)

// minHashKey is the shortest hash key accepted, in bytes.
const minHashKey = 16

// ColumnRule is one entry of source.columns.
type ColumnRule struct {
	// Table is a "database.table" pattern (path.Match syntax, as
	// source.include) naming the tables the rule applies to.
	Table string `yaml:"table" json:"table,omitempty"`
	// Include lists the only columns published; Exclude lists columns
	// never published. A rule has at most one of them. Column names are
	// compared without case, as MySQL does.
	Include []string `yaml:"include" json:"include,omitempty"`
	Exclude []string `yaml:"exclude" json:"exclude,omitempty"`
	// Mask maps a column to MaskHash or MaskNull; YAML's null (or an
	// empty value) is MaskNull.
	Mask map[string]string `yaml:"mask" json:"mask,omitempty"`
}

// ColumnRules is source.columns. Every rule whose pattern matches a table
// applies to it. In the environment (STRAIT_SOURCE_COLUMNS) and as a flag
// it is written as JSON (YAML's flow style):
// [{"table": "shop.users", "exclude": ["ssn"], "mask": {"email": "hash"}}].
type ColumnRules []ColumnRule

// UnmarshalText reads the JSON form of the environment and the flag.
func (r *ColumnRules) UnmarshalText(b []byte) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var rules []ColumnRule // not ColumnRules: json would call UnmarshalText again
	if err := dec.Decode(&rules); err != nil {
		return fmt.Errorf(`want JSON such as [{"table": "shop.users", "exclude": ["ssn"], "mask": {"email": "hash"}}]: %w`, err)
	}
	*r = rules
	return nil
}

// String is the JSON form (for -print-config).
func (r ColumnRules) String() string {
	if len(r) == 0 {
		return ""
	}
	b, _ := json.Marshal([]ColumnRule(r))
	return string(b)
}

// ColumnHashConfig holds the key of source.columns' hash mask.
type ColumnHashConfig struct {
	// Key is the secret HMAC-SHA256 key, at least 16 bytes (e.g. openssl
	// rand -hex 32). Only from the environment
	// (STRAIT_SOURCE_COLUMN_HASH_KEY). Another key gives other tokens:
	// re-snapshot the tables after changing it.
	Key string `yaml:"-" secret:"true" help:"secret key of source.columns' hash mask, at least 16 bytes (environment only)"`
}

// mask returns the rule's mask of a column as written ("" when none) and
// whether it names the column.
func (r *ColumnRule) mask(name string) (string, bool) {
	for c, m := range r.Mask {
		if strings.EqualFold(c, name) {
			if m == "" {
				m = MaskNull
			}
			return m, true
		}
	}
	return "", false
}

// drops reports whether the rule leaves column name out.
func (r *ColumnRule) drops(name string) bool {
	has := func(list []string) bool {
		return slices.ContainsFunc(list, func(c string) bool { return strings.EqualFold(c, name) })
	}
	return has(r.Exclude) || len(r.Include) > 0 && !has(r.Include)
}

// names returns every column the rule names.
func (r *ColumnRule) names() []string {
	out := append(append([]string{}, r.Include...), r.Exclude...)
	for c := range r.Mask {
		out = append(out, c)
	}
	return out
}

// validateColumns reports every problem of source.columns, naming the
// key, the rule's table pattern and the column.
func (c *Config) validateColumns() error {
	var errs []error
	hashed := ""
	keys, _ := snapshotKeys(c.SnapshotKeys) // its own errors are reported by Validate
	for i, r := range c.Columns {
		key := fmt.Sprintf("source.columns[%d]", i)
		if r.Table == "" {
			errs = append(errs, fmt.Errorf("%s.table: required (a database.table pattern)", key))
			continue
		}
		key = "source.columns " + r.Table
		if _, err := path.Match(r.Table, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s: pattern %q: %w", key, r.Table, err))
			continue
		}
		if db, table, ok := strings.Cut(r.Table, "."); !ok || db == "" || table == "" {
			errs = append(errs, fmt.Errorf("source.columns: table %q, want a database.table pattern (e.g. shop.users, shop.*)", r.Table))
			continue
		}
		if len(r.Include) > 0 && len(r.Exclude) > 0 {
			errs = append(errs, fmt.Errorf("%s: set include or exclude, not both", key))
		}
		if len(r.Include) == 0 && len(r.Exclude) == 0 && len(r.Mask) == 0 {
			errs = append(errs, fmt.Errorf("%s: set include, exclude or mask", key))
		}
		if slices.Contains(r.names(), "") {
			errs = append(errs, fmt.Errorf("%s: empty column name", key))
		}
		masked := map[string]bool{}
		for _, col := range slices.Sorted(maps.Keys(r.Mask)) {
			m, _ := r.mask(col)
			switch {
			case masked[strings.ToLower(col)]:
				errs = append(errs, fmt.Errorf("%s: column %s: masked twice (names are compared without case)", key, col))
			case m != MaskHash && m != MaskNull:
				errs = append(errs, fmt.Errorf("%s: column %s: mask %q, want hash or null", key, col, m))
			case r.drops(col) && len(r.Include) > 0:
				errs = append(errs, fmt.Errorf("%s: column %s is masked but not in include (a column left out needs no mask)", key, col))
			case r.drops(col):
				errs = append(errs, fmt.Errorf("%s: column %s is both excluded and masked: choose one", key, col))
			case m == MaskHash && hashed == "":
				hashed = r.Table + " column " + col
			}
			masked[strings.ToLower(col)] = true
		}
		for _, id := range slices.Sorted(maps.Keys(keys)) {
			if ok, _ := path.Match(r.Table, id); !ok {
				continue
			}
			for _, col := range keys[id] {
				if _, masked := r.mask(col); masked || r.drops(col) {
					errs = append(errs, fmt.Errorf("%s: column %s of %s is its snapshot key (source.snapshot_keys): it cannot be left out or masked", key, col, id))
				}
			}
		}
	}
	if hashed != "" && c.ColumnHash.Key == "" {
		errs = append(errs, fmt.Errorf("source.columns: %s is masked with hash, which needs a secret key: set STRAIT_SOURCE_COLUMN_HASH_KEY (at least %d bytes, e.g. openssl rand -hex 32)", hashed, minHashKey))
	}
	if k := c.ColumnHash.Key; k != "" && len(k) < minHashKey {
		errs = append(errs, fmt.Errorf("STRAIT_SOURCE_COLUMN_HASH_KEY: %d bytes, want at least %d bytes (e.g. openssl rand -hex 32)", len(k), minHashKey))
	}
	if len(c.Columns) > 0 && c.IncludeQuery {
		errs = append(errs, errors.New("source.include_query: the statements it publishes carry the values source.columns keeps out; turn it off"))
	}
	return errors.Join(errs...)
}

// columnPolicy applies source.columns to tables and rows. Not safe for
// concurrent use (it keeps one hash state): each Reader and TableScan has
// its own.
type columnPolicy struct {
	rules ColumnRules
	mac   hash.Hash // HMAC-SHA256 under the key; nil without one
	sum   []byte    // scratch for mac's sums
	plans map[*cdc.Table]*columnPlan
	ids   map[string]bool // the tables plans were built for, whatever version
}

// newColumnPolicy returns the policy of cfg, nil when it has no rules.
func newColumnPolicy(cfg *Config) *columnPolicy {
	if len(cfg.Columns) == 0 {
		return nil
	}
	p := &columnPolicy{rules: cfg.Columns}
	if cfg.ColumnHash.Key != "" {
		p.mac = hmac.New(sha256.New, []byte(cfg.ColumnHash.Key))
	}
	return p
}

// columnPlan is how one table version is published.
type columnPlan struct {
	table *cdc.Table   // the published schema
	from  *cdc.Table   // the source schema
	src   []int        // for each published column, its index in the source row
	mask  []string     // for each published column, its mask ("" for none)
	cols  []cdc.Column // the source columns, by published index
}

// plan returns the plan of table version t, nil when no rule changes it.
// Plans are kept by table version.
func (p *columnPolicy) plan(t *cdc.Table) (*columnPlan, error) {
	if pl, ok := p.plans[t]; ok {
		return pl, nil
	}
	pl, err := p.build(t)
	if err != nil {
		return nil, err
	}
	if p.ids == nil {
		p.ids = map[string]bool{}
	}
	p.ids[t.ID()] = true
	// Old versions are dropped wholesale, once they could outnumber the
	// tables: a bound in the number of tables, not a fixed one, which
	// 10,000 tables would overflow and rebuild a plan for every row.
	if p.plans == nil || len(p.plans) >= 4096+2*len(p.ids) {
		p.plans = map[*cdc.Table]*columnPlan{}
	}
	p.plans[t] = pl
	return pl, nil
}

// build makes the plan of t from the rules matching it.
func (p *columnPolicy) build(t *cdc.Table) (*columnPlan, error) {
	var rules []*ColumnRule
	for i := range p.rules {
		if ok, _ := path.Match(p.rules[i].Table, t.ID()); ok {
			rules = append(rules, &p.rules[i])
		}
	}
	if len(rules) == 0 {
		return nil, nil
	}
	pub := &cdc.Table{Database: t.Database, Name: t.Name}
	pl := &columnPlan{table: pub, from: t}
	index := make([]int, len(t.Columns)) // published index by source index; -1 left out
	changed := false
	for i, c := range t.Columns {
		dropped, mask := false, ""
		for _, r := range rules {
			dropped = dropped || r.drops(c.Name)
			if m, ok := r.mask(c.Name); ok {
				if mask != "" && mask != m {
					return nil, fmt.Errorf("source.columns: table %s column %s: masked both %s and %s by two rules", t.ID(), c.Name, mask, m)
				}
				mask = m
			}
		}
		switch {
		case mask == MaskHash && p.mac == nil:
			return nil, fmt.Errorf("source.columns: table %s column %s is masked with hash, which needs a secret key: set STRAIT_SOURCE_COLUMN_HASH_KEY", t.ID(), c.Name)
		case mask != "" && mask != MaskHash && mask != MaskNull:
			return nil, fmt.Errorf("source.columns: table %s column %s: mask %q, want hash or null", t.ID(), c.Name, mask)
		}
		if (dropped || mask != "") && slices.Contains(t.PrimaryKey, i) {
			return nil, fmt.Errorf("source.columns: table %s column %s is part of the primary key: it cannot be left out or masked (the key names the row in the record key, in BigQuery and in the snapshot's checkpoint)", t.ID(), c.Name)
		}
		if dropped {
			index[i], changed = -1, true
			continue
		}
		index[i] = len(pub.Columns)
		pc := c
		switch mask {
		case MaskHash:
			pc = cdc.Column{Name: c.Name, Type: cdc.TypeString, Nullable: c.Nullable, SQLType: strings.TrimSpace(c.SQLType + " masked: hash")}
		case MaskNull:
			pc.Nullable, pc.SQLType = true, strings.TrimSpace(c.SQLType+" masked: null")
		}
		changed = changed || mask != ""
		pub.Columns = append(pub.Columns, pc)
		pl.src, pl.mask, pl.cols = append(pl.src, i), append(pl.mask, mask), append(pl.cols, c)
	}
	if !changed {
		return nil, nil
	}
	if len(pub.Columns) == 0 {
		return nil, fmt.Errorf("source.columns: table %s: the rules leave no column", t.ID())
	}
	for _, k := range t.PrimaryKey {
		pub.PrimaryKey = append(pub.PrimaryKey, index[k])
	}
	return pl, nil
}

// apply writes row (of the source schema) as published into dst (of
// len(pl.src) values) and returns dst.
func (pl *columnPlan) apply(p *columnPolicy, dst, row []cdc.Value) []cdc.Value {
	for j, i := range pl.src {
		v := row[i]
		switch pl.mask[j] {
		case MaskHash:
			if !v.Null {
				v = cdc.Str(p.hash(&pl.cols[j], v))
			}
		case MaskNull:
			v = cdc.Null
		}
		dst[j] = v
	}
	return dst
}

// hash is the hex HMAC-SHA256 of a value's text: text, binary strings,
// decimals (digits as MySQL prints them) and geometry as their bytes; JSON
// compact with its object keys sorted (canonicalJSON); integers in
// decimal; floats in Go's shortest form; dates, times and BIT values as
// the number strait carries them as (days or microseconds since 1970,
// README "Type mapping").
func (p *columnPolicy) hash(c *cdc.Column, v cdc.Value) string {
	p.mac.Reset()
	switch c.Type {
	case cdc.TypeJSON:
		p.mac.Write(canonicalJSON(v.Str))
	case cdc.TypeString, cdc.TypeBytes, cdc.TypeDecimal, cdc.TypeGeometry:
		p.mac.Write([]byte(v.Str))
	case cdc.TypeUint64:
		p.mac.Write(strconv.AppendUint(p.sum[:0], uint64(v.Int), 10))
	case cdc.TypeFloat32:
		p.mac.Write(strconv.AppendFloat(p.sum[:0], v.Float, 'g', -1, 32))
	case cdc.TypeFloat64:
		p.mac.Write(strconv.AppendFloat(p.sum[:0], v.Float, 'g', -1, 64))
	default:
		p.mac.Write(strconv.AppendInt(p.sum[:0], v.Int, 10))
	}
	p.sum = p.mac.Sum(p.sum[:0])
	return hex.EncodeToString(p.sum)
}

// canonicalJSON is a JSON document without insignificant whitespace and
// with its object keys sorted, numbers as written: the snapshot reads
// MySQL's JSON as the server prints it, the stream decodes its binary
// form, and both must hash alike. Text that is not one JSON document is
// returned as it is.
func canonicalJSON(s string) []byte {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return []byte(s)
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return []byte(s)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// applyTx publishes the transaction's rows and schemas as source.columns
// says: each event's table becomes its published version and its images
// are masked into rows cut from the transaction's slab.
func (p *columnPolicy) applyTx(tx *Tx) error {
	if p == nil {
		return nil
	}
	for k := range tx.Events {
		ev := &tx.Events[k]
		pl, err := p.plan(ev.Table)
		if err != nil {
			return err
		}
		if pl == nil {
			continue
		}
		ev.Table = pl.table
		if ev.Before != nil {
			ev.Before = pl.apply(p, tx.row(len(pl.src)), ev.Before)
		}
		if ev.After != nil {
			ev.After = pl.apply(p, tx.row(len(pl.src)), ev.After)
		}
	}
	return nil
}

// published returns table version t as published.
func (p *columnPolicy) published(t *cdc.Table) (*cdc.Table, error) {
	if p == nil {
		return t, nil
	}
	pl, err := p.plan(t)
	if err != nil || pl == nil {
		return t, err
	}
	return pl.table, nil
}

// applyRows masks rows of table version t in place: each is shortened to
// the published columns.
func (p *columnPolicy) applyRows(t *cdc.Table, rows [][]cdc.Value) error {
	if p == nil {
		return nil
	}
	pl, err := p.plan(t)
	if err != nil || pl == nil {
		return err
	}
	for i, row := range rows {
		// In place: a published column never comes after its source.
		rows[i] = pl.apply(p, row[:len(pl.src)], row)
	}
	return nil
}

// checkFilter refuses a snapshot condition that reads a column
// source.columns leaves out or masks of table t: which rows it selects
// would tell about the values.
func (p *columnPolicy) checkFilter(f *Filter, t *cdc.Table) error {
	if p == nil {
		return nil
	}
	pl, err := p.plan(t)
	if err != nil || pl == nil {
		return err
	}
	for _, c := range f.Columns {
		j := slices.IndexFunc(pl.table.Columns, func(p cdc.Column) bool { return strings.EqualFold(p.Name, c) })
		if j < 0 || pl.mask[j] != "" {
			return fmt.Errorf("%w: column %s is kept out of the published rows by source.columns: a condition on it would tell about its values", ErrFilter, c)
		}
	}
	return nil
}

// checkColumnsName names the source.columns result of `producer check`.
const checkColumnsName = "columns"

// checkColumns judges source.columns against the captured tables, read as
// a snapshot reads them: a rule that leaves out or masks a primary-key
// column fails (producer run refuses to start: it would stop at the
// table's first row); a rule that matches no captured table, or names a
// column none of its tables has, is a warning naming them.
func checkColumns(conn *client.Conn, cfg *Config, full bool) cdc.CheckResult {
	r := cdc.CheckResult{Name: checkColumnsName, Status: cdc.Pass}
	all, err := readSchemas(conn, `TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		AND (TABLE_SCHEMA, TABLE_NAME) IN (SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE')`)
	if err != nil {
		r.Status, r.Detail, r.Fix = cdc.Warn, fmt.Sprintf("cannot read the captured tables' columns: %v", err), "GRANT SELECT on the captured databases to the producer's user"
		return r
	}
	p := newColumnPolicy(cfg)
	var fails, unknown, applied []string
	matched := make([]bool, len(cfg.Columns))
	known := make([]map[string]bool, len(cfg.Columns)) // lower-case names of the columns of each rule's tables
	for _, id := range slices.Sorted(maps.Keys(all)) {
		s := all[id]
		if !Captures(cfg.Include, cfg.Exclude, s.Database, s.Table) {
			continue
		}
		for i, rule := range cfg.Columns {
			if ok, _ := path.Match(rule.Table, id); ok {
				matched[i] = true
				if known[i] == nil {
					known[i] = map[string]bool{}
				}
				for _, c := range s.Columns {
					known[i][strings.ToLower(c.Name)] = true
				}
			}
		}
		info, err := snapshotInfo(s, full)
		if err != nil {
			continue // the column types check names it
		}
		pl, err := p.build(info.table)
		switch {
		case err != nil:
			fails = append(fails, err.Error())
		case pl != nil:
			applied = append(applied, id+" ("+pl.describe()+")")
		}
	}
	for i, rule := range cfg.Columns {
		if !matched[i] {
			unknown = append(unknown, fmt.Sprintf("%s matches no captured table", rule.Table))
			continue
		}
		var missing []string
		for _, c := range rule.names() {
			if !known[i][strings.ToLower(c)] {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			unknown = append(unknown, fmt.Sprintf("%s: no table it matches has column %s", rule.Table, strings.Join(missing, ", ")))
		}
	}
	switch {
	case len(fails) > 0:
		r.Status, r.Detail = cdc.Fail, strings.Join(fails, "; ")
		r.Fix = "keep primary-key columns out of source.columns' include/exclude lists and masks (a table whose key is sensitive: leave the table out with source.exclude)"
	case len(unknown) > 0:
		r.Status, r.Detail = cdc.Warn, "source.columns: "+strings.Join(unknown, "; ")
		r.Fix = "correct the table patterns and column names in source.columns (a rule for a table or column created later may stay)"
	default:
		r.Detail = fmt.Sprintf("%d tables: %s", len(applied), strings.Join(applied, ", "))
	}
	if len(unknown) > 0 && len(fails) > 0 {
		r.Detail += "; source.columns: " + strings.Join(unknown, "; ")
	}
	return r
}

// describe lists what the plan does: the columns left out, hashed and
// nulled.
func (pl *columnPlan) describe() string {
	var out, hashed, nulled []string
	for _, c := range pl.from.Columns {
		if !slices.ContainsFunc(pl.table.Columns, func(p cdc.Column) bool { return p.Name == c.Name }) {
			out = append(out, c.Name)
		}
	}
	for j, m := range pl.mask {
		switch m {
		case MaskHash:
			hashed = append(hashed, pl.cols[j].Name)
		case MaskNull:
			nulled = append(nulled, pl.cols[j].Name)
		}
	}
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"left out", out}, {"hash", hashed}, {"null", nulled}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+": "+strings.Join(p.names, ", "))
		}
	}
	return strings.Join(parts, "; ")
}
