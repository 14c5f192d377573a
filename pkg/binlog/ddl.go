package binlog

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
)

// ddlScope is what a statement read from the binlog may have changed. The
// reader uses it three ways: to forget the cached schemas of the tables it
// names, to publish only DDL that concerns captured tables, and (without full
// row metadata) to find DDL that lies ahead of a rows event (see table.go).
type ddlScope struct {
	tables []string // "db.table" of each table created, altered, renamed (both names), dropped or truncated
	db     string   // a database created, altered or dropped as a whole
	all    bool     // a statement not recognised: it may have changed any table
	none   bool     // a statement known to change no table (GRANT, CREATE VIEW, ...)
}

// touches reports whether the statement may have changed table db.table.
func (s ddlScope) touches(db, table string) bool {
	if s.all || (s.db != "" && s.db == db) {
		return true
	}
	for _, t := range s.tables {
		if t == db+"."+table {
			return true
		}
	}
	return false
}

// otherObjects are the objects of CREATE/ALTER/DROP statements that change no
// table's columns; otherStatements are statements that change no schema.
var (
	otherObjects = map[string]bool{"USER": true, "ROLE": true, "VIEW": true, "FUNCTION": true, "PROCEDURE": true,
		"TRIGGER": true, "EVENT": true, "SERVER": true, "PACKAGE": true}
	otherStatements = map[string]bool{"GRANT": true, "REVOKE": true, "FLUSH": true, "ANALYZE": true, "OPTIMIZE": true,
		"CHECK": true, "REPAIR": true, "SAVEPOINT": true, "RELEASE": true, "ROLLBACK": true, "XA": true, "SET": true,
		"INSTALL": true, "UNINSTALL": true}
)

// parseDDL recognises the statements that change tables — ALTER, CREATE,
// DROP, RENAME and TRUNCATE TABLE, CREATE and DROP INDEX, CREATE, ALTER and
// DROP DATABASE — and names the tables they touch; unqualified names are in
// database defaultDB. It is not a SQL parser: a form it does not know is
// scoped as "may have changed any table", so a miss costs a schema refresh
// or an extra published statement, never a stale schema.
func parseDDL(q, defaultDB string) ddlScope {
	toks := tokens(q)
	if len(toks) == 0 {
		return ddlScope{none: true}
	}
	verb := strings.ToUpper(toks[0].text)
	if toks[0].word && otherStatements[verb] {
		return ddlScope{none: true}
	}
	// The object keyword comes within the first few words:
	// CREATE OR REPLACE TEMPORARY TABLE, ALTER ONLINE IGNORE TABLE,
	// CREATE DEFINER=`u`@`h` SQL SECURITY INVOKER VIEW, CREATE UNIQUE INDEX.
	var obj string
	i := 1
	for ; i < len(toks) && i < 12 && obj == ""; i++ {
		if !toks[i].word {
			continue
		}
		switch w := strings.ToUpper(toks[i].text); w {
		case "TABLE", "TABLES", "INDEX", "DATABASE", "SCHEMA":
			obj = w
		default:
			if otherObjects[w] {
				return ddlScope{none: true}
			}
		}
	}
	if verb == "TRUNCATE" && obj == "" { // TRUNCATE t
		obj, i = "TABLE", 1
	}
	rest := skipIfExists(toks[min(i, len(toks)):])
	names := func(list []token) []string {
		var out []string
		for _, n := range splitNames(list) {
			out = append(out, qualify(n, defaultDB))
		}
		return out
	}
	switch {
	case obj == "DATABASE" || obj == "SCHEMA":
		if verb == "CREATE" || verb == "ALTER" || verb == "DROP" {
			if n := splitNames(rest); len(n) > 0 && len(n[0]) == 1 {
				return ddlScope{db: n[0][0]}
			}
		}
	case obj == "INDEX" && (verb == "CREATE" || verb == "DROP"):
		for j := range rest {
			if rest[j].word && strings.EqualFold(rest[j].text, "ON") {
				if n := names(rest[j+1:]); len(n) > 0 {
					return ddlScope{tables: n[:1]}
				}
			}
		}
	case obj == "TABLE" || obj == "TABLES":
		switch verb {
		case "CREATE", "TRUNCATE":
			if n := names(rest); len(n) > 0 {
				return ddlScope{tables: n[:1]}
			}
		case "DROP", "RENAME": // lists: a, b / a TO b, c TO d
			if n := names(rest); len(n) > 0 {
				return ddlScope{tables: n}
			}
		case "ALTER":
			n := names(rest)
			if len(n) == 0 {
				break
			}
			s := ddlScope{tables: n[:1]}
			// ALTER TABLE t RENAME [TO|AS] u also touches u.
			for j := 1; j+1 < len(rest); j++ {
				if !rest[j].word || !strings.EqualFold(rest[j].text, "RENAME") {
					continue
				}
				after := rest[j+1:]
				if after[0].word && (strings.EqualFold(after[0].text, "TO") || strings.EqualFold(after[0].text, "AS")) {
					after = after[1:]
				}
				if len(after) > 0 && after[0].word && isKeyword(after[0].text, "COLUMN", "INDEX", "KEY", "CONSTRAINT") {
					continue
				}
				if u := names(after); len(u) > 0 {
					s.tables = append(s.tables, u[0])
				}
			}
			return s
		}
	}
	return ddlScope{all: true}
}

