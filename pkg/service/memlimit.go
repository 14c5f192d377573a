package service

// memlimit.go: Go's soft memory limit from the container's, when
// GOMEMLIMIT is not set.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// containerMemoryShare is the share of a container's memory limit that
// becomes Go's soft memory limit: the rest is for what the runtime does
// not count (the binary, the kernel's buffers for its sockets).
const containerMemoryShare = 0.9

// memoryLimitFromContainer returns the soft memory limit to set when
// GOMEMLIMIT is not set (env is its value): containerMemoryShare of the
// memory limit of the cgroup this process runs in, read below root
// (/sys/fs/cgroup) along the paths of selfCgroup (the text of
// /proc/self/cgroup). Without GOMEMLIMIT, Go lets the heap grow to twice
// what is live before it collects, so a consumer whose live heap is over
// half its container's limit is killed by the kernel instead of
// collecting harder. ok is false when GOMEMLIMIT is set (off included) or
// there is no limit.
func memoryLimitFromContainer(env, root, selfCgroup string) (limit, container int64, ok bool) {
	if env != "" {
		return 0, 0, false
	}
	container, ok = cgroupMemoryLimit(root, selfCgroup)
	if !ok {
		return 0, 0, false
	}
	return int64(float64(container) * containerMemoryShare), container, true
}

// cgroupMemoryLimit reads the memory limit of the cgroup of selfCgroup:
// cgroup v2's memory.max (line "0::path"), else v1's
// memory.limit_in_bytes (the line of the memory controller). Each is
// looked for at the cgroup's path and then at the mount's root, which is
// the container's own cgroup when it has a cgroup namespace. "max", and
// v1's page-rounded maximum, are no limit.
func cgroupMemoryLimit(root, selfCgroup string) (int64, bool) {
	var files []string
	for line := range strings.Lines(selfCgroup) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files, filepath.Join(root, parts[2], "memory.max"), filepath.Join(root, "memory.max"))
		case strings.Contains(","+parts[1]+",", ",memory,"):
			files = append(files, filepath.Join(root, "memory", parts[2], "memory.limit_in_bytes"), filepath.Join(root, "memory", "memory.limit_in_bytes"))
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		if v == "max" || err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
