package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// CheckCorpus compares a fuzz target's checked-in seed corpus under dir
// (testdata/fuzz/<Target>) with files, the contents the test builds now
// ("go test fuzz v1" files, one per seed, named seed-00, seed-01, ...);
// with update it writes them instead.
func CheckCorpus(t *testing.T, dir string, files []string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range files {
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -run TestFuzzCorpus -update writes it)", err)
		}
		if string(got) != want {
			t.Errorf("%s differs from what the test builds now (go test -run TestFuzzCorpus -update rewrites it)", path)
		}
	}
}
