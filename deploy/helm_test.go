package deploy

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// chart is the Helm chart, seen from this package's directory.
const chart = "helm/strait"

// helmModule is the helm that .ci/run installs with go install when none
// is on PATH.
const helmModule = "helm.sh/helm/v4/cmd/helm@v4.3.2"

// helmBinary finds helm on PATH or where go install puts it; a missing
// helm fails the test: the chart is validated by the real tool or not at
// all.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	var dirs []string
	if gobin := goEnv(t, "GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, p := range filepath.SplitList(goEnv(t, "GOPATH")) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "helm")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	t.Fatalf("helm is not on PATH nor in %v: install it with `go install %s` (.ci/run does)", dirs, helmModule)
	return ""
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// runHelm runs helm with args and returns its standard output.
func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	// No user configuration, cache or plugins: what a fresh machine does.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// chartValues are values of a rendering, as --set flags (true is a
// boolean, 2 a number: values.schema.json checks the types).
type chartValues map[string]string

func (v chartValues) flags() []string {
	var out []string
	for _, k := range sortedKeys(v) {
		out = append(out, "--set", k+"="+v[k])
	}
	return out
}

// chartCase is one rendering of the chart: the values set, and what the
// rendering refers to that the chart does not make.
type chartCase struct {
	name    string
	release string
	values  chartValues
	// external are the existing Secrets and ConfigMaps the values name.
	external []string
	// images are the references the containers must name.
	images []string
}

var chartCases = []chartCase{
	{
		name:     "defaults",
		release:  "strait",
		external: []string{"Secret/strait-producer-source"},
		images:   []string{"strait-producer:0.1.0", "strait-consumer:0.1.0"},
	},
	{
		// Everything optional on: the autoscaler (as deploy/k8s), the
		// ServiceMonitors, the RDS CA bundle, more secret files, a
		// registry, another release name.
		name:    "everything",
		release: "prod",
		values: chartValues{
			"image.registry":               "ghcr.io/example/",
			"image.tag":                    "0.1.1",
			"consumer.autoscaling.enabled": "true",
			"serviceMonitor.enabled":       "true",
			"producer.caBundle":            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
			"producer.files.source\\.password_file.existingSecret":             "db",
			"producer.files.source\\.ssh\\.known_hosts_file.existingConfigMap": "bastion",
			"producer.files.source\\.ssh\\.known_hosts_file.key":               "known_hosts",
			"consumer.files.bigquery\\.credentials_file.existingSecret":        "bigquery-key",
			"consumer.files.bigquery\\.credentials_file.key":                   "key.json",
		},
		external: []string{"Secret/db", "ConfigMap/bastion", "Secret/bigquery-key"},
		images:   []string{"ghcr.io/example/strait-producer:0.1.1", "ghcr.io/example/strait-consumer:0.1.1"},
	},
}

// renderChart runs helm template for a case and reads its objects.
func renderChart(t *testing.T, c chartCase) *manifests {
	t.Helper()
	args := append([]string{"template", c.release, chart, "--namespace", "strait"}, c.values.flags()...)
	out := runHelm(t, args...)
	m := &manifests{objects: map[string]map[string]any{}, external: map[string]bool{}, images: map[string]bool{}}
	for _, doc := range decodeYAML(t, "helm template "+c.release, []byte(out)) {
		kind, name := getString(doc, "kind"), getString(doc, "metadata", "name")
		if getString(doc, "apiVersion") == "" || kind == "" || name == "" {
			t.Fatalf("an object without apiVersion, kind or metadata.name: %v", doc)
		}
		if m.objects[kind+"/"+name] != nil {
			t.Errorf("%s/%s rendered twice", kind, name)
		}
		m.objects[kind+"/"+name] = doc
		if kind == "Secret" {
			t.Errorf("the chart renders Secret %s: passwords come from existing Secrets (existingSecret)", name)
		}
	}
	for _, e := range c.external {
		m.external[e] = true
	}
	for _, img := range c.images {
		m.images[img] = true
	}
	return m
}

// TestHelmLint runs helm lint --strict on the chart, with its defaults and
// with every case's values, and checks values.schema.json refuses values
// the chart does not read, naming them.
func TestHelmLint(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			runHelm(t, append([]string{"lint", "--strict", chart}, c.values.flags()...)...)
		})
	}
	for _, bad := range []struct{ set, want string }{
		{"consumer.replica=3", "/consumer/replica"},
		{"consumer.autoscaling.enabled=yes", "/consumer/autoscaling/enabled"},
		{`producer.files.source\.password_file.key=`, "/producer/files/source.password_file"},
		{`consumer.files.bigquery\.credentials.key=k`, "/consumer/files"},
	} {
		cmd := exec.Command(helmBinary(t), "template", "strait", chart, "--set", bad.set)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), bad.want) {
			t.Errorf("helm template --set %s: %v, want an error naming %s\n%s", bad.set, err, bad.want, out)
		}
	}
}

