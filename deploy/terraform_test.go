package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// terraformRoots are the root modules under deploy/terraform and the only
// providers each may use: the AWS half and the Google Cloud half are
// applied separately, each with its own credentials.
var terraformRoots = map[string][]string{
	"aws": {"aws"},
	"gcp": {"google"},
}

// terraform is one root module, parsed: its top-level blocks by type.
type terraform struct {
	dir    string
	blocks map[string][]*hclsyntax.Block
}

func readTerraform(t *testing.T, root string) *terraform {
	t.Helper()
	dir := filepath.Join("terraform", root)
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no .tf files: %v", dir, err)
	}
	tf := &terraform{dir: dir, blocks: map[string][]*hclsyntax.Block{}}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			tf.blocks[b.Type] = append(tf.blocks[b.Type], b)
		}
	}
	return tf
}

// literal evaluates an attribute that must be a constant string or number.
func literal(t *testing.T, b *hclsyntax.Body, name string) string {
	t.Helper()
	a := b.Attributes[name]
	if a == nil {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Errorf("%s at %s is not a constant: %s", name, a.SrcRange, diags.Error())
		return ""
	}
	switch v.Type() {
	case cty.String:
		return v.AsString()
	case cty.Number:
		return v.AsBigFloat().Text('f', -1)
	}
	t.Errorf("%s at %s: a %s, want a string or number", name, a.SrcRange, v.Type().FriendlyName())
	return ""
}

// functions are the Terraform functions the tests evaluate, from cty's
// standard library (Terraform's own implementations of the same names).
var functions = map[string]function.Function{
	"merge":       stdlib.MergeFunc,
	"length":      stdlib.LengthFunc,
	"setsubtract": stdlib.SetSubtractFunc,
}

// locals evaluates the root's locals, each once those it refers to are
// known.
func (tf *terraform) locals(t *testing.T) map[string]cty.Value {
	t.Helper()
	exprs := map[string]hclsyntax.Expression{}
	for _, b := range tf.blocks["locals"] {
		for name, a := range b.Body.Attributes {
			exprs[name] = a.Expr
		}
	}
	values := map[string]cty.Value{}
	for len(values) < len(exprs) {
		progress := false
		for name, e := range exprs {
			if _, done := values[name]; done {
				continue
			}
			ready := true
			for _, tr := range e.Variables() {
				if tr.RootName() != "local" {
					t.Fatalf("%s: local.%s refers to %s: only locals are evaluated here", tf.dir, name, tr.RootName())
				}
				_, ok := values[tr[1].(hcl.TraverseAttr).Name]
				ready = ready && ok
			}
			if !ready {
				continue
			}
			v, diags := e.Value(&hcl.EvalContext{Variables: map[string]cty.Value{"local": cty.ObjectVal(values)}, Functions: functions})
			if diags.HasErrors() {
				t.Fatalf("%s: local.%s: %s", tf.dir, name, diags.Error())
			}
			values[name], progress = v, true
		}
		if !progress {
			t.Fatalf("%s: locals refer to undefined locals or to each other in a cycle", tf.dir)
		}
	}
	return values
}

