package binlog

// alter.go: keeping a recorded schema current by applying each ALTER TABLE
// to it. Without full row metadata the schema of a table's rows is the
// schema history's (history.go); after a DDL the reader used to read
// information_schema and prove, by looking ahead in the binlog, that no
// later DDL had changed the table again. Two DDLs of one table with rows
// between them, while the reader is behind, could not be proven, and the
// producer stopped. As Debezium and Canal do, the reader now applies the
// statement itself to the schema in force before it (parsed with the TiDB
// SQL parser go-mysql brings in), so the rows between back-to-back DDLs
// decode with the schema of their moment. A statement it cannot apply
// exactly (an unknown form or type, a character set it cannot tell, a
// table it has no schema of) leaves the old path to run: information_schema
// plus the look-ahead, and the stop with its fix where that cannot prove
// the schema either.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	tmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/types"

	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // the parser's value literals (DEFAULT 0 ...)

	"github.com/strait-cdc/strait/pkg/cdc"
)

// errCannotApply: the statement is not one applyAlter knows how to apply
// exactly; the reader falls back to information_schema.
var errCannotApply = errors.New("cannot apply")

// applyAlter returns s, the schema of db.table before the statement q
// (default database defaultDB), with q applied: ALTER TABLE adding,
// dropping, modifying, changing and renaming columns, adding and dropping
// the primary key, changing the table's default character set; index and
// other specs that change no column are no-ops. mariadb says whose JSON
// (MariaDB's is a LONGTEXT with a character set). Anything else is
// errCannotApply, wrapped with the reason.
func applyAlter(s *cdc.TableSchema, q, defaultDB string, mariadb bool) (*cdc.TableSchema, error) {
	stmts, _, err := parser.New().ParseSQL(q)
	if err != nil {
		return nil, fmt.Errorf("%w: parse: %v", errCannotApply, err)
	}
	if len(stmts) != 1 {
		return nil, fmt.Errorf("%w: %d statements", errCannotApply, len(stmts))
	}
	alter, ok := stmts[0].(*ast.AlterTableStmt)
	if !ok {
		return nil, fmt.Errorf("%w: not ALTER TABLE", errCannotApply)
	}
	db := alter.Table.Schema.O
	if db == "" {
		db = defaultDB
	}
	if db != s.Database || alter.Table.Name.O != s.Table {
		return nil, fmt.Errorf("%w: ALTER of %s.%s, not %s", errCannotApply, db, alter.Table.Name.O, s.ID())
	}
	out := *s
	out.Columns = slices.Clone(s.Columns)
	out.PrimaryKey = slices.Clone(s.PrimaryKey)
	// The specs of one ALTER all name the columns as they were before it
	// (CHANGE a b, CHANGE b a swaps them); applied one after the other
	// they would not, so a statement whose specs name a column another
	// spec renames is not applied.
	named := map[string]int{}
	for _, spec := range alter.Specs {
		for _, n := range specColumns(spec) {
			named[strings.ToLower(n)]++
		}
	}
	for _, spec := range alter.Specs {
		if old, renamed := renames(spec); renamed && (named[strings.ToLower(old.from)] > 1 || named[strings.ToLower(old.to)] > 1 ||
			!strings.EqualFold(old.from, old.to) && s.Column(old.to) >= 0) {
			return nil, fmt.Errorf("%w: %s renames a column another spec or column names", errCannotApply, old.from)
		}
	}
	for _, spec := range alter.Specs {
		if err := applySpec(&out, spec, mariadb); err != nil {
			return nil, err
		}
	}
	return &out, nil
}

