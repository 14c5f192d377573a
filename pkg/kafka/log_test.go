package kafka

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka client's INFO lines are strait's DEBUG lines; its warnings and
// errors keep their level.
func TestClientLoggerInfoAtDebug(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		wantLevel kgo.LogLevel // what the client is told to build lines for
		want      string
	}{
		{slog.LevelInfo, kgo.LogLevelWarn, "level=WARN msg=w\nlevel=ERROR msg=e\n"},
		{slog.LevelDebug, kgo.LogLevelDebug, "level=DEBUG msg=d\nlevel=DEBUG msg=i\nlevel=WARN msg=w\nlevel=ERROR msg=e\n"},
		{slog.LevelError, kgo.LogLevelError, "level=ERROR msg=e\n"},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var out bytes.Buffer
			noTime := func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}
			l := clientLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level, ReplaceAttr: noTime})))
			if got := l.Level(); got != tc.wantLevel {
				t.Errorf("Level() = %v, want %v", got, tc.wantLevel)
			}
			for _, m := range []struct {
				level kgo.LogLevel
				msg   string
			}{{kgo.LogLevelDebug, "d"}, {kgo.LogLevelInfo, "i"}, {kgo.LogLevelWarn, "w"}, {kgo.LogLevelError, "e"}} {
				l.Log(m.level, m.msg)
			}
			if diff := cmp.Diff(out.String(), tc.want); diff != "" {
				t.Errorf("log (-got +want):\n%s", diff)
			}
		})
	}
}