// TestTerraformRoots checks deploy/terraform holds only the two root
// modules, each requiring only its own cloud's provider, so that each
// applies with one cloud's credentials.
func TestTerraformRoots(t *testing.T) {
	entries, err := os.ReadDir("terraform")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := terraformRoots[e.Name()]; !e.IsDir() || !ok {
			t.Errorf("terraform/%s: want only the root modules %v", e.Name(), sortedKeys(terraformRoots))
		}
	}
	for root, want := range terraformRoots {
		tf := readTerraform(t, root)
		var got []string
		for _, b := range tf.blocks["terraform"] {
			for _, rp := range b.Body.Blocks {
				if rp.Type == "required_providers" {
					got = append(got, sortedKeys(rp.Body.Attributes)...)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s requires providers %v, want %v", tf.dir, got, want)
		}
		for _, b := range tf.blocks["provider"] {
			if !slices.Contains(want, b.Labels[0]) {
				t.Errorf("%s configures provider %s", tf.dir, b.Labels[0])
			}
		}
	}
}

// TestTerraformReferences checks each root is well-formed: pinned
// providers for every resource, variables and outputs described, and every
// var.*, local.* and resource reference defined.
func TestTerraformReferences(t *testing.T) {
	for root := range terraformRoots {
		t.Run(root, func(t *testing.T) {
			checkTerraformReferences(t, readTerraform(t, root))
		})
	}
}

func checkTerraformReferences(t *testing.T, tf *terraform) {
	if len(tf.blocks["terraform"]) != 1 {
		t.Fatalf("%d terraform blocks, want 1", len(tf.blocks["terraform"]))
	}
	providers := map[string]bool{}
	for _, b := range tf.blocks["terraform"][0].Body.Blocks {
		if b.Type != "required_providers" {
			continue
		}
		for name, a := range b.Body.Attributes {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() || !v.Type().IsObjectType() || !v.Type().HasAttribute("source") || !v.Type().HasAttribute("version") {
				t.Errorf("required_providers.%s: want { source, version }", name)
				continue
			}
			providers[name] = true
		}
	}
	variables, resources, locals := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, b := range tf.blocks["variable"] {
		variables[b.Labels[0]] = true
		if literal(t, b.Body, "description") == "" {
			t.Errorf("variable %s has no description", b.Labels[0])
		}
	}
	for _, b := range tf.blocks["locals"] {
		for name := range b.Body.Attributes {
			locals[name] = true
		}
	}
	for _, b := range tf.blocks["output"] {
		if literal(t, b.Body, "description") == "" {
			t.Errorf("output %s has no description", b.Labels[0])
		}
	}
	for _, b := range tf.blocks["resource"] {
		resources[b.Labels[0]+"."+b.Labels[1]] = true
		if provider, _, _ := strings.Cut(b.Labels[0], "_"); !providers[provider] {
			t.Errorf("resource %s.%s: provider %s not in required_providers", b.Labels[0], b.Labels[1], provider)
		}
	}
	used := map[string]bool{}
	for typ, blocks := range tf.blocks {
		for _, b := range blocks {
			for _, tr := range references(b.Body, typ == "variable", nil) {
				root := tr.RootName()
				var attr string
				if len(tr) > 1 {
					if a, ok := tr[1].(hcl.TraverseAttr); ok {
						attr = a.Name
					}
				}
				switch {
				case root == "var":
					used[attr] = true
					if !variables[attr] {
						t.Errorf("%s %v: var.%s is not declared", typ, b.Labels, attr)
					}
				case root == "local":
					if !locals[attr] {
						t.Errorf("%s %v: local.%s is not defined", typ, b.Labels, attr)
					}
				case slices.Contains([]string{"count", "each", "path", "self", "terraform", "data"}, root):
				case !resources[root+"."+attr]:
					t.Errorf("%s %v: %s.%s is not a resource here", typ, b.Labels, root, attr)
				}
			}
		}
	}
	for v := range variables {
		if !used[v] {
			t.Errorf("variable %s is never used", v)
		}
	}
}

// references returns the traversals (var.x, type.name.attr) of every
// expression in body and its nested blocks; a variable's type constraint
// (type = string) is no reference, nor is the iterator of an enclosing
// dynamic block (parameter.key in dynamic "parameter").
func references(body *hclsyntax.Body, variable bool, iterators []string) []hcl.Traversal {
	var out []hcl.Traversal
	for name, a := range body.Attributes {
		if variable && name == "type" {
			continue
		}
		for _, tr := range a.Expr.Variables() {
			if !slices.Contains(iterators, tr.RootName()) {
				out = append(out, tr)
			}
		}
	}
	for _, b := range body.Blocks {
		inner := iterators
		if b.Type == "dynamic" && len(b.Labels) == 1 {
			inner = append(slices.Clone(iterators), b.Labels[0])
		}
		out = append(out, references(b.Body, false, inner)...)
	}
	return out
}

// TestTerraformLeastPrivilege checks the consumer's service account gets
// roles/bigquery.dataEditor on the dataset and no project-wide role.
func TestTerraformLeastPrivilege(t *testing.T) {
	tf := readTerraform(t, "gcp")
	datasetRole := false
	for _, b := range tf.blocks["resource"] {
		switch typ := b.Labels[0]; {
		case strings.HasPrefix(typ, "google_project_iam"), strings.HasPrefix(typ, "google_organization_iam"), strings.HasPrefix(typ, "google_folder_iam"):
			t.Errorf("resource %s.%s grants a role beyond the dataset", typ, b.Labels[1])
		case typ == "google_bigquery_dataset_iam_member":
			role := literal(t, b.Body, "role")
			if role != "roles/bigquery.dataEditor" {
				t.Errorf("dataset role %s, want roles/bigquery.dataEditor", role)
			}
			datasetRole = true
		}
	}
	if !datasetRole {
		t.Error("no google_bigquery_dataset_iam_member for the consumer")
	}
}

// rdsParameters returns the parameters of each RDS parameter group family
// of deploy/terraform/aws (local.parameters, evaluated), names normalized
// to underscores, and the names of the static parameters.
func rdsParameters(t *testing.T) (families map[string]map[string]string, static []string) {
	t.Helper()
	locals := readTerraform(t, "aws").locals(t)
	families = map[string]map[string]string{}
	for family, params := range locals["parameters"].AsValueMap() {
		families[family] = map[string]string{}
		for name, v := range params.AsValueMap() {
			families[family][strings.ReplaceAll(name, "-", "_")] = v.AsString()
		}
	}
	for _, v := range locals["static"].AsValueSlice() {
		static = append(static, strings.ReplaceAll(v.AsString(), "-", "_"))
	}
	return families, static
}

// TestRDSParameterGroups checks the settings of every family's parameter
// group (README, "Source requirements"), that the parameter groups are
// made from them, and that var.families accepts exactly those families.
func TestRDSParameterGroups(t *testing.T) {
	families, static := rdsParameters(t)
	want := []string{"mariadb10.11", "mariadb10.5", "mariadb10.6", "mariadb11.4", "mariadb11.8", "mysql8.0", "mysql8.4"}
	if got := sortedKeys(families); !slices.Equal(got, want) {
		t.Errorf("parameter group families %v, want %v (as RDS names them)", got, want)
	}
	for family, params := range families {
		mysql := strings.HasPrefix(family, "mysql")
		expect := map[string]string{
			"binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL",
			"net_read_timeout": "3600", "net_write_timeout": "3600", "wait_timeout": "86400",
		}
		if mysql {
			expect["gtid_mode"], expect["enforce_gtid_consistency"] = "ON", "ON"
		}
		for name, value := range expect {
			if got, ok := params[name]; !ok || !strings.EqualFold(got, value) {
				t.Errorf("%s: %s = %q, want %s", family, name, got, value)
			}
		}
		for name := range params {
			if _, ok := expect[name]; !ok {
				// MariaDB has no gtid_mode: RDS would refuse the group.
				t.Errorf("%s: unexpected parameter %s", family, name)
			}
		}
	}
	for _, name := range []string{"gtid_mode", "enforce_gtid_consistency"} {
		if !slices.Contains(static, name) {
			t.Errorf("%s is static on RDS (pending-reboot), not in local.static %v", name, static)
		}
	}

	tf := readTerraform(t, "aws")
	var groups []*hclsyntax.Block
	for _, b := range tf.blocks["resource"] {
		if b.Labels[0] == "aws_db_parameter_group" {
			groups = append(groups, b)
		}
	}
	if len(groups) != 1 {
		t.Fatalf("%d aws_db_parameter_group resources, want one made for each of var.families", len(groups))
	}
	g := groups[0].Body
	refs := func(name string) string {
		var s []string
		if a := g.Attributes[name]; a != nil {
			for _, tr := range a.Expr.Variables() {
				s = append(s, traversalString(tr))
			}
		}
		return strings.Join(s, " ")
	}
	if got := refs("for_each"); got != "var.families" {
		t.Errorf("aws_db_parameter_group for_each refers to %q, want var.families", got)
	}
	if got := refs("family"); got != "each.key" {
		t.Errorf("aws_db_parameter_group family refers to %q, want each.key", got)
	}
	dynamic := false
	for _, b := range g.Blocks {
		if b.Type == "dynamic" && slices.Equal(b.Labels, []string{"parameter"}) {
			for _, tr := range b.Body.Attributes["for_each"].Expr.Variables() {
				dynamic = dynamic || traversalString(tr) == "local.parameters"
			}
		}
	}
	if !dynamic {
		t.Error(`aws_db_parameter_group: no dynamic "parameter" block over local.parameters[each.key]`)
	}

	accepts := func(families ...string) bool {
		var cond hcl.Expression
		for _, b := range tf.blocks["variable"] {
			if b.Labels[0] == "families" {
				for _, v := range b.Body.Blocks {
					if v.Type == "validation" {
						cond = v.Body.Attributes["condition"].Expr
					}
				}
			}
		}
		if cond == nil {
			t.Fatal("variable families has no validation")
		}
		list := make([]cty.Value, len(families))
		for i, f := range families {
			list[i] = cty.StringVal(f)
		}
		ctx := &hcl.EvalContext{
			Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"families": cty.ListVal(list)})},
			Functions: functions,
		}
		v, diags := cond.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("variable families validation: %s", diags.Error())
		}
		return v.True()
	}
	if !accepts(want...) {
		t.Errorf("var.families refuses some of %v", want)
	}
	// binlog_row_metadata is MySQL 8.0's and MariaDB 10.5's.
	for _, f := range []string{"mysql5.7", "mariadb10.4", "mariadb10.3", "postgres16"} {
		if accepts(f) {
			t.Errorf("var.families accepts %s", f)
		}
	}
}

