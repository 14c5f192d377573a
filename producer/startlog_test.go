package main

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The start of `producer run` logs every line as clean JSON: the binlog
// client's configuration (logged by go-mysql when the stream is opened, at
// debug since its chatter is kept out of the default level) included,
// without serialisation errors and without secrets.
func TestStartLogIsCleanJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS startlog"); err != nil {
		t.Fatal(err)
	}
	p := startProducer(t, producerArgs(t, ctx, uniquePrefix("startlog"), "startlog.*", "-log_format", "json", "-log_level", "debug"))
	var binlogConfig map[string]any
	waitFor(t, ctx, "the binlog client's configuration in the log", func() bool {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "create BinlogSyncer" {
				binlogConfig, _ = rec["config"].(map[string]any)
				return true
			}
		}
		return false
	})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	logs := p.logs.String()
	if strings.Contains(logs, "!ERROR") {
		t.Errorf("the start log holds a serialisation error:\n%s", logs)
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Errorf("not a JSON line: %s", sc.Text())
		}
	}
	if binlogConfig["host"] != env.db.Host || binlogConfig["user"] != env.db.User {
		t.Errorf("binlog client configuration logged as %v, want its host %s and user %s", binlogConfig, env.db.Host, env.db.User)
	}
	if _, ok := binlogConfig["password"]; ok {
		t.Errorf("binlog client configuration logged with a password field: %v", binlogConfig)
	}
}