func applySpec(s *cdc.TableSchema, spec *ast.AlterTableSpec, mariadb bool) error {
	switch spec.Tp {
	case ast.AlterTableAddColumns:
		pos := spec.Position
		for _, def := range spec.NewColumns {
			if s.Column(def.Name.Name.O) >= 0 {
				if spec.IfNotExists {
					continue
				}
				return fmt.Errorf("%w: column %s exists", errCannotApply, def.Name.Name.O)
			}
			c, pk, err := schemaColumn(s, def, mariadb)
			if err != nil {
				return err
			}
			at, err := position(s, pos)
			if err != nil {
				return err
			}
			s.Columns = slices.Insert(s.Columns, at, c)
			if pk {
				s.PrimaryKey = []string{c.Name}
			}
			// ADD COLUMN (a, b): each after the one before.
			pos = &ast.ColumnPosition{Tp: ast.ColumnPositionAfter, RelativeColumn: def.Name}
		}
		if len(spec.NewConstraints) > 0 {
			return fmt.Errorf("%w: constraints in ADD COLUMN", errCannotApply)
		}
	case ast.AlterTableDropColumn:
		i := s.Column(spec.OldColumnName.Name.O)
		if i < 0 {
			if spec.IfExists {
				return nil
			}
			return fmt.Errorf("%w: no column %s", errCannotApply, spec.OldColumnName.Name.O)
		}
		name := s.Columns[i].Name
		s.Columns = slices.Delete(s.Columns, i, i+1)
		// Dropping a key column takes it out of the key (MariaDB); a key
		// left empty is no key.
		s.PrimaryKey = slices.DeleteFunc(s.PrimaryKey, func(k string) bool { return strings.EqualFold(k, name) })
	case ast.AlterTableModifyColumn, ast.AlterTableChangeColumn:
		old := spec.NewColumns[0].Name.Name.O
		if spec.Tp == ast.AlterTableChangeColumn {
			old = spec.OldColumnName.Name.O
		}
		i := s.Column(old)
		if i < 0 {
			return fmt.Errorf("%w: no column %s", errCannotApply, old)
		}
		c, pk, err := schemaColumn(s, spec.NewColumns[0], mariadb)
		if err != nil {
			return err
		}
		if pk {
			return fmt.Errorf("%w: PRIMARY KEY in a column change", errCannotApply)
		}
		oldName := s.Columns[i].Name
		if inKey := slices.ContainsFunc(s.PrimaryKey, func(k string) bool { return strings.EqualFold(k, oldName) }); inKey {
			c.Nullable = false
			for j, k := range s.PrimaryKey {
				if strings.EqualFold(k, oldName) {
					s.PrimaryKey[j] = c.Name
				}
			}
		}
		s.Columns = slices.Delete(s.Columns, i, i+1)
		at := i
		if spec.Position != nil && spec.Position.Tp != ast.ColumnPositionNone {
			if at, err = position(s, spec.Position); err != nil {
				return err
			}
		}
		s.Columns = slices.Insert(s.Columns, at, c)
	case ast.AlterTableRenameColumn:
		i := s.Column(spec.OldColumnName.Name.O)
		if i < 0 || s.Column(spec.NewColumnName.Name.O) >= 0 && !strings.EqualFold(spec.OldColumnName.Name.O, spec.NewColumnName.Name.O) {
			return fmt.Errorf("%w: rename %s to %s", errCannotApply, spec.OldColumnName.Name.O, spec.NewColumnName.Name.O)
		}
		for j, k := range s.PrimaryKey {
			if strings.EqualFold(k, s.Columns[i].Name) {
				s.PrimaryKey[j] = spec.NewColumnName.Name.O
			}
		}
		s.Columns[i].Name = spec.NewColumnName.Name.O
	case ast.AlterTableAddConstraint:
		switch spec.Constraint.Tp {
		case ast.ConstraintPrimaryKey:
			if len(s.PrimaryKey) > 0 {
				return fmt.Errorf("%w: a second primary key", errCannotApply)
			}
			for _, k := range spec.Constraint.Keys {
				if k.Column == nil || k.Length > 0 {
					return fmt.Errorf("%w: a primary key on an expression or a prefix", errCannotApply)
				}
				i := s.Column(k.Column.Name.O)
				if i < 0 {
					return fmt.Errorf("%w: no column %s", errCannotApply, k.Column.Name.O)
				}
				s.Columns[i].Nullable = false
				s.PrimaryKey = append(s.PrimaryKey, s.Columns[i].Name)
			}
		case ast.ConstraintIndex, ast.ConstraintKey, ast.ConstraintUniq, ast.ConstraintUniqKey, ast.ConstraintUniqIndex,
			ast.ConstraintFulltext, ast.ConstraintForeignKey, ast.ConstraintCheck:
			// No column changes.
		default:
			return fmt.Errorf("%w: constraint %v", errCannotApply, spec.Constraint.Tp)
		}
	case ast.AlterTableDropPrimaryKey:
		s.PrimaryKey = nil
	case ast.AlterTableOption:
		for _, o := range spec.Options {
			switch o.Tp {
			case ast.TableOptionCharset:
				if o.UintValue == ast.TableOptionCharsetWithConvertTo {
					return fmt.Errorf("%w: CONVERT TO CHARACTER SET changes every text column", errCannotApply)
				}
				s.DefaultCharset = strings.ToLower(o.StrValue)
			case ast.TableOptionCollate:
				s.DefaultCharset = charsetOfCollation(o.StrValue)
			case ast.TableOptionEngine, ast.TableOptionComment, ast.TableOptionAutoIncrement, ast.TableOptionRowFormat,
				ast.TableOptionKeyBlockSize, ast.TableOptionStatsPersistent, ast.TableOptionAvgRowLength,
				ast.TableOptionMaxRows, ast.TableOptionMinRows, ast.TableOptionPackKeys, ast.TableOptionCheckSum,
				ast.TableOptionDelayKeyWrite, ast.TableOptionCompression:
			default:
				return fmt.Errorf("%w: table option %v", errCannotApply, o.Tp)
			}
		}
	case ast.AlterTableDropIndex, ast.AlterTableDropForeignKey, ast.AlterTableRenameIndex, ast.AlterTableAlterColumn,
		ast.AlterTableLock, ast.AlterTableAlgorithm, ast.AlterTableForce, ast.AlterTableIndexInvisible,
		ast.AlterTableEnableKeys, ast.AlterTableDisableKeys, ast.AlterTableDropCheck, ast.AlterTableAlterCheck:
		// No column changes.
	default:
		return fmt.Errorf("%w: ALTER TABLE spec %v", errCannotApply, spec.Tp)
	}
	return nil
}