func traversalString(tr hcl.Traversal) string {
	s := tr.RootName()
	for _, step := range tr[1:] {
		if a, ok := step.(hcl.TraverseAttr); ok {
			s += "." + a.Name
		}
	}
	return s
}

// mysqlOnlyFlags are compose MySQL options that are no parameter group
// setting on RDS: RDS assigns server_id, turns the binlog on with backup
// retention, and sets binlog retention with mysql.rds_set_configuration.
var mysqlOnlyFlags = []string{"server_id", "log_bin", "binlog_expire_logs_seconds"}

// TestRDSParametersMatchCompose checks that the mysql8.0 parameter group
// and the compose MySQL 8.0's options are the same settings with the same
// values.
func TestRDSParametersMatchCompose(t *testing.T) {
	families, _ := rdsParameters(t)
	params := families["mysql8.0"]
	if len(params) == 0 {
		t.Fatal("no mysql8.0 parameters")
	}
	flags := composeMySQLFlags(t)
	for name, value := range params {
		if got, ok := flags[name]; !ok || !strings.EqualFold(got, value) {
			t.Errorf("RDS parameter %s = %s, compose mysql has --%s=%q", name, value, name, got)
		}
	}
	for name, value := range flags {
		if _, ok := params[name]; !ok && !slices.Contains(mysqlOnlyFlags, name) {
			t.Errorf("compose mysql --%s=%s has no RDS parameter", name, value)
		}
	}
}
