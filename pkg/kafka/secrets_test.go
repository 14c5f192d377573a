package kafka

import (
	"strings"
	"testing"
)

// A Schema Registry URL holding a password is refused by both binaries'
// configurations, without the error echoing the password; a URL with a
// user name alone is accepted.
func TestRegistryURLPassword(t *testing.T) {
	const pass = "Qe4-never-printed-7"
	want := "kafka.schema_registry_url: holds a password"
	var p Config
	p.Defaults()
	p.Brokers, p.TopicPrefix = []string{"b:9092"}, "x"
	var g GroupConfig
	g.Defaults()
	g.Brokers, g.TopicPrefix, g.GroupID = []string{"b:9092"}, "x", "g"
	for _, tc := range []struct {
		url  string
		fail bool
	}{
		{"https://strait:" + pass + "@registry:8081", true},
		{"https://strait@registry:8081", false},
		{"https://registry:8081", false},
	} {
		p.RegistryURL, g.RegistryURL = tc.url, tc.url
		for name, err := range map[string]error{"producer": p.Validate(), "consumer": g.Validate()} {
			got := err != nil && strings.Contains(err.Error(), want)
			if got != tc.fail || (err != nil && strings.Contains(err.Error(), pass)) {
				t.Errorf("%s, URL %s: %v; want a refusal: %v, never the password", name, tc.url, err, tc.fail)
			}
		}
	}
}
