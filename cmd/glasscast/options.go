package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// option is one setting, reachable as a YAML key ("http.listen"), a flag (--http-listen) and an
// environment variable (GLASSCAST_HTTP_LISTEN). Each is declared once, with its help text, so
// the flags, the environment and the documented example file cannot drift apart.
type option struct {
	key  string
	help string
	ptr  any // *string, *int, *bool, *float64 or *time.Duration holding the default
}

func (o option) flagName() string { return strings.NewReplacer(".", "-").Replace(kebab(o.key)) }

func (o option) envName() string {
	return "GLASSCAST_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(kebab(o.key)))
}

// kebab turns "playbackBaseURL" into "playback-base-url".
func kebab(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			prevLower := i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]))
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1]) && i > 0 && unicode.IsUpper(r[i-1])
			if prevLower || nextLower {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (o option) set(v string) error {
	switch p := o.ptr.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", o.key, v)
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", o.key, v)
		}
		*p = f
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", o.key, v)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration like 200ms or 2s", o.key, v)
		}
		*p = d
	default:
		return fmt.Errorf("%s: unsupported option type %T", o.key, o.ptr)
	}
	return nil
}

func (o option) value() string {
	switch p := o.ptr.(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *float64:
		return strconv.FormatFloat(*p, 'g', -1, 64)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return p.String()
	}
	return ""
}

// flagValue adapts an option to the flag package.
type flagValue struct{ o option }

func (f flagValue) String() string     { return f.o.value() }
func (f flagValue) Set(v string) error { return f.o.set(v) }
func (f flagValue) IsBoolFlag() bool   { _, ok := f.o.ptr.(*bool); return ok }

// load applies, in increasing precedence: the defaults already in the option pointers, the
// YAML file named by --config or GLASSCAST_CONFIG, environment variables, then flags.
func load(name string, opts []option, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	configPath := os.Getenv("GLASSCAST_CONFIG")
	fs.StringVar(&configPath, "config", configPath, "YAML configuration file (env GLASSCAST_CONFIG)")
	for _, o := range opts {
		fs.Var(flagValue{o}, o.flagName(), o.help+" (env "+o.envName()+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: glasscast %s [flags]\n\nFlags (each also settable in the YAML file and the environment):\n", name)
		fs.PrintDefaults()
	}
	// Parse once to find --config, then apply file and environment, then flags again so that
	// flags win.
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if configPath != "" {
		if err := applyFile(configPath, opts); err != nil {
			return err
		}
	}
	for _, o := range opts {
		if v, ok := os.LookupEnv(o.envName()); ok {
			if err := o.set(v); err != nil {
				return fmt.Errorf("environment %s: %w", o.envName(), err)
			}
		}
	}
	return fs.Parse(args)
}

func applyFile(path string, opts []option) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	flat := map[string]string{}
	flatten("", tree, flat)
	byKey := map[string]option{}
	for _, o := range opts {
		byKey[o.key] = o
	}
	for k, v := range flat {
		o, ok := byKey[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown option %q (see `glasscast config`)", path, k)
		}
		if err := o.set(v); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	return nil
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, c, out)
		}
	case nil:
	default:
		out[prefix] = fmt.Sprint(t)
	}
}

// exampleYAML renders every option with its help and default, grouped by section: the file in
// configs/ is this output, checked by a test.
func exampleYAML(opts []option) string {
	sorted := append([]option(nil), opts...)
	sort.SliceStable(sorted, func(i, j int) bool { return section(sorted[i].key) < section(sorted[j].key) })
	var b strings.Builder
	b.WriteString("# Glasscast configuration: every option, with its default.\n")
	b.WriteString("# Each key is also a flag (--http-listen) and an environment variable (GLASSCAST_HTTP_LISTEN).\n")
	b.WriteString("# Precedence: defaults < this file (--config or GLASSCAST_CONFIG) < environment < flags.\n")
	b.WriteString("# Regenerate with: glasscast config > configs/glasscast.yaml\n")
	current := "\x00"
	for _, o := range sorted {
		sec, leaf := section(o.key), o.key
		if i := strings.LastIndexByte(o.key, '.'); i >= 0 {
			leaf = o.key[i+1:]
		}
		indent := ""
		if sec != "" {
			indent = "  "
		}
		if sec != current {
			b.WriteString("\n")
			if sec != "" {
				b.WriteString(sec + ":\n")
			}
			current = sec
		}
		for _, line := range strings.Split(o.help, "\n") {
			b.WriteString(indent + "# " + line + "\n")
		}
		b.WriteString(indent + leaf + ": " + yamlScalar(o) + "\n")
	}
	return b.String()
}

func section(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

func yamlScalar(o option) string {
	if _, ok := o.ptr.(*string); ok {
		return strconv.Quote(o.value())
	}
	return o.value()
}
