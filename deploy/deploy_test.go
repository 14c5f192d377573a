package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// root is the repository root, seen from this package's directory (where
// go test runs).
const root = ".."

// buildDir holds the binaries built for the tests (see binaries).
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strait-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary is one of strait's binaries, built from this tree, with the
// configuration keys its own loader knows.
type binary struct {
	name string
	path string
	// keys maps every configuration key (as -print-config prints it) to
	// its default value.
	keys map[string]string
}

// testVersion is stamped into the test builds the way the Dockerfile does.
const testVersion = "deploy-test"

var (
	buildOnce sync.Once
	built     map[string]*binary
	buildErr  error
)

// binaries builds the producer and the consumer once (with the Dockerfile's
// CGO_ENABLED=0 and -X main.version) and reads their keys from
// `<binary> run -print-config`: the keys are those of the Config structs
// and of pkg/config's loader, whatever is added to them later.
func binaries(t *testing.T) map[string]*binary {
	t.Helper()
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build the binaries: %w", err)
			return
		}
		built = map[string]*binary{}
		for _, name := range []string{"producer", "consumer"} {
			b := &binary{name: name, path: filepath.Join(buildDir, name)}
			cmd := exec.Command(gobin, "build", "-ldflags", "-X main.version="+testVersion, "-o", b.path, "./"+name)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build ./%s: %v\n%s", name, err, out)
				return
			}
			out, err := b.run(nil, "run", "-print-config")
			if err != nil {
				buildErr = err
				return
			}
			b.keys = map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				k, v, ok := strings.Cut(line, ": ")
				if !ok {
					k, ok = strings.CutSuffix(line, ":")
				}
				if !ok || k == "" {
					buildErr = fmt.Errorf("%s run -print-config: unexpected line %q", name, line)
					return
				}
				b.keys[k] = v
			}
			built[name] = b
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// run runs the binary with args and exactly the environment env (nothing
// is inherited, so no STRAIT_* variable of the test's environment leaks
// in), returning its standard output, or an error with its standard error.
func (b *binary) run(env map[string]string, args ...string) (string, error) {
	cmd := exec.Command(b.path, args...)
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", b.name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// envName is the environment variable of a configuration key, by
// pkg/config's rule (README, "Configuration reference").
func envName(key string) string {
	return "STRAIT_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// envKeys maps the binary's environment variables to their keys;
// STRAIT_CONFIG names the configuration file.
func (b *binary) envKeys() map[string]string {
	m := map[string]string{"STRAIT_CONFIG": ""}
	for k := range b.keys {
		m[envName(k)] = k
	}
	return m
}

// checkEnv reports every STRAIT_* variable of env the binary does not
// know, then loads the configuration from env (and the file cfgFile, when
// not empty) with the binary's own loader, which rejects unknown file keys
// and malformed values.
func (b *binary) checkEnv(env map[string]string, cfgFile string) error {
	var errs []error
	known := b.envKeys()
	for name := range env {
		if _, ok := known[name]; strings.HasPrefix(name, "STRAIT_") && !ok {
			errs = append(errs, fmt.Errorf("%s: no such %s variable (keys: %s)", name, b.name, strings.Join(sortedKeys(b.keys), ", ")))
		}
	}
	args := []string{"run", "-print-config"}
	if cfgFile != "" {
		args = append(args, "-config", cfgFile)
	}
	if _, err := b.run(env, args...); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkConfigFile checks a YAML configuration file's text: every key (as a
// dotted path) is one of the binary's, and the binary loads it with env.
func (b *binary) checkConfigFile(t *testing.T, text string, env map[string]string) error {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return fmt.Errorf("%s config: %w", b.name, err)
	}
	var errs []error
	for _, k := range flatten(doc, "") {
		if _, ok := b.keys[k]; !ok {
			errs = append(errs, fmt.Errorf("%s config: no such key %s", b.name, k))
		}
	}
	path := filepath.Join(t.TempDir(), b.name+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.checkEnv(env, path); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// httpPort is the port of the binary's default http_addr (":9464").
func (b *binary) httpPort(t *testing.T) int {
	t.Helper()
	addr, ok := b.keys["http_addr"]
	if !ok {
		t.Fatalf("%s has no http_addr key", b.name)
	}
	_, port, _ := strings.Cut(addr, ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s: default http_addr %q has no port", b.name, addr)
	}
	return n
}

// flatten returns the dotted paths of the leaves of a YAML mapping.
func flatten(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			out = append(out, flatten(sub, key)...)
			continue
		}
		out = append(out, key)
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// exportedMetrics returns the series names the binaries export: the Name
// of every prometheus.*Opts literal and the name of every
// prometheus.NewDesc and metrics.NewCounters in the Go sources (tests excluded) under pkg/,
// producer/ and consumer/, read now so that metrics added later count.
// Histograms and summaries add their _bucket, _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, dir := range []string{"pkg", "producer", "consumer"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					sel, ok := n.Type.(*ast.SelectorExpr)
					if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
						return true
					}
					for _, e := range n.Elts {
						kv, ok := e.(*ast.KeyValueExpr)
						if id, isID := kv.Key.(*ast.Ident); !ok || !isID || id.Name != "Name" {
							continue
						}
						name := stringLit(kv.Value)
						if !strings.HasPrefix(name, "strait_") {
							continue
						}
						names[name] = true
						switch sel.Sel.Name {
						case "HistogramOpts":
							names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
						case "SummaryOpts":
							names[name+"_sum"], names[name+"_count"] = true, true
						}
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "NewDesc" || sel.Sel.Name == "NewCounters") && len(n.Args) > 0 {
						if name := stringLit(n.Args[0]); strings.HasPrefix(name, "strait_") {
							names[name] = true
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) == 0 {
		t.Fatal("found no strait_ metric in the Go sources")
	}
	return names
}

func stringLit(e ast.Expr) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return ""
	}
	return s
}

var (
	quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	metricRE = regexp.MustCompile(`\bstrait_[a-zA-Z0-9_]+`)
)

// metricNames returns the strait_* names a PromQL expression uses, outside
// quoted strings (label values).
func metricNames(expr string) []string {
	return metricRE.FindAllString(quotedRE.ReplaceAllString(expr, `""`), -1)
}

// checkMetrics reports every strait_* name of expr that is not allowed.
func checkMetrics(where, expr string, allowed map[string]bool) []error {
	var errs []error
	for _, name := range metricNames(expr) {
		if !allowed[name] {
			errs = append(errs, fmt.Errorf("%s: metric %s is not exported by the binaries (expr %q)", where, name, expr))
		}
	}
	return errs
}

// readYAML decodes every document of a YAML file.
func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAML(t, path, data)
}