func isKeyword(s string, kws ...string) bool {
	for _, k := range kws {
		if strings.EqualFold(s, k) {
			return true
		}
	}
	return false
}

// skipIfExists drops a leading IF [NOT] EXISTS.
func skipIfExists(t []token) []token {
	for len(t) > 0 && t[0].word && isKeyword(t[0].text, "IF", "NOT", "EXISTS") {
		t = t[1:]
	}
	return t
}

// splitNames reads the table names at the start of t: name [, name]... or
// name TO name [, name TO name]...; each name is its parts (db, table).
func splitNames(t []token) [][]string {
	var out [][]string
	for len(t) > 0 && t[0].ident() {
		parts := []string{t[0].text}
		t = t[1:]
		if len(t) > 1 && t[0].text == "." && t[1].ident() {
			parts = append(parts, t[1].text)
			t = t[2:]
		}
		out = append(out, parts)
		if len(t) > 0 && (t[0].text == "," || (t[0].word && strings.EqualFold(t[0].text, "TO"))) {
			t = t[1:]
			continue
		}
		break
	}
	return out
}

func qualify(parts []string, defaultDB string) string {
	if len(parts) == 2 {
		return parts[0] + "." + parts[1]
	}
	return defaultDB + "." + parts[0]
}

// token is a word (keyword or bare identifier), a `quoted` identifier, a
// string literal or one punctuation character.
type token struct {
	text   string
	word   bool // bare word
	quoted bool // `identifier`
}

func (t token) ident() bool { return t.quoted || t.word }

// tokens splits a statement, dropping comments and whitespace. An executable
// comment (/*! ... */) is kept as one token, so statements hidden in one are
// not recognised (and so treated as changing any table).
func tokens(q string) []token {
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(q[i:], "/*") && !strings.HasPrefix(q[i:], "/*!") && !strings.HasPrefix(q[i:], "/*M!"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return out
			}
			i += end + 4
		case c == '#' || strings.HasPrefix(q[i:], "-- "):
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				return out
			}
			i += end
		case c == '`' || c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				if q[j] == '\\' && c != '`' && j+1 < len(q) {
					j++
				}
				b.WriteByte(q[j])
				j++
			}
			out = append(out, token{text: b.String(), quoted: c == '`'})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			out = append(out, token{text: q[i:j], word: true})
			i = j
		default:
			out = append(out, token{text: q[i : i+1]})
			i++
		}
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// binlogPos is a place in the binlog: a file and an offset in it.
type binlogPos struct {
	file string
	pos  uint64
}

