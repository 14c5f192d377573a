package service

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMemoryLimitFromContainer lays out /sys/fs/cgroup as cgroup v2, v1
// and hybrid hosts show it, with and without a container's cgroup
// namespace, and checks the soft limit taken from it: 90% of the
// container's limit, none without a limit or when GOMEMLIMIT is set.
func TestMemoryLimitFromContainer(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		name, env, self string
		files           map[string]string // below the root
		want            int64             // the container's limit; 0: none
	}{
		{name: "v2, namespaced", self: "0::/\n", files: map[string]string{"memory.max": "1073741824\n"}, want: gib},
		{name: "v2, the host's hierarchy", self: "0::/kubepods/pod1/c1\n",
			files: map[string]string{"kubepods/pod1/c1/memory.max": "2147483648\n", "memory.max": "max\n"}, want: 2 * gib},
		{name: "v2, the container's cgroup mounted as the root", self: "0::/kubepods/pod1/c1\n",
			files: map[string]string{"memory.max": "1073741824\n"}, want: gib},
		{name: "v2, no limit", self: "0::/\n", files: map[string]string{"memory.max": "max\n"}},
		{name: "v2, the root cgroup (no memory.max)", self: "0::/\n"},
		{name: "v1", self: "5:devices:/\n4:memory:/docker/abc\n1:cpu,cpuacct:/\n",
			files: map[string]string{"memory/docker/abc/memory.limit_in_bytes": "536870912\n"}, want: gib / 2},
		{name: "v1, namespaced", self: "4:memory:/docker/abc\n",
			files: map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, want: gib / 2},
		{name: "v1, no limit (the page-rounded maximum)", self: "4:memory:/\n",
			files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}},
		{name: "hybrid: memory in v1, a unified line too", self: "4:memory:/process_api/x\n0::/\n",
			files: map[string]string{"memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n", "unified/cgroup.controllers": ""}},
		{name: "GOMEMLIMIT set", env: "700MiB", self: "0::/\n", files: map[string]string{"memory.max": "1073741824\n"}},
		{name: "GOMEMLIMIT off", env: "off", self: "0::/\n", files: map[string]string{"memory.max": "1073741824\n"}},
		{name: "garbage", self: "0::/\n", files: map[string]string{"memory.max": "lots\n"}},
		{name: "no cgroups", self: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for name, text := range c.files {
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			limit, container, ok := memoryLimitFromContainer(c.env, root, c.self)
			if c.want == 0 {
				if ok {
					t.Errorf("limit %d from a container's %d, want none", limit, container)
				}
				return
			}
			if !ok || container != c.want || limit != int64(float64(c.want)*0.9) {
				t.Errorf("limit %d from a container's %d (%v), want 90%% of %d", limit, container, ok, c.want)
			}
		})
	}
}
