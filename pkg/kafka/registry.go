package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

// Registry registers Avro schemas and remembers their ids.
type Registry struct {
	client *sr.Client
	ids    map[string]int // subject + "\x00" + schema → id
}

// NewRegistry returns a client of the Schema Registry at url.
func NewRegistry(url string, opts ...sr.ClientOpt) (*Registry, error) {
	c, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(url)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", url, err)
	}
	return &Registry{client: c, ids: map[string]int{}}, nil
}

// Register registers schema under subject (a no-op when already
// registered) and returns its id. A schema the registry refuses (e.g.
// incompatible with the subject's previous version) is an error naming the
// subject and the fix.
func (r *Registry) Register(ctx context.Context, subject, schema string) (int, error) {
	k := subject + "\x00" + schema
	if id, ok := r.ids[k]; ok {
		return id, nil
	}
	s, err := r.client.CreateSchema(ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		return 0, fmt.Errorf("register schema for subject %s: %w (if the change is incompatible, set the subject's compatibility or re-snapshot the table into a new topic)", subject, err)
	}
	r.ids[k] = s.ID
	return s.ID, nil
}
