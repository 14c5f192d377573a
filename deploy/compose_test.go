package deploy

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// composeFile is the root docker-compose.yml, decoded.
func composeFile(t *testing.T) map[string]any {
	t.Helper()
	docs := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml: %d documents, want 1", len(docs))
	}
	return docs[0]
}

var interpolationRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$\$`)

// interpolate resolves compose's ${NAME:-default} with an empty
// environment: the default, or "" without one; $$ is a literal $.
func interpolate(s string) string {
	return interpolationRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		return interpolationRE.FindStringSubmatch(m)[2]
	})
}

// composeEnv returns a service's environment (map or list form),
// interpolated.
func composeEnv(t *testing.T, svc map[string]any) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := svc["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			env[k] = interpolate(fmt.Sprint(v))
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			env[k] = interpolate(v)
		}
	case nil:
	default:
		t.Fatalf("environment of type %T", e)
	}
	return env
}

// dependsOn returns a service's depends_on (list or map form): service →
// condition ("service_started" for the list form).
func dependsOn(svc map[string]any) map[string]string {
	out := map[string]string{}
	switch d := svc["depends_on"].(type) {
	case []any:
		for _, s := range d {
			out[fmt.Sprint(s)] = "service_started"
		}
	case map[string]any:
		for s, v := range d {
			cond := getString(v, "condition")
			if cond == "" {
				cond = "service_started"
			}
			out[s] = cond
		}
	}
	return out
}

// TestComposeConfig runs the compose CLI's own validation: `docker compose
// config -q` (or the standalone docker-compose). It needs no Docker engine.
// A missing CLI fails the test: .ci/run installs Debian's docker-compose.
func TestComposeConfig(t *testing.T) {
	var cmd *exec.Cmd
	if path, err := exec.LookPath("docker-compose"); err == nil {
		cmd = exec.Command(path, "-f", "docker-compose.yml", "config", "-q")
	} else if path, err := exec.LookPath("docker"); err == nil && exec.Command(path, "compose", "version").Run() == nil {
		cmd = exec.Command(path, "compose", "-f", "docker-compose.yml", "config", "-q")
	} else {
		t.Fatal("neither docker-compose nor the docker compose plugin is installed (Debian: apt-get install docker-compose; .ci/run does it)")
	}
	cmd.Dir = root
	// Only what the CLI needs: the file's own defaults apply, not the
	// developer's STRAIT_* or other variables.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

func TestComposeReferences(t *testing.T) {
	c := composeFile(t)
	services := getMap(c, "services")
	for _, want := range []string{"mysql", "kafka", "schema-registry", "producer", "consumer", "prometheus", "grafana"} {
		if services[want] == nil {
			t.Errorf("service %s missing", want)
		}
	}
	volumes := getMap(c, "volumes")
	for name, s := range services {
		svc, _ := s.(map[string]any)
		for dep, cond := range dependsOn(svc) {
			target, ok := services[dep].(map[string]any)
			switch {
			case !ok:
				t.Errorf("%s depends on %s: no such service", name, dep)
			case cond == "service_healthy" && target["healthcheck"] == nil:
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			case cond != "service_healthy" && cond != "service_started" && cond != "service_completed_successfully":
				t.Errorf("%s depends on %s with condition %q", name, dep, cond)
			}
		}
		for _, v := range getList(svc, "volumes") {
			src, _, ok := strings.Cut(interpolate(fmt.Sprint(v)), ":")
			switch {
			case !ok:
			case strings.HasPrefix(src, "./"):
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			case !strings.ContainsAny(src, "/~"):
				if _, ok := volumes[src]; !ok {
					t.Errorf("%s mounts volume %s, not declared under volumes", name, src)
				}
			}
		}
		if build := getMap(svc, "build"); build != nil {
			dockerfile := filepath.Join(root, getString(build, "context"), getString(build, "dockerfile"))
			stages, err := dockerfileStages(dockerfile)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if target := getString(build, "target"); !stages[target] {
				t.Errorf("%s builds target %q, not a stage of %s", name, target, dockerfile)
			}
		}
	}
}

// TestComposeBinaries checks the producer and consumer services against
// the binaries: every STRAIT_* variable is one of the binary's keys and
// loads, and the published and scraped ports are its default http_addr.
func TestComposeBinaries(t *testing.T) {
	bins := binaries(t)
	services := getMap(composeFile(t), "services")
	scraped := prometheusTargets(t, filepath.Join("compose", "prometheus.yml"))
	missing := maps.Clone(bins)
	for name, s := range services {
		svc, _ := s.(map[string]any)
		target := getString(svc, "build", "target")
		b := bins[target]
		if b == nil {
			continue
		}
		delete(missing, target)
		t.Run(name, func(t *testing.T) {
			env := composeEnv(t, svc)
			if err := b.checkEnv(env, ""); err != nil {
				t.Error(err)
			}
			port := b.httpPort(t)
			if addr, ok := env["STRAIT_HTTP_ADDR"]; ok && !strings.HasSuffix(addr, ":"+strconv.Itoa(port)) {
				t.Errorf("STRAIT_HTTP_ADDR %q, want the default port %d", addr, port)
			}
			published := false
			for _, p := range getList(svc, "ports") {
				parts := strings.Split(fmt.Sprint(p), ":")
				published = published || parts[len(parts)-1] == strconv.Itoa(port)
			}
			if !published {
				t.Errorf("port %d not published (ports %v)", port, getList(svc, "ports"))
			}
			if want := name + ":" + strconv.Itoa(port); !scraped[want] {
				t.Errorf("Prometheus does not scrape %s (targets %v)", want, sortedKeys(scraped))
			}
		})
	}
	for name := range missing {
		t.Errorf("no compose service builds the %s", name)
	}
}

// prometheusTargets returns the static scrape targets of a Prometheus
// configuration file.
func prometheusTargets(t *testing.T, path string) map[string]bool {
	t.Helper()
	targets := map[string]bool{}
	for _, sc := range getList(readYAML(t, path)[0], "scrape_configs") {
		for _, st := range getList(sc, "static_configs") {
			for _, tg := range getList(st, "targets") {
				targets[fmt.Sprint(tg)] = true
			}
		}
	}
	return targets
}

// composeMySQLFlags returns the mysql service's server options
// (--name=value), names normalized to underscores.
func composeMySQLFlags(t *testing.T) map[string]string {
	t.Helper()
	flags := map[string]string{}
	for _, a := range getList(composeFile(t), "services", "mysql", "command") {
		name, value, ok := strings.Cut(strings.TrimPrefix(fmt.Sprint(a), "--"), "=")
		if !ok {
			t.Fatalf("mysql option %q is not --name=value", a)
		}
		flags[strings.ReplaceAll(name, "-", "_")] = value
	}
	return flags
}

// TestComposeMySQLLikeRDS checks the settings the producer needs (README,
// "Source requirements") on the compose MySQL.
func TestComposeMySQLLikeRDS(t *testing.T) {
	flags := composeMySQLFlags(t)
	for name, want := range map[string]string{
		"log_bin": "", "server_id": "", "binlog_format": "ROW", "binlog_row_image": "FULL",
		"binlog_row_metadata": "FULL", "gtid_mode": "ON", "enforce_gtid_consistency": "ON",
		"net_read_timeout": "3600", "net_write_timeout": "3600", "wait_timeout": "86400",
	} {
		got, ok := flags[name]
		if !ok || (want != "" && !strings.EqualFold(got, want)) {
			t.Errorf("mysql --%s=%q, want %q", name, got, want)
		}
	}
}

// dockerfileStages returns the stage names of a Dockerfile.
func dockerfileStages(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stages := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 4 && strings.EqualFold(fields[0], "FROM") && strings.EqualFold(fields[2], "AS") {
			stages[fields[3]] = true
		}
	}
	return stages, sc.Err()
}