func (p binlogPos) String() string { return fmt.Sprintf("%s:%d", p.file, p.pos) }

// before reports whether p lies before o (files compare by their index).
func (p binlogPos) before(o binlogPos) bool {
	if p.file != o.file {
		return fileIndex(p.file) < fileIndex(o.file)
	}
	return p.pos < o.pos
}

// After reports whether binlog position file:pos lies after of:opos, both
// of one server (files compare by their numeric suffix).
func After(file string, pos uint64, ofile string, opos uint64) bool {
	return binlogPos{ofile, opos}.before(binlogPos{file, pos})
}

// aheadDDL is a statement found ahead of the reader.
type aheadDDL struct {
	at    binlogPos // where the statement ends
	stmt  string
	scope ddlScope
}

// Error makes a DDL ahead the reason a schema cannot be pinned down.
func (d *aheadDDL) Error() string {
	return fmt.Sprintf("%q (ending at %s) changes the table later", d.stmt, d.at)
}

// lookahead is the DDL found by scanning the binlog ahead of the reader, so
// that each stretch of the binlog is scanned once however many tables need
// a schema: the scan reached to; ddl is in binlog order.
type lookahead struct {
	to  binlogPos
	ddl []aheadDDL
}

// find returns the first DDL touching db.table that ends after rows and not
// after head, scanning the binlog up to head first. rows and head are event
// boundaries.
func (l *lookahead) find(conn *client.Conn, db, table string, rows, head binlogPos) (*aheadDDL, error) {
	if l.to.before(rows) { // the reader moved past everything scanned
		l.to, l.ddl = rows, nil
	}
	for len(l.ddl) > 0 && !rows.before(l.ddl[0].at) {
		l.ddl = l.ddl[1:]
	}
	if err := l.scan(conn, head); err != nil {
		return nil, err
	}
	for i := range l.ddl {
		d := &l.ddl[i]
		if head.before(d.at) {
			break
		}
		if d.scope.touches(db, table) {
			return d, nil
		}
	}
	return nil, nil
}

// scan reads the binlog from l.to up to head with SHOW BINLOG EVENTS, a page
// at a time, following rotate events from file to file.
func (l *lookahead) scan(conn *client.Conn, head binlogPos) error {
	const page = 1000
	for l.to.before(head) {
		q := fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d LIMIT %d", strings.ReplaceAll(l.to.file, "'", "''"), l.to.pos, page)
		res, err := conn.Execute(q)
		if err != nil {
			return fmt.Errorf("read the binlog ahead (%s; needs REPLICATION SLAVE / BINLOG MONITOR): %w", q, err)
		}
		n, next := res.RowNumber(), binlogPos{}
		for i := 0; i < n && next.file == "" && l.to.before(head); i++ {
			typ := text(res, i, 2)
			end, _ := res.GetUint(i, 4)
			info := text(res, i, 5)
			switch typ {
			case "Query":
				db, stmt := splitUse(info)
				if s := parseDDL(stmt, db); !s.none {
					l.ddl = append(l.ddl, aheadDDL{at: binlogPos{l.to.file, end}, stmt: stmt, scope: s})
				}
			case "Rotate":
				if name, _, _ := strings.Cut(info, ";"); name != l.to.file {
					next = binlogPos{file: name, pos: 4}
				}
			}
			l.to.pos = end
		}
		res.Close()
		switch {
		case next.file != "":
			l.to = next
		case n < page: // the end of the last file
			return nil
		}
	}
	return nil
}

// splitUse splits SHOW BINLOG EVENTS' "use `db`; statement" into its parts.
func splitUse(info string) (db, stmt string) {
	rest, ok := strings.CutPrefix(info, "use `")
	if !ok {
		return "", info
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] == '`' {
			if i+1 < len(rest) && rest[i+1] == '`' {
				b.WriteByte('`')
				i++
				continue
			}
			return b.String(), strings.TrimSpace(strings.TrimPrefix(rest[i+1:], ";"))
		}
		b.WriteByte(rest[i])
	}
	return "", info
}

