package deploy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// manifests are Kubernetes objects as applied: the kustomization in
// deploy/k8s, or the Helm chart's rendering (helm_test.go).
type manifests struct {
	// objects by "Kind/name".
	objects map[string]map[string]any
	// external are the objects referred to but made elsewhere, by
	// "Kind/name": the Secrets of the kustomization's generator, the
	// existing Secrets and ConfigMaps the chart's values name.
	external map[string]bool
	// images are the image references the containers may name: the names
	// the kustomization's images block replaces, or the chart's image.
	images map[string]bool
}

func readManifests(t *testing.T) *manifests {
	t.Helper()
	dir := "k8s"
	k := readYAML(t, filepath.Join(dir, "kustomization.yaml"))[0]
	m := &manifests{objects: map[string]map[string]any{}, external: map[string]bool{}, images: map[string]bool{}}
	for _, img := range getList(k, "images") {
		m.images[getString(img, "name")] = true
	}
	listed := map[string]bool{}
	for _, r := range getList(k, "resources") {
		file := fmt.Sprint(r)
		listed[file] = true
		for _, doc := range readYAML(t, filepath.Join(dir, file)) {
			kind, name := getString(doc, "kind"), getString(doc, "metadata", "name")
			if getString(doc, "apiVersion") == "" || kind == "" || name == "" {
				t.Fatalf("%s: an object without apiVersion, kind or metadata.name", file)
			}
			id := kind + "/" + name
			if m.objects[id] != nil {
				t.Errorf("%s: %s defined twice", file, id)
			}
			m.objects[id] = doc
		}
	}
	// Every manifest next to the kustomization is one of its resources.
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !listed[base] {
			t.Errorf("%s is not listed in kustomization.yaml resources", f)
		}
	}
	for _, g := range getList(k, "secretGenerator") {
		m.external["Secret/"+getString(g, "name")] = true
		for _, f := range getList(g, "files") {
			file := fmt.Sprint(f)
			if _, src, ok := strings.Cut(file, "="); ok {
				file = src
			}
			// The file holds a secret and is git-ignored: it must not be
			// committed, and it must be named in deploy/k8s/.gitignore.
			ignore, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
			if err != nil || !strings.Contains("\n"+string(ignore)+"\n", "\n"+file+"\n") {
				t.Errorf("secretGenerator file %s is not in deploy/k8s/.gitignore", file)
			}
		}
	}
	for _, o := range m.objects {
		if o["kind"] == "Secret" {
			t.Errorf("Secret %s in the manifests: secrets come from the secretGenerator's git-ignored files", getString(o, "metadata", "name"))
		}
	}
	return m
}

func (m *manifests) ofKind(kind string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, o := range m.objects {
		if k, name, _ := strings.Cut(id, "/"); k == kind {
			out[name] = o
		}
	}
	return out
}

