package testenv

import (
	"context"
	"fmt"
	"sync"

	"github.com/strait-cdc/strait/pkg/sink"
)

// Schemas is a schema registry's ids and texts held in memory, for tests
// that give a sink changes themselves: the same text always has the same
// id, as in a registry. The zero value is empty and ready; safe from any
// goroutine.
type Schemas struct {
	mu    sync.Mutex
	texts []string       // by id - 1
	ids   map[string]int // by text
}

var _ sink.Schemas = (*Schemas)(nil)

// ID returns the id of text, registering it the first time.
func (s *Schemas) ID(text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.ids[text]; ok {
		return id
	}
	if s.ids == nil {
		s.ids = map[string]int{}
	}
	s.texts = append(s.texts, text)
	s.ids[text] = len(s.texts)
	return len(s.texts)
}

// Schema returns the text of id, an error for an id never given.
func (s *Schemas) Schema(_ context.Context, id int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > len(s.texts) {
		return "", fmt.Errorf("schema id %d: unknown", id)
	}
	return s.texts[id-1], nil
}