// dmlVerbs are the statements that change rows. In a row-based binlog they
// never come as statements: one that does was written by a session whose
// binlog_format was STATEMENT or MIXED, and the rows it changed are not in
// the binlog.
var dmlVerbs = map[string]bool{"INSERT": true, "REPLACE": true, "UPDATE": true, "DELETE": true, "LOAD": true}

// parseDML reports whether q changes rows and, where its form is simple
// enough to tell, the tables it writes ("db.table", unqualified names in
// defaultDB): INSERT/REPLACE [...] [INTO] t, UPDATE [...] t SET, DELETE
// [...] FROM t [WHERE ...], LOAD DATA|XML ... INTO TABLE t. Joins, lists of
// tables and statements led by WITH give no tables: any table may have been
// written.
func parseDML(q, defaultDB string) (dml bool, tables []string) {
	toks := tokens(q)
	if len(toks) == 0 || !toks[0].word {
		return false, nil
	}
	verb := strings.ToUpper(toks[0].text)
	if verb == "WITH" {
		for _, t := range toks {
			if t.word && dmlVerbs[strings.ToUpper(t.text)] {
				return true, nil
			}
		}
		return false, nil
	}
	if !dmlVerbs[verb] {
		return false, nil
	}
	rest := toks[1:]
	skip := func(words ...string) {
		for len(rest) > 0 && rest[0].word && isKeyword(rest[0].text, words...) {
			rest = rest[1:]
		}
	}
	switch verb {
	case "INSERT", "REPLACE":
		skip("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO")
	case "UPDATE":
		skip("LOW_PRIORITY", "IGNORE")
	case "DELETE":
		skip("LOW_PRIORITY", "QUICK", "IGNORE")
		if len(rest) == 0 || !rest[0].word || !strings.EqualFold(rest[0].text, "FROM") {
			return true, nil // DELETE t1, t2 FROM ...
		}
		rest = rest[1:]
	case "LOAD":
		for len(rest) > 1 && !(rest[0].word && strings.EqualFold(rest[0].text, "INTO") && rest[1].word && strings.EqualFold(rest[1].text, "TABLE")) {
			rest = rest[1:]
		}
		if len(rest) < 2 {
			return true, nil
		}
		rest = rest[2:]
	}
	names := splitNames(rest)
	if len(names) != 1 {
		return true, nil
	}
	// UPDATE's and DELETE's table references run to SET, WHERE...: a join
	// or a second table in them (UPDATE a x JOIN b, DELETE FROM a USING b)
	// may write others.
	if verb == "UPDATE" || verb == "DELETE" {
		for _, t := range rest[len(names[0])*2-1:] {
			if t.word && isKeyword(t.text, "SET", "WHERE", "ORDER", "LIMIT", "RETURNING") {
				break
			}
			if t.text == "," || t.word && isKeyword(t.text, "JOIN", "STRAIGHT_JOIN", "USING") {
				return true, nil
			}
		}
	}
	return true, []string{qualify(names[0], defaultDB)}
}

// connectionPassword is the password in a FEDERATED table's connection
// string: CONNECTION='mysql://user:password@host:port/db/table'.
var connectionPassword = regexp.MustCompile(`(?i)(CONNECTION\s*=?\s*['"][a-z0-9+.-]*://[^:'"@/]*:)[^@'"]*(@)`)

// redactDDL replaces the passwords a published DDL statement may carry (a
// FEDERATED table's CONNECTION string) with "***": _schema_changes is read
// by more people than the source's administrators. (Statements that set
// account passwords are never published: see parseDDL.)
func redactDDL(q string) string {
	return connectionPassword.ReplaceAllString(q, "${1}***${2}")
}
