package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Registry credentials configured with an http:// registry draw a warning;
// https, or no credentials, none.
func TestWarnPlainHTTP(t *testing.T) {
	for _, c := range []struct {
		url  string
		auth RegistryAuth
		warn bool
	}{
		{"http://registry:8081", RegistryAuth{Username: "u", Password: "p"}, true},
		{"HTTP://registry:8081", RegistryAuth{Token: "t"}, true},
		{"https://registry:8081", RegistryAuth{Username: "u", Password: "p"}, false},
		{"http://registry:8081", RegistryAuth{}, false},
	} {
		var logs bytes.Buffer
		s := &Security{RegistryAuth: c.auth}
		s.warnPlainHTTP(slog.New(slog.NewTextHandler(&logs, nil)), c.url)
		if got := strings.Contains(logs.String(), "plain http"); got != c.warn {
			t.Errorf("%s with %+v: warned %v, want %v", c.url, c.auth.Username != "" || c.auth.Token != "", got, c.warn)
		}
		if strings.Contains(logs.String(), "p\"") || strings.Contains(logs.String(), "=t ") {
			t.Errorf("the warning shows a secret: %s", logs.String())
		}
	}
}
