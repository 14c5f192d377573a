// Package config loads a binary's configuration: defaults, then one YAML
// file, then STRAIT_* environment variables, then command-line flags — each
// later source overriding the earlier. Keys are derived from the struct's
// yaml tags: field `host` of section `source` is the YAML key source.host,
// the variable STRAIT_SOURCE_HOST and the flag -source.host. A `help` tag is
// the flag's help text.
//
// A struct field tagged yaml:",inline" adds its keys to its parent's.
// A field whose type implements encoding.TextUnmarshaler (a list of
// records, say) takes its environment variable and flag through it.
//
// Secrets (fields tagged secret:"true", which have yaml:"-") come only from
// the environment (or a file the binary reads): never from a flag (none is
// registered) nor the YAML file (refused, naming the key, never the value),
// never printed (Dump redacts them).
package config

import (
	"bytes"
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// field is one configuration key bound to a struct field.
type field struct {
	key    string // dotted YAML path
	env    string
	help   string
	secret bool
	v      reflect.Value
}

func fields(v reflect.Value, prefix string) []field {
	var out []field
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, flags, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" && flags == "inline" && sf.Type.Kind() == reflect.Struct { // its keys are the parent's
			out = append(out, fields(v.Field(i), prefix)...)
			continue
		}
		secret := sf.Tag.Get("secret") == "true"
		if name == "-" && secret {
			name = strings.ToLower(sf.Name)
		}
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Duration(0)) {
			out = append(out, fields(fv, key)...)
			continue
		}
		env := "STRAIT_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
		out = append(out, field{key: key, env: env, help: sf.Tag.Get("help"), secret: secret, v: fv})
	}
	return out
}

// set parses s into the field.
func (f field) set(s string) error {
	switch p := f.v.Addr().Interface().(type) {
	case *string:
		*p = s
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%s: %q is not a boolean", f.key, s)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration (e.g. 30s, 5m)", f.key, s)
		}
		*p = d
	case *[]string:
		*p = nil
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	case encoding.TextUnmarshaler:
		if err := p.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	default:
		switch f.v.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || f.v.OverflowInt(n) {
				return fmt.Errorf("%s: %q is not an integer", f.key, s)
			}
			f.v.SetInt(n)
		case reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil || f.v.OverflowUint(n) {
				return fmt.Errorf("%s: %q is not a non-negative integer", f.key, s)
			}
			f.v.SetUint(n)
		default:
			return fmt.Errorf("%s: unsupported kind %s", f.key, f.v.Kind())
		}
	}
	return nil
}

func (f field) String() string {
	if f.secret {
		if f.v.String() != "" {
			return "<redacted>"
		}
		return ""
	}
	switch p := f.v.Addr().Interface().(type) {
	case *[]string:
		return strings.Join(*p, ",")
	case *time.Duration:
		return p.String()
	}
	return fmt.Sprint(f.v.Interface())
}

// flagValue adapts a field to flag.Value.
type flagValue struct{ f field }

func (fv flagValue) String() string {
	if !fv.f.v.IsValid() {
		return ""
	}
	return fv.f.String()
}
func (fv flagValue) Set(s string) error { return fv.f.set(s) }

// IsBoolFlag lets a boolean key be given as -key, meaning -key=true.
func (fv flagValue) IsBoolFlag() bool { return fv.f.v.Kind() == reflect.Bool }

// Flags registers one flag per non-secret key of cfg (a pointer to a struct
// already holding its defaults) on fs.
func Flags(fs *flag.FlagSet, cfg any) {
	for _, f := range fields(reflect.ValueOf(cfg).Elem(), "") {
		if f.secret {
			continue
		}
		help := f.help
		if help == "" {
			help = "see README, configuration reference"
		}
		fs.Var(flagValue{f}, f.key, help+" (env "+f.env+")")
	}
}

// ErrPrinted reports that -print-config printed the configuration: the
// command has nothing more to do.
var ErrPrinted = errors.New("configuration printed")

// FromArgs fills cfg (a pointer to a struct holding its defaults) for the
// subcommand "program name": from the YAML file named by -config (or
// STRAIT_CONFIG), then the STRAIT_* environment, then the flags in args.
// summary and note make the -h text. -print-config prints the result with
// secrets redacted and returns ErrPrinted.
func FromArgs(cfg any, program, name, summary, note string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(program+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv("STRAIT_CONFIG"), "YAML configuration file (env STRAIT_CONFIG)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration (secrets redacted) and exit")
	Flags(fs, cfg)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s [flags]\n\n%s\n\nEvery flag is also a YAML key and a STRAIT_* variable. %s\n\nFlags:\n", program, name, summary, note)
		fs.PrintDefaults()
	}
	// The file and the environment are read before the flags are parsed,
	// so flags win; -config itself is looked up first.
	for i, a := range args {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "config="); ok && strings.HasPrefix(a, "-") {
			*path = v
		} else if strings.TrimLeft(a, "-") == "config" && strings.HasPrefix(a, "-") && i+1 < len(args) {
			*path = args[i+1]
		}
	}
	if err := Load(cfg, *path, getenv); err != nil {
		return err
	}
	if err := secretFlags(cfg, args); err != nil {
		return err
	}
	if err := Parse(fs, args); err != nil {
		return err
	}
	if *printConfig {
		fmt.Fprint(stdout, Dump(cfg))
		return ErrPrinted
	}
	return nil
}