// matches reports whether every label of selector is in labels.
func matches(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestK8sReferences checks the references between the manifests:
// selectors and labels, ConfigMaps, Secrets, service accounts, images,
// ports, and the HPA and PDB targets.
func TestK8sReferences(t *testing.T) {
	checkReferences(t, readManifests(t))
}

// defined reports whether the object kind/name is one of the manifests or
// made elsewhere.
func (m *manifests) defined(kind, name string) bool {
	return m.objects[kind+"/"+name] != nil || m.external[kind+"/"+name]
}

func checkReferences(t *testing.T, m *manifests) {
	t.Helper()
	deployments := m.ofKind("Deployment")
	if len(deployments) != 2 {
		t.Fatalf("%d Deployments, want the producer's and the consumer's", len(deployments))
	}
	podPorts := map[string]map[string]int{} // deployment → port name → number
	for name, d := range deployments {
		labels := getMap(d, "spec", "template", "metadata", "labels")
		if !matches(getMap(d, "spec", "selector", "matchLabels"), labels) {
			t.Errorf("Deployment %s: selector %v does not match its pod labels %v", name, getMap(d, "spec", "selector", "matchLabels"), labels)
		}
		pod := getMap(d, "spec", "template", "spec")
		if sa := getString(pod, "serviceAccountName"); sa != "" && m.objects["ServiceAccount/"+sa] == nil {
			t.Errorf("Deployment %s: service account %s not defined", name, sa)
		}
		volumes := map[string]map[string]any{}
		for _, v := range getList(pod, "volumes") {
			vol, _ := v.(map[string]any)
			volumes[getString(vol, "name")] = vol
			if cm := getString(vol, "configMap", "name"); cm != "" && !m.defined("ConfigMap", cm) {
				t.Errorf("Deployment %s: ConfigMap %s not defined", name, cm)
			}
			if s := getString(vol, "secret", "secretName"); s != "" && !m.defined("Secret", s) {
				t.Errorf("Deployment %s: Secret %s not defined", name, s)
			}
		}
		podPorts[name] = map[string]int{}
		for _, c := range getList(pod, "containers") {
			if img := getString(c, "image"); !m.images[img] {
				t.Errorf("Deployment %s: image %s, want one of %v", name, img, sortedKeys(m.images))
			}
			for _, p := range getList(c, "ports") {
				n, _ := get(p, "containerPort").(int)
				podPorts[name][getString(p, "name")] = n
			}
			for _, vm := range getList(c, "volumeMounts") {
				if volumes[getString(vm, "name")] == nil {
					t.Errorf("Deployment %s: mount of undefined volume %s", name, getString(vm, "name"))
				}
			}
		}
		if a := getMap(d, "spec", "template", "metadata", "annotations"); a["prometheus.io/scrape"] == "true" {
			port, _ := strconv.Atoi(fmt.Sprint(a["prometheus.io/port"]))
			found := false
			for _, n := range podPorts[name] {
				found = found || n == port
			}
			if !found {
				t.Errorf("Deployment %s: prometheus.io/port %v is no container port", name, a["prometheus.io/port"])
			}
		}
	}
	for name, s := range m.ofKind("Service") {
		var target string
		for d, dep := range deployments {
			if matches(getMap(s, "spec", "selector"), getMap(dep, "spec", "template", "metadata", "labels")) {
				target = d
			}
		}
		if target == "" {
			t.Errorf("Service %s selects no Deployment's pods", name)
			continue
		}
		for _, p := range getList(s, "spec", "ports") {
			tp := get(p, "targetPort")
			if s, ok := tp.(string); ok {
				if _, ok := podPorts[target][s]; !ok {
					t.Errorf("Service %s: targetPort %s is not a port of %s", name, s, target)
				}
			}
		}
	}
	for name, h := range m.ofKind("HorizontalPodAutoscaler") {
		ref := getMap(h, "spec", "scaleTargetRef")
		d := deployments[getString(ref, "name")]
		if getString(ref, "kind") != "Deployment" || d == nil {
			t.Errorf("HorizontalPodAutoscaler %s scales %v, not a Deployment here", name, ref)
			continue
		}
		if get(d, "spec", "replicas") != nil {
			t.Errorf("Deployment %s sets replicas, which fights its HorizontalPodAutoscaler on every apply", getString(ref, "name"))
		}
	}
	for name, p := range m.ofKind("PodDisruptionBudget") {
		found := false
		for _, d := range deployments {
			found = found || matches(getMap(p, "spec", "selector", "matchLabels"), getMap(d, "spec", "template", "metadata", "labels"))
		}
		if !found {
			t.Errorf("PodDisruptionBudget %s selects no Deployment's pods", name)
		}
	}
}

// TestK8sBinaries checks each binary's container against the binary: its
// ConfigMap file and environment load with its own loader, the -config
// file and source.password_file are mounted, the port is its default
// http_addr, and the probes ask /healthz and /readyz on it.
func TestK8sBinaries(t *testing.T) {
	checkBinaries(t, readManifests(t))
}

func checkBinaries(t *testing.T, m *manifests) {
	t.Helper()
	bins := binaries(t)
	seen := map[string]bool{}
	for dname, d := range m.ofKind("Deployment") {
		pod := getMap(d, "spec", "template", "spec")
		volumes := map[string]map[string]any{}
		for _, v := range getList(pod, "volumes") {
			vol, _ := v.(map[string]any)
			volumes[getString(vol, "name")] = vol
		}
		if get(pod, "securityContext", "runAsNonRoot") != true || get(pod, "securityContext", "runAsUser") != 65532 {
			t.Errorf("Deployment %s: pod securityContext %v, want runAsNonRoot and the image's user 65532", dname, getMap(pod, "securityContext"))
		}
		for _, c := range getList(pod, "containers") {
			b := bins[getString(c, "name")]
			if b == nil {
				t.Errorf("Deployment %s: container %s is neither producer nor consumer", dname, getString(c, "name"))
				continue
			}
			seen[b.name] = true
			t.Run(dname, func(t *testing.T) {
				checkContainer(t, m, b, c, volumes)
			})
		}
		if name := getString(d, "metadata", "name"); strings.Contains(name, "producer") {
			if get(d, "spec", "replicas") != 1 || getString(d, "spec", "strategy", "type") != "Recreate" {
				t.Errorf("Deployment %s: want replicas 1 and strategy Recreate", name)
			}
		}
	}
	for name := range bins {
		if !seen[name] {
			t.Errorf("no Deployment runs the %s", name)
		}
	}
}

func checkContainer(t *testing.T, m *manifests, b *binary, c any, volumes map[string]map[string]any) {
	env := map[string]string{}
	for _, e := range getList(c, "env") {
		if v, ok := get(e, "value").(string); ok {
			env[getString(e, "name")] = v
		} else {
			env[getString(e, "name")] = "x" // from a reference: only the name is checked
		}
	}
	// mountedFile returns the content source of the file at p: the volume
	// mounted at its directory and the key that file is.
	mountedFile := func(p string) (map[string]any, string) {
		for _, vm := range getList(c, "volumeMounts") {
			if getString(vm, "mountPath") == path.Dir(p) {
				vol := volumes[getString(vm, "name")]
				key := path.Base(p)
				for _, it := range getList(vol, "secret", "items") {
					if getString(it, "path") == key {
						key = getString(it, "key")
					}
				}
				return vol, key
			}
		}
		return nil, ""
	}
	args := getList(c, "args")
	var cfgPath string
	for i, a := range args {
		if (a == "-config" || a == "--config") && i+1 < len(args) {
			cfgPath = fmt.Sprint(args[i+1])
		}
	}
	if len(args) == 0 || args[0] != "run" || cfgPath == "" {
		t.Fatalf("args %v, want run -config <file>", args)
	}
	vol, key := mountedFile(cfgPath)
	cm := m.objects["ConfigMap/"+getString(vol, "configMap", "name")]
	text := getString(cm, "data", key)
	if text == "" {
		t.Fatalf("-config %s: no ConfigMap key %s mounted there", cfgPath, key)
	}
	if err := b.checkConfigFile(t, text, env); err != nil {
		t.Error(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	if pf := getString(cfg, "source", "password_file"); pf != "" {
		vol, key := mountedFile(pf)
		if s := getString(vol, "secret", "secretName"); s == "" || !m.defined("Secret", s) || key != "password" {
			t.Errorf("source.password_file %s is not the key password of a Secret mounted there", pf)
		}
	}
	port := b.httpPort(t)
	if addr := getString(cfg, "http_addr"); addr != "" && !strings.HasSuffix(addr, ":"+strconv.Itoa(port)) {
		t.Errorf("http_addr %q, want the default port %d", addr, port)
	}
	ports := map[string]int{}
	for _, p := range getList(c, "ports") {
		ports[getString(p, "name")], _ = get(p, "containerPort").(int)
	}
	if ports["http"] != port {
		t.Errorf("container port http = %d, want the default http_addr port %d", ports["http"], port)
	}
	for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := getString(c, probe, "httpGet", "path"); got != want {
			t.Errorf("%s path %q, want %q", probe, got, want)
		}
		switch p := get(c, probe, "httpGet", "port").(type) {
		case string:
			if ports[p] != port {
				t.Errorf("%s port %q is not the container's http port", probe, p)
			}
		case int:
			if p != port {
				t.Errorf("%s port %d, want %d", probe, p, port)
			}
		default:
			t.Errorf("%s has no port", probe)
		}
	}
	for _, r := range []string{"requests", "limits"} {
		if getMap(c, "resources", r) == nil {
			t.Errorf("no resources.%s", r)
		}
	}
	// The images run as the distroless user 65532 and write no file.
	for k, want := range map[string]any{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true} {
		if got := get(c, "securityContext", k); got != want {
			t.Errorf("securityContext.%s = %v, want %v", k, got, want)
		}
	}
	if drop := getList(c, "securityContext", "capabilities", "drop"); len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("securityContext.capabilities.drop = %v, want [ALL]", drop)
	}
}

// TestK8sAutoscalingMetric checks that the consumer's HPA scales on a
// metric the consumer exports, served by the prometheus-adapter rule.
func TestK8sAutoscalingMetric(t *testing.T) {
	checkAutoscalingMetric(t, readManifests(t))
}

func checkAutoscalingMetric(t *testing.T, m *manifests) {
	t.Helper()
	allowed := exportedMetrics(t)
	rules := getList(readYAML(t, filepath.Join("k8s", "prometheus-adapter", "values.yaml"))[0], "rules", "external")
	served := map[string]bool{}
	for i, r := range rules {
		name := getString(r, "name", "as")
		served[name] = true
		for _, q := range []string{getString(r, "seriesQuery"), getString(r, "metricsQuery"), name} {
			for _, err := range checkMetrics(fmt.Sprintf("prometheus-adapter rule %d", i), q, allowed) {
				t.Error(err)
			}
		}
	}
	hpas := m.ofKind("HorizontalPodAutoscaler")
	if len(hpas) == 0 {
		t.Fatal("no HorizontalPodAutoscaler")
	}
	for name, h := range hpas {
		for _, mt := range getList(h, "spec", "metrics") {
			metric := getString(mt, "external", "metric", "name")
			if getString(mt, "type") != "External" || !served[metric] {
				t.Errorf("HorizontalPodAutoscaler %s: metric %v is not an external metric of the adapter rules", name, mt)
			}
			for _, err := range checkMetrics("HorizontalPodAutoscaler "+name, metric, allowed) {
				t.Error(err)
			}
		}
	}
}
