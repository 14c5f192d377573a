package kafka

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Registry registers Avro schemas and remembers their ids. It may be used
// from several goroutines.
type Registry struct {
	client *sr.Client
	mu     sync.Mutex
	ids    map[string]int // subject + "\x00" + SHA-256 of the schema → id
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
	sum := sha256.Sum256([]byte(schema)) // a schema's text is kilobytes: 10,000 tables' would be 30 MiB
	k := subject + "\x00" + string(sum[:])
	r.mu.Lock()
	id, ok := r.ids[k]
	r.mu.Unlock()
	if ok {
		return id, nil
	}
	// RegisterSchema, not CreateSchema: one round trip, the id alone (a
	// table's first change waits for two of them, key and value).
	id, err := r.client.RegisterSchema(ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1)
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusUnprocessableEntity) {
		return 0, &SchemaRejectedError{Subject: subject, Err: err}
	}
	if denied := registryDenied(err); denied != err {
		return 0, fmt.Errorf("register schema for subject %s: %w", subject, denied)
	}
	if err != nil && (!errors.As(err, &re) || re.StatusCode >= 500) {
		// Unreachable, or failing itself: waited out, not a schema problem.
		return 0, &RegistryUnavailableError{Subject: subject, Err: err}
	}
	if err != nil {
		return 0, fmt.Errorf("register schema for subject %s: %w", subject, err)
	}
	r.mu.Lock()
	r.ids[k] = id
	r.mu.Unlock()
	return id, nil
}

// RegistryUnavailableError is a Schema Registry that cannot be reached or
// answers with a server error (5xx): transient (Transient), waited out by
// the producer's restarts from its checkpoint, never a reason to change the
// schema.
type RegistryUnavailableError struct {
	Subject string
	Err     error
}

func (e *RegistryUnavailableError) Error() string {
	return fmt.Sprintf("schema registry unavailable (registering subject %s): %v", e.Subject, e.Err)
}

func (e *RegistryUnavailableError) Unwrap() error { return e.Err }

// SchemaRejectedError is the Schema Registry refusing a schema itself: HTTP
// 409, incompatible with the subject's earlier versions under the subject's
// compatibility level (e.g. a column changed from VARCHAR to INT under
// BACKWARD), or 422, invalid. A registry that cannot be reached is a
// different, retryable error. Find it with errors.As; it unwraps to the
// registry's response (*sr.ResponseError).
type SchemaRejectedError struct {
	Subject string // the subject that refused the schema, <topic>-key or <topic>-value
	Table   string // database.table, when known
	// Changes says what changed in the table since the schema the subject
	// last accepted from this producer, e.g. "column code (position 2):
	// string → int32"; empty when unknown (first registration).
	Changes string
	Err     error // the registry's answer
}

// Error names the table, the subject, the change, the registry's reason and the fix.
func (e *SchemaRejectedError) Error() string {
	what := e.Subject
	if e.Table != "" {
		what = fmt.Sprintf("table %s (subject %s)", e.Table, e.Subject)
	}
	if e.Changes != "" {
		what += " after " + e.Changes
	}
	return fmt.Sprintf("schema registry refused the new schema of %s: %v; fix: make the change compatible (e.g. add a new column instead of changing a type), "+
		"or, if every reader copes, set the compatibility of %s to NONE and restart the producer, "+
		"or exclude the table (source.exclude) and re-snapshot it into a new topic", what, e.Err, e.Subject)
}

// Unwrap returns the registry's answer.
func (e *SchemaRejectedError) Unwrap() error { return e.Err }

// columnChanges describes how table t differs from old, column by column
// (positions count from 1, as in information_schema), for error messages.
func columnChanges(old, t *cdc.Table) string {
	was := map[string]*cdc.Column{}
	for i := range old.Columns {
		was[old.Columns[i].Name] = &old.Columns[i]
	}
	var out []string
	for i := range t.Columns {
		c := &t.Columns[i]
		o := was[c.Name]
		switch {
		case o == nil:
			out = append(out, fmt.Sprintf("column %s (position %d) added as %s", c.Name, i+1, columnType(c)))
		case columnType(o) != columnType(c):
			out = append(out, fmt.Sprintf("column %s (position %d) changed from %s to %s", c.Name, i+1, columnType(o), columnType(c)))
		}
		delete(was, c.Name)
	}
	for i := range old.Columns {
		if was[old.Columns[i].Name] != nil {
			out = append(out, fmt.Sprintf("column %s (position %d) dropped", old.Columns[i].Name, i+1))
		}
	}
	if fmt.Sprint(keyNames(old)) != fmt.Sprint(keyNames(t)) {
		out = append(out, fmt.Sprintf("primary key changed from %v to %v", keyNames(old), keyNames(t)))
	}
	return strings.Join(out, ", ")
}

func columnType(c *cdc.Column) string {
	s := c.Type.String()
	if c.SQLType != "" {
		s = c.SQLType + " (" + s + ")"
	}
	if !c.Nullable {
		s += " not null"
	}
	return s
}

func keyNames(t *cdc.Table) []string {
	var out []string
	for _, k := range t.PrimaryKey {
		out = append(out, t.Columns[k].Name)
	}
	return out
}