// rename is a column name change by one ALTER TABLE spec.
type rename struct{ from, to string }

// renames returns the rename spec makes, if any.
func renames(spec *ast.AlterTableSpec) (rename, bool) {
	switch spec.Tp {
	case ast.AlterTableChangeColumn:
		return rename{spec.OldColumnName.Name.O, spec.NewColumns[0].Name.Name.O}, true
	case ast.AlterTableRenameColumn:
		return rename{spec.OldColumnName.Name.O, spec.NewColumnName.Name.O}, true
	}
	return rename{}, false
}

// specColumns returns the column names a spec names: those it defines,
// changes, drops, renames or places a column after.
func specColumns(spec *ast.AlterTableSpec) []string {
	var out []string
	for _, c := range spec.NewColumns {
		out = append(out, c.Name.Name.O)
	}
	for _, c := range []*ast.ColumnName{spec.OldColumnName, spec.NewColumnName} {
		if c != nil {
			out = append(out, c.Name.O)
		}
	}
	if spec.Position != nil && spec.Position.RelativeColumn != nil {
		out = append(out, spec.Position.RelativeColumn.Name.O)
	}
	if spec.Constraint != nil {
		for _, k := range spec.Constraint.Keys {
			if k.Column != nil {
				out = append(out, k.Column.Name.O)
			}
		}
	}
	return slices.Compact(out)
}

