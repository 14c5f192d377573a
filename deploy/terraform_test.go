package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// terraform is the configuration in deploy/terraform, parsed: its
// top-level blocks by type.
type terraform struct {
	blocks map[string][]*hclsyntax.Block
}

func readTerraform(t *testing.T) *terraform {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("terraform", "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files: %v", err)
	}
	tf := &terraform{blocks: map[string][]*hclsyntax.Block{}}
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

// TestTerraformReferences checks the configuration is well-formed: pinned
// providers for every resource, variables and outputs described, and every
// var.* and resource reference defined.
func TestTerraformReferences(t *testing.T) {
	tf := readTerraform(t)
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
	variables, resources := map[string]bool{}, map[string]bool{}
	for _, b := range tf.blocks["variable"] {
		variables[b.Labels[0]] = true
		if literal(t, b.Body, "description") == "" {
			t.Errorf("variable %s has no description", b.Labels[0])
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
			for _, tr := range references(b.Body, typ == "variable") {
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
				case slices.Contains([]string{"count", "each", "path", "self", "terraform", "local", "data"}, root):
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
// (type = string) is no reference.
func references(body *hclsyntax.Body, variable bool) []hcl.Traversal {
	var out []hcl.Traversal
	for name, a := range body.Attributes {
		if !(variable && name == "type") {
			out = append(out, a.Expr.Variables()...)
		}
	}
	for _, b := range body.Blocks {
		out = append(out, references(b.Body, false)...)
	}
	return out
}

// TestTerraformLeastPrivilege checks the consumer's service account gets
// roles/bigquery.dataEditor on the dataset and no project-wide role.
func TestTerraformLeastPrivilege(t *testing.T) {
	tf := readTerraform(t)
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

// mysqlOnlyFlags are compose MySQL options that are no parameter group
// setting on RDS: RDS assigns server_id, turns the binlog on with backup
// retention, and sets binlog retention with mysql.rds_set_configuration.
var mysqlOnlyFlags = []string{"server_id", "log_bin", "binlog_expire_logs_seconds"}

// TestRDSParametersMatchCompose checks that the RDS parameter group and
// the compose MySQL's options are the same settings with the same values.
func TestRDSParametersMatchCompose(t *testing.T) {
	tf := readTerraform(t)
	params := map[string]string{}
	for _, b := range tf.blocks["resource"] {
		if b.Labels[0] != "aws_db_parameter_group" {
			continue
		}
		for _, p := range b.Body.Blocks {
			if p.Type == "parameter" {
				params[strings.ReplaceAll(literal(t, p.Body, "name"), "-", "_")] = literal(t, p.Body, "value")
			}
		}
	}
	if len(params) == 0 {
		t.Fatal("no aws_db_parameter_group parameters")
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