// decodeYAML decodes every document of YAML text; path names it in errors.
func decodeYAML(t *testing.T, path string, data []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// get walks a decoded YAML/JSON value along keys (map keys, or list
// indexes as decimal strings); nil when a step is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		switch m := v.(type) {
		case map[string]any:
			v = m[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(m) {
				return nil
			}
			v = m[i]
		default:
			return nil
		}
	}
	return v
}

func getString(v any, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

func getList(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

func getMap(v any, keys ...string) map[string]any {
	m, _ := get(v, keys...).(map[string]any)
	return m
}

// TestEveryFileParses parses every YAML and JSON file under deploy/ and the
// root docker-compose.yml.
func TestEveryFileParses(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path == filepath.Join(chart, "templates") {
			// Go templates, not YAML: TestHelmTemplate parses what they render.
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			switch filepath.Ext(path) {
			case ".yml", ".yaml", ".json":
				files = append(files, path)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "docker-compose.yml"))
	if len(files) < 10 {
		t.Fatalf("found only %d YAML/JSON files: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dec := yaml.NewDecoder(bytes.NewReader(data)) // YAML is a superset of JSON
			n := 0
			for ; ; n++ {
				var doc yaml.Node
				if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("document %d: %v", n+1, err)
				}
			}
			if n == 0 {
				t.Fatal("no document")
			}
		})
	}
}

// TestExportedMetricsFound checks the extraction itself on metrics every
// later change keeps: a counter, a labelled gauge and a histogram.
func TestExportedMetricsFound(t *testing.T) {
	got := exportedMetrics(t)
	for _, name := range []string{
		"strait_producer_rows_read_total",
		"strait_consumer_source_timestamp_seconds",
		"strait_producer_commit_seconds_bucket",
		"strait_consumer_append_seconds_count",
	} {
		if !got[name] {
			t.Errorf("%s not found in the Go sources; found %v", name, sortedKeys(got))
		}
	}
	if got["strait_producer_rows_read_total_bucket"] {
		t.Error("a counter got histogram series")
	}
}

// TestBinaryVersionStamped checks that -X main.version (as the Dockerfile
// passes it) reaches both binaries' version command.
func TestBinaryVersionStamped(t *testing.T) {
	for _, b := range binaries(t) {
		out, err := b.run(nil, "version")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, testVersion) {
			t.Errorf("%s version = %q, want it to contain %q", b.name, out, testVersion)
		}
	}
}
