package service

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"testing"
)

// Go's profiles are served under /debug/pprof/ only when asked for: they
// show anyone who reaches the port the code's paths.
func TestProfilesOnlyWhenAsked(t *testing.T) {
	for _, profiles := range []bool{false, true} {
		var log bytes.Buffer
		p, err := Start("127.0.0.1:0", "info", "text", profiles, &log)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(log.String())
		if m == nil {
			p.Close()
			t.Fatalf("no address in the log:\n%s", log.String())
		}
		for path, want := range map[string]int{"/debug/pprof/": http.StatusOK, "/debug/pprof/heap": http.StatusOK, "/healthz": http.StatusOK} {
			if !profiles && path != "/healthz" {
				want = http.StatusNotFound
			}
			resp, err := http.Get("http://" + m[1] + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want || want == http.StatusOK && len(body) == 0 {
				t.Errorf("pprof %v: GET %s answered %d with %d bytes, want %d", profiles, path, resp.StatusCode, len(body), want)
			}
		}
		p.Close()
	}
}
