package release

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// The release in the code is the newest released entry of CHANGELOG.md.
func TestVersionIsTheChangelogsNewestRelease(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\]`).FindSubmatch(b)
	if m == nil {
		t.Fatal("CHANGELOG.md has no released entry (## [x.y.z] - date)")
	}
	if got := string(m[1]); got != Version {
		t.Errorf("CHANGELOG.md's newest release is %s, release.Version is %s: change both together", got, Version)
	}
}

func TestDescribe(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	git := vcs("vcs", "git", "vcs.revision", "1e72def0123456789abcdef0123456789abcdef0", "vcs.time", "2026-12-06T20:58:01Z", "vcs.modified", "true")
	for _, tc := range []struct {
		name, stamp string
		info        *debug.BuildInfo
		want        string
	}{
		{"make build, commits after the tag", "v0.1.0-3-g1e72def-dirty", &debug.BuildInfo{Settings: git}, "0.1.0 (commit 1e72def, 2026-12-06, modified)"},
		{"make build, no tag yet", "1e72def", nil, "0.1.0 (commit 1e72def)"},
		{"make build, on the tag", "v0.1.0", &debug.BuildInfo{Settings: vcs("vcs.revision", "1e72def0123456789", "vcs.time", "2026-12-06T20:58:01Z", "vcs.modified", "false")}, "0.1.0 (commit 1e72def, 2026-12-06)"},
		{"other stamp", "deploy-test", nil, "0.1.0 (build deploy-test)"},
		{"go build in a clone", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: git}, "0.1.0 (commit 1e72def, 2026-12-06, modified)"},
		{"go install of a commit", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.1.1-0.20261206205801-1e72def01234"}}, "0.1.0 (commit 1e72def, 2026-12-06)"},
		{"go install of a tag", Version, &debug.BuildInfo{Main: debug.Module{Version: "v" + Version}}, "0.1.0 (module v0.1.0)"},
		{"nothing known", "", nil, "0.1.0 (commit unknown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(tc.stamp, tc.info); got != tc.want {
				t.Errorf("describe(%q) = %q, want %q", tc.stamp, got, tc.want)
			}
		})
	}
}

// Both binaries print the same line, stamped as make build stamps them and
// from the build information of a plain go build.
func TestBinariesPrintVersion(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	head := ""
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short=7", "HEAD").Output(); err == nil {
		head = strings.TrimSpace(string(out))
	}
	for _, name := range []string{"producer", "consumer"} {
		for _, stamp := range []string{"v0.1.0-3-g1e72def-dirty", ""} {
			bin := filepath.Join(t.TempDir(), name)
			// -buildvcs=auto: records the commit where git is at hand
			// (as go build does by default) even under GOFLAGS=-buildvcs=false.
			args := []string{"build", "-buildvcs=auto", "-o", bin}
			if stamp != "" {
				args = append(args, "-ldflags", "-X main.version="+stamp)
			}
			build := exec.Command("go", append(args, "./"+name)...)
			build.Dir = root
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", name, err, out)
			}
			out, err := exec.Command(bin, "version").Output()
			if err != nil {
				t.Fatalf("%s version: %v", name, err)
			}
			got := strings.TrimSpace(string(out))
			want := `^strait ` + name + ` 0\.1\.0 \(commit 1e72def(, \d{4}-\d\d-\d\d)?, modified\)$`
			if stamp == "" {
				// Go records the commit only in a git checkout it
				// recognises (not in a git worktree, whose .git is a file).
				want = `^strait ` + name + ` 0\.1\.0 \((commit unknown|commit ` + head + `, \d{4}-\d\d-\d\d(, modified)?)\)$`
			}
			if !regexp.MustCompile(want).MatchString(got) {
				t.Errorf("%s version (stamp %q) = %q, want it to match %s", name, stamp, got, want)
			}
		}
	}
}