// position is where a column goes: first, after a column, or last.
func position(s *cdc.TableSchema, p *ast.ColumnPosition) (int, error) {
	if p == nil {
		return len(s.Columns), nil
	}
	switch p.Tp {
	case ast.ColumnPositionFirst:
		return 0, nil
	case ast.ColumnPositionAfter:
		i := s.Column(p.RelativeColumn.Name.O)
		if i < 0 {
			return 0, fmt.Errorf("%w: no column %s", errCannotApply, p.RelativeColumn.Name.O)
		}
		return i + 1, nil
	}
	return len(s.Columns), nil
}

// charsetOfCollation is the character set a collation belongs to: its name
// up to the first underscore (utf8mb4_general_ci, latin1_swedish_ci);
// "binary" is its own.
func charsetOfCollation(c string) string {
	c = strings.ToLower(c)
	if cs, _, ok := strings.Cut(c, "_"); ok {
		return cs
	}
	return c
}

// schemaColumn describes a column definition as information_schema does
// (COLUMN_TYPE, DATA_TYPE, IS_NULLABLE, CHARACTER_SET_NAME), and reports a
// PRIMARY KEY option. A text column without a character set of its own
// takes the table's default, which must be known.
func schemaColumn(s *cdc.TableSchema, def *ast.ColumnDef, mariadb bool) (cdc.SchemaColumn, bool, error) {
	c := cdc.SchemaColumn{Name: def.Name.Name.O, Nullable: true}
	pk := false
	collate := ""
	for _, o := range def.Options {
		switch o.Tp {
		case ast.ColumnOptionNotNull:
			c.Nullable = false
		case ast.ColumnOptionNull:
			c.Nullable = true
		case ast.ColumnOptionPrimaryKey:
			pk, c.Nullable = true, false
		case ast.ColumnOptionCollate:
			collate = o.StrValue
		}
	}
	ft := def.Tp
	if ft == nil {
		return c, false, fmt.Errorf("%w: column %s has no type", errCannotApply, c.Name)
	}
	dataType, colType, text, err := sqlType(ft, mariadb)
	if err != nil {
		return c, false, fmt.Errorf("column %s: %w", c.Name, err)
	}
	c.DataType, c.ColumnType = dataType, colType
	if text {
		switch {
		case ft.GetCharset() != "" && ft.GetCharset() != "binary":
			c.Charset = strings.ToLower(ft.GetCharset())
		case collate != "":
			c.Charset = charsetOfCollation(collate)
		case ft.GetCollate() != "" && ft.GetCollate() != "binary":
			c.Charset = charsetOfCollation(ft.GetCollate())
		case dataType == "json" && mariadb:
			c.Charset = "utf8mb4" // MariaDB's JSON is LONGTEXT CHARACTER SET utf8mb4
		case s.DefaultCharset != "":
			c.Charset = s.DefaultCharset
		default:
			return c, false, fmt.Errorf("%w: column %s: the table's default character set is not known", errCannotApply, c.Name)
		}
	}
	return c, pk, nil
}

