package testenv

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
)

// CPUProfileEnv names the environment variable that turns on the
// benchmarks' CPU profiles: a path prefix, each profile written to
// <prefix>.<name>.pprof.
const CPUProfileEnv = "STRAIT_BENCH_CPUPROFILE"

// StartCPUProfile starts a CPU profile named name when CPUProfileEnv is
// set, and returns what stops it; without it, or when a profile cannot be
// started, stop does nothing and err says why.
func StartCPUProfile(name string) (stop func(), err error) {
	prefix := os.Getenv(CPUProfileEnv)
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + "." + profileName(name) + ".pprof")
	if err != nil {
		return func() {}, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// HeapProfileEnv names the environment variable that turns on the
// benchmarks' heap profiles: a path prefix, as CPUProfileEnv's.
const HeapProfileEnv = "STRAIT_BENCH_HEAPPROFILE"

// WriteHeapProfile writes, when HeapProfileEnv is set, a heap profile named
// name of what is live after a garbage collection.
func WriteHeapProfile(name string) error {
	prefix := os.Getenv(HeapProfileEnv)
	if prefix == "" {
		return nil
	}
	f, err := os.Create(prefix + "." + profileName(name) + ".pprof")
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// profileName is name as a file name.
func profileName(name string) string { return strings.NewReplacer("=", "", "/", "_").Replace(name) }

// HeapInUse returns the bytes of live heap objects, after a collection:
// the memory tests' measure of what a structure keeps.
func HeapInUse() int64 {
	runtime.GC()
	runtime.GC() // and the cleanups the first one queued
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// HeapUnder is the live heap allocated by calls of a function whose name
// ends with fn, from the heap profile (exact when runtime.MemProfileRate
// is 1).
func HeapUnder(fn string) int64 {
	HeapInUse() // the profile is as of the last collection
	var records []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		records = make([]runtime.MemProfileRecord, n+100)
		var ok bool
		if n, ok = runtime.MemProfile(records, false); ok {
			records = records[:n]
			break
		}
	}
	var sum int64
	for i := range records {
		frames := runtime.CallersFrames(records[i].Stack())
		for {
			f, more := frames.Next()
			if strings.HasSuffix(f.Function, fn) {
				sum += records[i].InUseBytes()
				break
			}
			if !more {
				break
			}
		}
	}
	return sum
}