// TestHelmTemplate renders each case with helm template and checks it as
// TestK8sReferences and TestK8sBinaries check deploy/k8s: references,
// images, each binary's configuration loaded by the binary, ports, probes,
// resources, security contexts, the producer's one replica with Recreate.
func TestHelmTemplate(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			m := renderChart(t, c)
			checkReferences(t, m)
			checkBinaries(t, m)
			checkServiceMonitors(t, m)
			if len(m.ofKind("HorizontalPodAutoscaler")) > 0 {
				checkAutoscalingMetric(t, m)
			}
		})
	}
}

// checkServiceMonitors checks each ServiceMonitor selects a Service and
// scrapes /metrics on one of its ports.
func checkServiceMonitors(t *testing.T, m *manifests) {
	t.Helper()
	for name, sm := range m.ofKind("ServiceMonitor") {
		found := false
		for _, s := range m.ofKind("Service") {
			if !matches(getMap(sm, "spec", "selector", "matchLabels"), getMap(s, "metadata", "labels")) {
				continue
			}
			found = true
			ports := map[string]bool{}
			for _, p := range getList(s, "spec", "ports") {
				ports[getString(p, "name")] = true
			}
			for _, e := range getList(sm, "spec", "endpoints") {
				if !ports[getString(e, "port")] || getString(e, "path") != "/metrics" {
					t.Errorf("ServiceMonitor %s: endpoint %v, want /metrics on a port of the Service", name, e)
				}
			}
		}
		if !found {
			t.Errorf("ServiceMonitor %s selects no Service", name)
		}
	}
}

// TestHelmMatchesK8s checks the chart renders what deploy/k8s applies:
// with the autoscaler on (as deploy/k8s has it), the same kinds of
// objects, and per binary the same configuration (but for the paths of
// mounted files), strategy, pod and container settings; and the default
// image tag is the chart's appVersion.
func TestHelmMatchesK8s(t *testing.T) {
	k8s := readManifests(t)
	m := renderChart(t, chartCase{
		release: "strait",
		values: chartValues{
			"consumer.autoscaling.enabled": "true",
			"producer.caBundle":            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
		},
	})
	kinds := func(m *manifests) map[string]int {
		n := map[string]int{}
		for id := range m.objects {
			if kind, _, _ := strings.Cut(id, "/"); kind != "Namespace" {
				n[kind]++
			}
		}
		return n
	}
	if got, want := kinds(m), kinds(k8s); !maps.Equal(got, want) {
		t.Errorf("the chart renders %v, deploy/k8s has %v", got, want)
	}
	for _, name := range []string{"producer", "consumer"} {
		t.Run(name, func(t *testing.T) {
			got, want := m.objects["Deployment/strait-"+name], k8s.objects["Deployment/strait-"+name]
			if got == nil || want == nil {
				t.Fatalf("Deployment strait-%s: chart %v, deploy/k8s %v", name, got != nil, want != nil)
			}
			for _, path := range [][]string{
				{"spec", "replicas"},
				{"spec", "strategy"},
				{"spec", "template", "spec", "securityContext"},
				{"spec", "template", "spec", "terminationGracePeriodSeconds"},
				{"spec", "template", "spec", "automountServiceAccountToken"},
				{"spec", "template", "spec", "containers", "0", "args"},
				{"spec", "template", "spec", "containers", "0", "env"},
				{"spec", "template", "spec", "containers", "0", "ports"},
				{"spec", "template", "spec", "containers", "0", "livenessProbe"},
				{"spec", "template", "spec", "containers", "0", "readinessProbe"},
				{"spec", "template", "spec", "containers", "0", "resources"},
				{"spec", "template", "spec", "containers", "0", "securityContext"},
			} {
				if g, w := get(got, path...), get(want, path...); !reflect.DeepEqual(g, w) {
					t.Errorf("%s: chart %v, deploy/k8s %v", strings.Join(path, "."), g, w)
				}
			}
			for _, k := range []string{"prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path"} {
				g := getString(got, "spec", "template", "metadata", "annotations", k)
				if w := getString(want, "spec", "template", "metadata", "annotations", k); g != w {
					t.Errorf("annotation %s: chart %q, deploy/k8s %q", k, g, w)
				}
			}
			cfg := func(m *manifests) map[string]any {
				text := getString(m.objects["ConfigMap/strait-"+name], "data", name+".yaml")
				var doc map[string]any
				if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
					t.Fatal(err)
				}
				dropFileKeys(doc)
				return doc
			}
			if g, w := cfg(m), cfg(k8s); !reflect.DeepEqual(g, w) {
				t.Errorf("%s.yaml but for file paths:\nchart     %v\ndeploy/k8s %v", name, g, w)
			}
		})
	}
	for _, name := range []string{"HorizontalPodAutoscaler", "PodDisruptionBudget"} {
		g, w := m.objects[name+"/strait-consumer"], k8s.objects[name+"/strait-consumer"]
		for _, k := range []string{"minReplicas", "maxReplicas", "metrics", "behavior", "maxUnavailable"} {
			if !reflect.DeepEqual(get(g, "spec", k), get(w, "spec", k)) {
				t.Errorf("%s spec.%s: chart %v, deploy/k8s %v", name, k, get(g, "spec", k), get(w, "spec", k))
			}
		}
	}
	if a, b := getMap(m.objects["ServiceAccount/strait-consumer"], "metadata", "annotations"), getMap(k8s.objects["ServiceAccount/strait-consumer"], "metadata", "annotations"); !reflect.DeepEqual(a, b) {
		t.Errorf("consumer ServiceAccount annotations: chart %v, deploy/k8s %v", a, b)
	}
}