// sqlType returns a column type's DATA_TYPE and COLUMN_TYPE as MariaDB and
// MySQL 8 show them, and whether it is text (has a character set). Types the
// parser does not know (MariaDB's UUID, INET6, spatial types) never get
// here: the statement does not parse.
func sqlType(ft *types.FieldType, mariadb bool) (dataType, colType string, text bool, err error) {
	flen, dec := ft.GetFlen(), ft.GetDecimal()
	unsigned := tmysql.HasUnsignedFlag(ft.GetFlag())
	binary := ft.GetCharset() == "binary" || tmysql.HasBinaryFlag(ft.GetFlag()) && ft.GetCharset() == ""
	width := func(def, defUnsigned int) string {
		if flen == types.UnspecifiedLength {
			flen = def
			if unsigned {
				flen = defUnsigned
			}
		}
		if !mariadb && flen >= 0 && ft.GetType() != tmysql.TypeTiny { // MySQL 8 shows no display width
			return ""
		}
		return "(" + strconv.Itoa(flen) + ")"
	}
	suffix := func(s string) string {
		if unsigned {
			s += " unsigned"
		}
		if tmysql.HasZerofillFlag(ft.GetFlag()) {
			s += " zerofill"
		}
		return s
	}
	frac := func(base string) string {
		if dec > 0 {
			return base + "(" + strconv.Itoa(dec) + ")"
		}
		return base
	}
	switch ft.GetType() {
	case tmysql.TypeTiny:
		return "tinyint", suffix("tinyint" + width(4, 3)), false, nil
	case tmysql.TypeShort:
		return "smallint", suffix("smallint" + width(6, 5)), false, nil
	case tmysql.TypeInt24:
		return "mediumint", suffix("mediumint" + width(9, 8)), false, nil
	case tmysql.TypeLong:
		return "int", suffix("int" + width(11, 10)), false, nil
	case tmysql.TypeLonglong:
		return "bigint", suffix("bigint" + width(20, 20)), false, nil
	case tmysql.TypeNewDecimal:
		if flen == types.UnspecifiedLength {
			flen = 10
		}
		if dec == types.UnspecifiedLength {
			dec = 0
		}
		return "decimal", suffix(fmt.Sprintf("decimal(%d,%d)", flen, dec)), false, nil
	case tmysql.TypeFloat, tmysql.TypeDouble:
		base := "float"
		if ft.GetType() == tmysql.TypeDouble {
			base = "double"
		}
		if flen != types.UnspecifiedLength && dec != types.UnspecifiedLength {
			return base, suffix(fmt.Sprintf("%s(%d,%d)", base, flen, dec)), false, nil
		}
		return base, suffix(base), false, nil
	case tmysql.TypeBit:
		if flen == types.UnspecifiedLength {
			flen = 1
		}
		return "bit", fmt.Sprintf("bit(%d)", flen), false, nil
	case tmysql.TypeYear:
		if mariadb {
			return "year", "year(4)", false, nil
		}
		return "year", "year", false, nil
	case tmysql.TypeDate:
		return "date", "date", false, nil
	case tmysql.TypeDuration:
		return "time", frac("time"), false, nil
	case tmysql.TypeDatetime:
		return "datetime", frac("datetime"), false, nil
	case tmysql.TypeTimestamp:
		return "timestamp", frac("timestamp"), false, nil
	case tmysql.TypeString, tmysql.TypeVarchar:
		base := map[bool]string{false: "char", true: "binary"}[binary]
		if ft.GetType() == tmysql.TypeVarchar {
			base = "var" + base
		}
		if flen == types.UnspecifiedLength {
			if base == "varchar" || base == "varbinary" {
				return "", "", false, fmt.Errorf("%w: %s without a length", errCannotApply, base)
			}
			flen = 1
		}
		return base, fmt.Sprintf("%s(%d)", base, flen), !binary, nil
	case tmysql.TypeTinyBlob, tmysql.TypeBlob, tmysql.TypeMediumBlob, tmysql.TypeLongBlob:
		if flen != types.UnspecifiedLength && ft.GetType() == tmysql.TypeBlob {
			return "", "", false, fmt.Errorf("%w: TEXT(n)/BLOB(n) picks its type by n and the character set", errCannotApply)
		}
		size := map[byte]string{tmysql.TypeTinyBlob: "tiny", tmysql.TypeBlob: "", tmysql.TypeMediumBlob: "medium", tmysql.TypeLongBlob: "long"}[ft.GetType()]
		base := size + "text"
		if binary {
			base = size + "blob"
		}
		return base, base, !binary, nil
	case tmysql.TypeEnum, tmysql.TypeSet:
		base := "enum"
		if ft.GetType() == tmysql.TypeSet {
			base = "set"
		}
		var quoted []string
		for _, e := range ft.GetElems() {
			quoted = append(quoted, "'"+strings.ReplaceAll(e, "'", "''")+"'")
		}
		return base, base + "(" + strings.Join(quoted, ",") + ")", true, nil
	case tmysql.TypeJSON:
		if mariadb {
			return "json", "longtext", true, nil // see kindOf
		}
		return "json", "json", false, nil
	}
	return "", "", false, fmt.Errorf("%w: column type %v", errCannotApply, ft)
}
