package config

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeFile applies the YAML file at path to the keys of all. It walks
// the document itself rather than letting yaml.v3 decode into the struct,
// so that every problem is reported in the configuration's own terms: the
// dotted key, the file and line, what was given and what is wanted — and
// all problems at once. A null value (`port:`) keeps the default.
func decodeFile(all []field, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 { // an empty file
		return nil
	}
	d := fileDecoder{path: path, all: all, keys: map[string]field{}, sections: map[string]bool{}}
	for _, f := range all {
		d.keys[f.key] = f
		for s := f.key; strings.Contains(s, "."); {
			s = s[:strings.LastIndex(s, ".")]
			d.sections[s] = true
		}
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		if root.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("config file %s line %d: want keys at the top level (e.g. %s:)", path, root.Line, all[0].key[:strings.IndexByte(all[0].key+".", '.')])
	}
	d.mapping(root, "")
	return errors.Join(d.errs...)
}

// fileDecoder is the state of one walk of a YAML document.
type fileDecoder struct {
	path     string
	all      []field          // in declaration order
	keys     map[string]field // by dotted key
	sections map[string]bool  // dotted paths that hold keys
	errs     []error
}

// mapping applies the keys of the YAML mapping n found under prefix.
func (d *fileDecoder) mapping(n *yaml.Node, prefix string) {
	seen := map[string]int{} // line of each key
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if line, dup := seen[k.Value]; dup {
			d.errs = append(d.errs, fmt.Errorf("%s line %d: %s is set twice (first on line %d)", d.path, k.Line, join(prefix, k.Value), line))
			continue
		}
		seen[k.Value] = k.Line
		key := join(prefix, k.Value)
		f, isKey := d.keys[key]
		switch {
		case isKey && f.secret:
			d.errs = append(d.errs, fmt.Errorf("%s line %d: %s: secrets are not read from the configuration file (keep them out of it); set %s", d.path, k.Line, key, secretHome(f, d.all)))
		case isKey:
			d.value(f, v)
		case d.sections[key] && v.Kind == yaml.MappingNode:
			d.mapping(v, key)
		case d.sections[key] && v.Tag == "!!null":
		case d.sections[key]:
			d.errs = append(d.errs, fmt.Errorf("%s line %d: %s: %s is not a section (want keys under it, e.g. %s)", d.path, v.Line, key, given(v), d.firstKey(key)))
		default:
			msg := fmt.Sprintf("unknown key %s in %s line %d", key, d.path, k.Line)
			if s := nearest(key, d.candidates()); s != "" {
				msg += "; did you mean " + s + "?"
			}
			d.errs = append(d.errs, errors.New(msg))
		}
	}
}

// value sets the field f from the YAML node v.
func (d *fileDecoder) value(f field, v *yaml.Node) {
	var err error
	switch {
	case v.Tag == "!!null":
		return
	case v.Kind == yaml.ScalarNode:
		err = f.set(v.Value)
	case v.Kind == yaml.SequenceNode && f.isList():
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it = resolve(it); it.Kind != yaml.ScalarNode {
				err = fmt.Errorf("%s: %s in the list is not a value (want a list like %s)", f.key, given(it), listExample)
				break
			}
			items = append(items, it.Value)
		}
		if err == nil {
			f.setList(items)
		}
	case f.structured():
		err = f.setNode(v)
	default:
		err = f.wrongForm(given(v))
	}
	if err != nil {
		d.errs = append(d.errs, fmt.Errorf("%s line %d: %w", d.path, v.Line, err))
	}
}

// candidates are the keys and sections a misspelt key may have meant.
func (d *fileDecoder) candidates() []string {
	out := make([]string, 0, len(d.keys)+len(d.sections))
	for k, f := range d.keys {
		if !f.secret {
			out = append(out, k)
		}
	}
	for s := range d.sections {
		out = append(out, s)
	}
	return out
}

// firstKey is an example key of the section s: its first.
func (d *fileDecoder) firstKey(s string) string {
	for _, f := range d.all {
		if strings.HasPrefix(f.key, s+".") {
			return f.key
		}
	}
	return ""
}

// join is the dotted key name under prefix.
func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// resolve follows an alias (*anchor) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// given describes a YAML value in an error: a scalar quoted, else its kind.
func given(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return "`" + n.Value + "`"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a value"
}

// structured reports whether f takes a list or mapping of records (e.g.
// source.columns): a type that reads its JSON form as text.
func (f field) structured() bool {
	_, ok := f.v.Addr().Interface().(encoding.TextUnmarshaler)
	return ok
}

// setNode sets a structured field from its YAML node, through the JSON form
// the field reads from the environment and flags, so that the file, the
// environment and the flags accept the same records and refuse the same
// unknown fields.
func (f field) setNode(v *yaml.Node) error {
	var x any
	if err := v.Decode(&x); err != nil {
		return fmt.Errorf("%s: %w", f.key, err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Errorf("%s: %w", f.key, err)
	}
	return f.set(string(b))
}
