package binlog

// filter.go: the SQL condition of an on-demand snapshot (`producer snapshot
// -where`, or a request written straight to <prefix>._signals) is input
// from whoever can write that topic. It was pasted into the chunk query: a
// condition like `1=0) UNION ALL SELECT ... FROM other.secret WHERE (1=1`
// published another table's rows into a captured table's topic, `-- `
// removed the LIMIT, and SLEEP() stalled the replica. Now it is parsed (the
// TiDB SQL parser), must be one boolean expression over the table's own
// columns, literals and an allow-list of pure functions — no subqueries,
// set operations, variables, nor sleeping, locking or file functions — and
// only the parser's rendering of it reaches the server (comments, which the
// parser drops, never do; one that cuts the condition short fails to
// parse).

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Filter is a snapshot condition that passed ParseFilter.
type Filter struct {
	// SQL is the condition as the parser renders it: identifiers quoted,
	// strings single-quoted, no comments. Only this text reaches the
	// server.
	SQL string
	// Columns are the column names it reads.
	Columns []string
}

// ErrFilter is why a snapshot condition is refused.
var ErrFilter = errors.New("snapshot filter refused")

// maxFilterBytes bounds what is parsed.
const maxFilterBytes = 4096

// filterFuncs are the functions a condition may call: pure, cheap, reading
// nothing but their arguments.
var filterFuncs = map[string]bool{
	"abs": true, "ceil": true, "ceiling": true, "floor": true, "round": true, "truncate": true, "mod": true,
	"greatest": true, "least": true, "coalesce": true, "ifnull": true, "nullif": true, "if": true,
	"concat": true, "concat_ws": true, "lower": true, "upper": true, "lcase": true, "ucase": true,
	"length": true, "char_length": true, "character_length": true, "substring": true, "substr": true,
	"left": true, "right": true, "trim": true, "ltrim": true, "rtrim": true, "replace": true, "hex": true,
	"date": true, "year": true, "month": true, "day": true, "dayofmonth": true, "hour": true, "minute": true,
	"second": true, "date_add": true, "date_sub": true, "adddate": true, "subdate": true, "datediff": true,
	"timestampdiff": true, "str_to_date": true, "date_format": true, "from_unixtime": true, "unix_timestamp": true,
	"now": true, "current_timestamp": true, "curdate": true, "current_date": true, "utc_timestamp": true, "utc_date": true,
	"json_extract": true, "json_unquote": true,
}

// ParseFilter checks a snapshot condition and returns it rendered by the
// parser. The error (wrapping ErrFilter) says what is refused.
func ParseFilter(condition string) (*Filter, error) {
	if len(condition) > maxFilterBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFilter, len(condition), maxFilterBytes)
	}
	stmts, _, err := parser.New().ParseSQL("SELECT 1 FROM strait_filter_table WHERE (" + condition + ")")
	if err != nil {
		return nil, fmt.Errorf("%w: not one SQL condition: %v", ErrFilter, err)
	}
	sel, ok := stmts[0].(*ast.SelectStmt)
	if len(stmts) != 1 || !ok || sel.Where == nil || sel.GroupBy != nil || sel.Having != nil || sel.OrderBy != nil ||
		sel.Limit != nil || sel.LockInfo != nil || sel.SelectIntoOpt != nil || sel.With != nil || len(sel.WindowSpecs) > 0 ||
		!onlyPlaceholder(sel.From) {
		return nil, fmt.Errorf("%w: not one SQL condition", ErrFilter)
	}
	v := &filterVisitor{}
	sel.Where.Accept(v)
	if v.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, v.err)
	}
	var b strings.Builder
	if err := sel.Where.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags|format.RestoreStringWithoutCharset, &b)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	slices.Sort(v.columns)
	return &Filter{SQL: b.String(), Columns: slices.Compact(v.columns)}, nil
}

// onlyPlaceholder reports whether from is the placeholder table alone.
func onlyPlaceholder(from *ast.TableRefsClause) bool {
	if from == nil || from.TableRefs == nil || from.TableRefs.Right != nil {
		return false
	}
	src, ok := from.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return false
	}
	name, ok := src.Source.(*ast.TableName)
	return ok && name.Schema.O == "" && name.Name.O == "strait_filter_table"
}

// filterVisitor accepts the nodes of an allowed condition and names the
// first other one.
type filterVisitor struct {
	columns []string
	err     error
}

func (v *filterVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if v.err != nil {
		return n, true
	}
	switch n := n.(type) {
	case *ast.BinaryOperationExpr, *ast.UnaryOperationExpr, *ast.ParenthesesExpr, *ast.BetweenExpr, *ast.IsNullExpr,
		*ast.IsTruthExpr, *ast.PatternLikeOrIlikeExpr, *ast.FuncCastExpr, *ast.TimeUnitExpr, *ast.CaseExpr, *ast.WhenClause,
		*driver.ValueExpr:
	case *ast.PatternInExpr:
		if n.Sel != nil {
			v.err = errors.New("subqueries are not allowed")
		}
	case *ast.ColumnNameExpr:
		if n.Name.Schema.O != "" || n.Name.Table.O != "" {
			v.err = fmt.Errorf("column %s: name columns of the table alone, without a table or database", n.Name.OrigColName())
		} else {
			v.columns = append(v.columns, n.Name.Name.O)
		}
	case *ast.ColumnName:
	case *ast.FuncCallExpr:
		if !filterFuncs[n.FnName.L] {
			v.err = fmt.Errorf("function %s is not allowed (allowed: pure functions of their arguments, e.g. DATE, LOWER, COALESCE, DATE_SUB)", n.FnName.O)
		}
	case *ast.SubqueryExpr, *ast.ExistsSubqueryExpr:
		v.err = errors.New("subqueries are not allowed")
	case *ast.VariableExpr:
		v.err = errors.New("variables are not allowed")
	default:
		v.err = fmt.Errorf("%T is not allowed", n)
	}
	return n, v.err != nil
}

func (v *filterVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, v.err == nil }

// checkColumns reports a column the filter reads that table t does not
// have.
func (f *Filter) checkColumns(names []string) error {
	for _, c := range f.Columns {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, c) }) {
			return fmt.Errorf("%w: the table has no column %s", ErrFilter, c)
		}
	}
	return nil
}

func columnNames(t *cdc.Table) []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}