// dropFileKeys removes the keys naming files (*_file) of a configuration:
// where a file is mounted is the chart's or the manifest's own business.
func dropFileKeys(m map[string]any) {
	for k, v := range m {
		if strings.HasSuffix(k, "_file") {
			delete(m, k)
		} else if sub, ok := v.(map[string]any); ok {
			dropFileKeys(sub)
			if len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}

// TestReleaseVersionsAgree checks the release number is the same wherever
// an image tag is written: the chart's version and appVersion, and the
// tags of deploy/k8s's images block; and that the images there are the
// names make images pushes.
func TestReleaseVersionsAgree(t *testing.T) {
	c := readYAML(t, filepath.Join(chart, "Chart.yaml"))[0]
	version, appVersion := getString(c, "version"), getString(c, "appVersion")
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(appVersion) || version != appVersion {
		t.Errorf("Chart.yaml version %q, appVersion %q: want the same release number x.y.z", version, appVersion)
	}
	k := readYAML(t, filepath.Join("k8s", "kustomization.yaml"))[0]
	for _, img := range getList(k, "images") {
		name := getString(img, "name")
		if tag := getString(img, "newTag"); tag != appVersion {
			t.Errorf("kustomization.yaml image %s: newTag %q, want the release %s", name, tag, appVersion)
		}
		if newName := getString(img, "newName"); !strings.HasSuffix(newName, "/"+name) {
			t.Errorf("kustomization.yaml image %s: newName %q, want <registry>/%s (make images REGISTRY=...)", name, newName, name)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"strait-producer", "strait-consumer"} {
		if !bytes.Contains(makefile, []byte(name)) {
			t.Errorf("the Makefile's images target does not build %s", name)
		}
	}
}

// TestCIInstallsHelm checks .ci/run installs the helm these tests look for.
func TestCIInstallsHelm(t *testing.T) {
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ci, []byte("go install "+helmModule)) {
		t.Errorf(".ci/run does not run go install %s", helmModule)
	}
}

// TestMakeImages checks the one command that builds and pushes the images
// (make -n prints what make images runs): the names and tags the chart and
// deploy/k8s refer to, pushed only with PUSH=1, and never without a
// registry.
func TestMakeImages(t *testing.T) {
	appVersion := getString(readYAML(t, filepath.Join(chart, "Chart.yaml"))[0], "appVersion")
	makeImages := func(args ...string) (string, error) {
		cmd := exec.Command("make", append([]string{"--no-print-directory", "images"}, args...)...)
		cmd.Dir = root
		// Nothing of an enclosing make (make test) or of the environment
		// changes the defaults under test.
		for _, kv := range os.Environ() {
			switch name, _, _ := strings.Cut(kv, "="); name {
			case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VERSION", "REGISTRY", "PUSH":
			default:
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{
			"--target producer --build-arg VERSION=" + appVersion + " -t strait-producer:" + appVersion + " .",
			"--target consumer --build-arg VERSION=" + appVersion + " -t strait-consumer:" + appVersion + " .",
		}},
		{[]string{"REGISTRY=ghcr.io/you/", "VERSION=9.8.7", "PUSH=1"}, []string{
			"-t ghcr.io/you/strait-producer:9.8.7 .",
			"-t ghcr.io/you/strait-consumer:9.8.7 .",
			"docker push ghcr.io/you/strait-producer:9.8.7\n",
			"docker push ghcr.io/you/strait-consumer:9.8.7\n",
		}},
	} {
		out, err := makeImages(append([]string{"-n"}, c.args...)...)
		if err != nil {
			t.Fatalf("make -n images %v: %v\n%s", c.args, err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("make -n images %v runs\n%s\nwant %q in it", c.args, out, w)
			}
		}
		if pushes := strings.Contains(out, "docker push"); pushes != strings.Contains(strings.Join(c.args, " "), "PUSH=1") {
			t.Errorf("make -n images %v: docker push %v\n%s", c.args, pushes, out)
		}
	}
	// Refused before anything is built: Docker Hub's library namespace is
	// no place for them.
	if out, err := makeImages("PUSH=1"); err == nil || !strings.Contains(out, "needs REGISTRY") {
		t.Errorf("make images PUSH=1 without REGISTRY: %v\n%s", err, out)
	}
}
