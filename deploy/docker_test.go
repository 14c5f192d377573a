package deploy

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dockerStage is one stage of the Dockerfile: its base and instructions.
type dockerStage struct {
	name, base string
	lines      []string // instructions, continuation lines joined
}

func readDockerfile(t *testing.T, path string) []*dockerStage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []*dockerStage
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if strings.EqualFold(f[0], "FROM") {
			s := &dockerStage{base: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if !strings.EqualFold(f[0], "ARG") {
				t.Fatalf("%s: %q before the first FROM", path, line)
			}
			continue
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	return stages
}

// TestDockerfile checks deploy/docker/Dockerfile: a target per binary on a
// small base, static builds of packages that exist, a non-root user, the
// version stamped, the binary's default port exposed, and stage references
// that resolve.
func TestDockerfile(t *testing.T) {
	bins := binaries(t)
	stages := readDockerfile(t, filepath.Join("docker", "Dockerfile"))
	byName := map[string]*dockerStage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	buildRE := regexp.MustCompile(`go build .*?-o (\S+) (\./\S+)`)
	for _, s := range stages {
		for _, line := range s.lines {
			if f := strings.Fields(line); strings.EqualFold(f[0], "COPY") && len(f) > 1 {
				if from, ok := strings.CutPrefix(f[1], "--from="); ok && byName[from] == nil {
					t.Errorf("stage %s copies from %q, no such stage", s.name, from)
				}
			}
			for _, m := range buildRE.FindAllStringSubmatch(line, -1) {
				if _, err := os.Stat(filepath.Join(root, m[2], "main.go")); err != nil {
					t.Errorf("stage %s builds %s: %v", s.name, m[2], err)
				}
				if !strings.Contains(line, "CGO_ENABLED=0") {
					t.Errorf("stage %s builds %s without CGO_ENABLED=0 (not static)", s.name, m[2])
				}
				if !strings.Contains(line, "-X main.version=${VERSION}") {
					t.Errorf("stage %s builds %s without -X main.version=${VERSION}", s.name, m[2])
				}
			}
		}
	}
	for name, b := range bins {
		s := byName[name]
		if s == nil {
			t.Errorf("no stage (target) %q", name)
			continue
		}
		if !strings.HasPrefix(s.base, "gcr.io/distroless/static") && s.base != "scratch" {
			t.Errorf("target %s is based on %s, want distroless/static or scratch", name, s.base)
		}
		var user, expose, entry string
		for _, line := range s.lines {
			f := strings.Fields(line)
			switch strings.ToUpper(f[0]) {
			case "USER":
				user = f[1]
			case "EXPOSE":
				expose = f[1]
			case "ENTRYPOINT":
				entry = line
			}
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
			t.Errorf("target %s runs as %q, want a non-root user", name, user)
		}
		if want := strconv.Itoa(b.httpPort(t)); expose != want {
			t.Errorf("target %s exposes %q, want the default http_addr port %s", name, expose, want)
		}
		if !strings.Contains(entry, "/"+name+`"`) {
			t.Errorf("target %s: entrypoint %q does not run the %s", name, entry, name)
		}
	}
}

// TestDockerignore checks that the build context keeps what the image
// build needs.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	needed := []string{"go.mod", "go.sum", "producer/main.go", "consumer/main.go", "pkg/config/config.go", "schemas/schemas.go", "schemas/envelope.avsc"}
	for _, p := range needed {
		for _, pat := range patterns {
			if ignored(pat, p) {
				t.Errorf(".dockerignore pattern %q excludes %s, which the image build needs", pat, p)
			}
		}
	}
	for _, p := range []string{".git", "bin", "producer/run_test.go"} {
		excluded := false
		for _, pat := range patterns {
			excluded = excluded || ignored(pat, p)
		}
		if !excluded {
			t.Errorf(".dockerignore keeps %s in the build context", p)
		}
	}
}

// ignored reports whether a .dockerignore pattern (no negation) excludes
// file p or one of its parent directories.
func ignored(pattern, p string) bool {
	pattern = strings.TrimPrefix(pattern, "/")
	for dir := p; dir != "." && dir != "/"; dir = path.Dir(dir) {
		if ok, _ := path.Match(pattern, dir); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			if m, _ := path.Match(rest, path.Base(dir)); m {
				return true
			}
		}
	}
	return false
}
