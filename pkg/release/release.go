// Package release names the strait release both binaries are built from
// and describes the build: the semver Version, kept equal to the newest
// released entry of CHANGELOG.md (a test holds them together), and the
// commit, taken from the stamp `make build` passes (git describe) or else
// from the build information Go records (VCS revision, time, modification;
// the module version for `go install`).
package release

import (
	"regexp"
	"runtime/debug"
	"strings"
	"time"
)

// Version is the release: change it together with CHANGELOG.md.
const Version = "0.1.0"

// Describe is the version line of a binary: Version and the build, e.g.
// "0.1.0 (commit 1e72def, 2026-12-06, modified)". stamp is what the build
// stamped into the binary (make build: `git describe --tags --always
// --dirty`); "" or Version when nothing was stamped.
func Describe(stamp string) string {
	info, _ := debug.ReadBuildInfo()
	return describe(stamp, info)
}

var (
	describeForm = regexp.MustCompile(`^.+-\d+-g([0-9a-f]{4,40})$`)                        // <tag>-<commits since>-g<hash>
	hashForm     = regexp.MustCompile(`^[0-9a-f]{4,40}$`)                                  // --always without a tag
	pseudoForm   = regexp.MustCompile(`^v\d+\.\d+\.\d+-(?:.*\.)?(\d{14})-([0-9a-f]{12})$`) // a module pseudo-version
)

// describe is Describe with the build information given (nil: none).
func describe(stamp string, info *debug.BuildInfo) string {
	var label, commit, date string
	modified := false
	if stamp != "" && stamp != Version {
		s, dirty := strings.CutSuffix(stamp, "-dirty")
		modified = dirty
		switch m := describeForm.FindStringSubmatch(s); {
		case m != nil:
			commit = m[1]
		case hashForm.MatchString(s):
			commit = s
		case s != "v"+Version:
			label = "build " + stamp
		}
	}
	if info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" && label == "" {
					commit = s.Value
				}
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					date = t.UTC().Format(time.DateOnly)
				}
			case "vcs.modified":
				modified = modified || s.Value == "true"
			}
		}
		mv, dirty := strings.CutSuffix(info.Main.Version, "+dirty")
		modified = modified || dirty
		if m := pseudoForm.FindStringSubmatch(mv); m != nil && commit == "" && label == "" {
			commit = m[2]
			if t, err := time.Parse("20060102150405", m[1]); err == nil && date == "" {
				date = t.Format(time.DateOnly)
			}
		} else if commit == "" && label == "" && strings.HasPrefix(mv, "v") {
			label = "module " + mv
		}
	}
	var parts []string
	switch {
	case label != "":
		parts = append(parts, label)
	case commit != "":
		parts = append(parts, "commit "+commit[:min(7, len(commit))])
	default:
		parts = append(parts, "commit unknown")
	}
	if date != "" {
		parts = append(parts, date)
	}
	if modified {
		parts = append(parts, "modified")
	}
	return Version + " (" + strings.Join(parts, ", ") + ")"
}
