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
//
// Problems are reported in the configuration's terms, never the struct's:
// the YAML file is walked node by node (file.go), so an unknown key names
// its dotted path, line and nearest valid key, and a malformed value its
// key, the value and the form wanted, all problems at once. A subcommand's
// -h lists only the keys it reads, when the configuration says which
// (Scoped, help.go).
package config

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
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

// set parses s into the field; an error names the key, the value and the
// form wanted.
func (f field) set(s string) error {
	switch p := f.v.Addr().Interface().(type) {
	case *string:
		*p = s
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%s: `%s` is not a boolean (want true or false)", f.key, s)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s: `%s` is not a duration (%s)", f.key, s, f.want())
		}
		*p = d
	case *[]string:
		f.setList(strings.Split(s, ","))
	case encoding.TextUnmarshaler:
		if err := p.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	default:
		switch f.v.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || f.v.OverflowInt(n) {
				return fmt.Errorf("%s: `%s` is not a number (%s)", f.key, s, f.want())
			}
			f.v.SetInt(n)
		case reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil || f.v.OverflowUint(n) {
				return fmt.Errorf("%s: `%s` is not a non-negative number (%s)", f.key, s, f.want())
			}
			f.v.SetUint(n)
		default:
			return fmt.Errorf("%s: unsupported kind %s", f.key, f.v.Kind())
		}
	}
	return nil
}

// listExample is how a list value is written, in errors.
const listExample = "[shop.*, crm.users] or a comma-separated string"

// isList reports whether the field holds a list.
func (f field) isList() bool { return f.v.Type() == reflect.TypeOf([]string(nil)) }

// setList sets a list field to items, trimmed, without empty ones.
func (f field) setList(items []string) {
	var out []string
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	f.v.Set(reflect.ValueOf(out))
}

// wrongForm is the error of a value of the wrong shape (a mapping or a
// list where a single value belongs).
func (f field) wrongForm(given string) error {
	if f.isList() {
		return fmt.Errorf("%s: %s is not a list (want a list like %s)", f.key, given, listExample)
	}
	return fmt.Errorf("%s: %s is not a single value (%s)", f.key, given, f.want())
}

// want describes the form of the field's values, with its current value
// (the default, or what an earlier source set) as the example.
func (f field) want() string {
	switch {
	case f.v.Type() == reflect.TypeOf(time.Duration(0)):
		return "want a duration like 30s, 5m or 1h30m"
	case f.v.Kind() == reflect.Bool:
		return "want true or false"
	case f.isList():
		return "want a list like " + listExample
	case f.v.CanInt() && f.v.Int() != 0:
		return fmt.Sprintf("want an integer, e.g. %d", f.v.Int())
	case f.v.CanInt():
		return "want an integer, e.g. 10"
	case f.v.CanUint() && f.v.Uint() != 0:
		return fmt.Sprintf("want a non-negative integer, e.g. %d", f.v.Uint())
	case f.v.CanUint():
		return "want a non-negative integer, e.g. 10"
	}
	return "want text"
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
	registerFlags(fs, fields(reflect.ValueOf(cfg).Elem(), ""))
}

// registerFlags registers on fs one flag per non-secret field of keys.
func registerFlags(fs *flag.FlagSet, keys []field) {
	for _, f := range keys {
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
//
// When cfg is Scoped, -h shows only the keys the subcommand reads. The
// file, the environment and the flags may still set any key of cfg, so
// that one file, environment or command line serves every subcommand;
// -print-config shows every key.
func FromArgs(cfg any, program, name, summary, note string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return fromArgs(cfg, command{program, name, summary, note, nil}, args, getenv, stdout, stderr)
}

// command is the subcommand FromArgs loads the configuration for.
type command struct {
	program, name, summary, note string
	own                          *flag.FlagSet // its own flags (not configuration keys), or nil
}

func fromArgs(cfg any, cmd command, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	all := fields(reflect.ValueOf(cfg).Elem(), "")
	reads, err := scope(cfg, cmd.name, all)
	if err != nil {
		return err
	}
	defaults := make([]string, len(reads)) // captured before the file and the environment change them
	for i, f := range reads {
		defaults[i] = f.String()
		if d, ok := f.v.Interface().(time.Duration); ok {
			defaults[i] = shortDuration(d)
		}
	}
	fs := flag.NewFlagSet(cmd.program+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, once, and the help is printed only when asked for
	path := fs.String("config", getenv("STRAIT_CONFIG"), "YAML configuration file (env STRAIT_CONFIG)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration (secrets redacted) and exit")
	registerFlags(fs, all) // like the file and the environment, flags may set any key: one set serves every subcommand
	fs.Usage = func() {
		if slices.ContainsFunc(args, isHelp) {
			writeUsage(stderr, cmd, reads, defaults)
		}
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
		return withFlagSuggestion(err, fs, cmd.own)
	}
	if *printConfig {
		fmt.Fprint(stdout, dump(all))
		return ErrPrinted
	}
	return nil
}

// isHelp reports whether the argument asks for the -h text.
func isHelp(a string) bool {
	switch a {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}

// withFlagSuggestion adds to the error of a flag that does not exist the
// flag nearest to it, among fs's and own's (nil: none).
func withFlagSuggestion(err error, fs, own *flag.FlagSet) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return err
	}
	var names []string
	for _, set := range []*flag.FlagSet{fs, own} {
		if set != nil {
			set.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		}
	}
	if s := nearest(name, names); s != "" {
		return fmt.Errorf("%w; did you mean -%s?", err, s)
	}
	return err
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
		if err := decodeFile(fields(reflect.ValueOf(cfg).Elem(), ""), path); err != nil {
			return err
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

// Dump renders the effective configuration, one key per line, with secrets
// redacted; for logs and `--print-config`.
func Dump(cfg any) string { return dump(fields(reflect.ValueOf(cfg).Elem(), "")) }

func dump(fs []field) string {
	var b strings.Builder
	for _, f := range fs {
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
	own.SetOutput(io.Discard) // its errors are returned
	if err := fromArgs(cfg, command{program, name, summary, note, own}, rest, getenv, stdout, stderr); err != nil {
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
