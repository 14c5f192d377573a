package schemas

import (
	"encoding/json"
	"testing"

	"github.com/linkedin/goavro/v2"
)

func TestSchemasParse(t *testing.T) {
	value := `{"type":"record","name":"Value","fields":[{"name":"id","type":"int"}]}`
	for name, s := range map[string]string{
		"source":        Source,
		"schema_change": SchemaChange,
		"checkpoint":    Checkpoint,
		"history":       SchemaHistory,
		"snapshot_plan": SnapshotPlan,
		// The envelope parses once its placeholder types are defined.
		"envelope": `[` + Source + `,` + value + `,` + Envelope + `]`,
	} {
		t.Run(name, func(t *testing.T) {
			if !json.Valid([]byte(s)) {
				t.Fatal("not JSON")
			}
			if _, err := goavro.NewCodec(s); err != nil {
				t.Fatal(err)
			}
		})
	}
}