// Parse parses the command line into fs. An argument left over is an
// error: it usually follows a boolean flag written "-key false", which Go's
// flag package reads as -key=true followed by the argument "false".
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (write booleans as -key=false)", fs.Arg(0))
	}
	return nil
}

// Load fills cfg (holding its defaults) from the YAML file at path (none when
// empty), then from the environment via getenv. Flags are applied by the
// caller's flag.FlagSet.Parse afterwards, so they win. Unknown YAML keys and
// malformed values are errors naming the key.
func Load(cfg any, path string, getenv func(string) string) error {
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := secretsInFile(cfg, data); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	var errs []error
	for _, f := range fields(reflect.ValueOf(cfg).Elem(), "") {
		if s := getenv(f.env); s != "" {
			if err := f.set(s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.env, err))
			}
		}
	}
	return errors.Join(errs...)
}

// secretsInFile refuses a YAML file that sets a secret key, naming the key
// and where the secret belongs instead, never the value: yaml's own error
// ("field password not found") would not say why.
func secretsInFile(cfg any, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil // the decoder reports a malformed file
	}
	all := fields(reflect.ValueOf(cfg).Elem(), "")
	var errs []error
	for _, f := range all {
		if f.secret && lookup(doc.Content[0], strings.Split(f.key, ".")) != nil {
			errs = append(errs, fmt.Errorf("%s: secrets are not read from the configuration file (keep them out of it); set %s", f.key, secretHome(f, all)))
		}
	}
	return errors.Join(errs...)
}

// secretHome says where the secret f is set: its environment variable, and
// the key naming a file that holds it when there is one (<key>_file).
func secretHome(f field, all []field) string {
	s := "the environment variable " + f.env
	for _, g := range all {
		if g.key == f.key+"_file" {
			s += " or a file named by " + g.key
		}
	}
	return s
}

// secretFlags refuses a command line that sets a secret key, naming the
// key, never the value: a flag would show the secret in ps and in the
// shell's history.
func secretFlags(cfg any, args []string) error {
	var errs []error
	all := fields(reflect.ValueOf(cfg).Elem(), "")
	for _, f := range all {
		for _, a := range args {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if f.secret && strings.HasPrefix(a, "-") && name == f.key {
				errs = append(errs, fmt.Errorf("-%s: secrets are not taken as flags (ps and shell history would show them); set %s", f.key, secretHome(f, all)))
			}
		}
	}
	return errors.Join(errs...)
}

// lookup returns the value at path in the YAML mapping n, or nil.
func lookup(n *yaml.Node, path []string) *yaml.Node {
	for _, name := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// Dump renders the effective configuration, one key per line, with secrets
// redacted; for logs and `--print-config`.
func Dump(cfg any) string {
	var b strings.Builder
	for _, f := range fields(reflect.ValueOf(cfg).Elem(), "") {
		fmt.Fprintf(&b, "%s: %s\n", f.key, f.String())
	}
	return b.String()
}

// FromArgsWithFlags is FromArgs for a command that also has flags of its
// own, which are not configuration keys (e.g. `consumer reset -to-earliest`):
// own's flags are taken out of args, listed in the -h text, and parsed
// after the configuration.
func FromArgsWithFlags(cfg any, program, name, summary, note string, own *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ownArgs, rest := splitArgs(own, args)
	var help bytes.Buffer
	own.SetOutput(&help)
	own.PrintDefaults()
	own.SetOutput(stderr)
	summary += "\n\nCommand flags (not configuration keys):\n" + strings.TrimRight(help.String(), "\n")
	if err := FromArgs(cfg, program, name, summary, note, rest, getenv, stdout, stderr); err != nil {
		return err
	}
	return Parse(own, ownArgs)
}

// splitArgs separates the flags own defines (with their values) from the
// rest of args.
func splitArgs(own *flag.FlagSet, args []string) (ownArgs, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := own.Lookup(name)
		if !strings.HasPrefix(a, "-") || f == nil {
			rest = append(rest, a)
			continue
		}
		ownArgs = append(ownArgs, a)
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		if !hasValue && !(ok && b.IsBoolFlag()) && i+1 < len(args) {
			i++
			ownArgs = append(ownArgs, args[i])
		}
	}
	return ownArgs, rest
}
