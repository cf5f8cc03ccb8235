package store

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Config is one backend's configuration section, such as the
// [storage.rocksdb] table of config.toml.
type Config interface {
	// Decode fills v, a pointer to a struct whose fields carry `toml` tags,
	// from the section. It is strict: a key that v has no field for, or a
	// value of the wrong type, is an error naming the key (ConfigErrors,
	// which wrap ErrInvalidArgument). Keys absent from the section leave
	// their fields as they were, so callers set defaults before decoding.
	Decode(v any) error
}

// ConfigMap is a Config held as a map, as a TOML or JSON decoder produces
// it. A nil ConfigMap is an empty section.
type ConfigMap map[string]any

// Decode implements Config.
func (m ConfigMap) Decode(v any) error {
	if len(m) == 0 {
		return nil
	}
	data, err := toml.Marshal(map[string]any(m))
	if err != nil {
		return fmt.Errorf("%w: configuration section cannot be encoded: %v", ErrInvalidArgument, err)
	}
	return DecodeTOML(data, v)
}

// ConfigError is what is wrong with one key of a backend's configuration
// section: a key the backend does not know, a value of the wrong type, or a
// value its Validate refuses. It wraps ErrInvalidArgument, and a program
// that reads the configuration (the server) finds the key with errors.As
// to say where the key was set.
type ConfigError struct {
	// Section is the backend's name ("rocksdb"), when known: the key is
	// then storage.<Section>.<Key> in config.toml.
	Section string
	// Key is the dotted key inside the section ("block_cache_mb").
	Key string
	// Msg says what is wrong, in words ("is 0; use 1 to 1048576").
	Msg string
	// Unknown marks a key the backend does not take; Known then lists the
	// keys it does.
	Unknown bool
	Known   []string
}

// Error returns "storage.<section>.<key>: <msg>" (without the section
// when it is not known).
func (e *ConfigError) Error() string {
	key := e.Key
	if e.Section != "" {
		key = "storage." + e.Section + "." + e.Key
	}
	msg := e.Msg
	if e.Unknown && len(e.Known) > 0 {
		msg += "; known keys: " + strings.Join(e.Known, ", ")
	}
	return key + ": " + msg
}

// Unwrap returns ErrInvalidArgument.
func (e *ConfigError) Unwrap() error { return ErrInvalidArgument }

// InvalidConfig returns the ConfigError of key of backend section: what a
// backend's Config.Validate returns for a bad value.
func InvalidConfig(section, key, format string, args ...any) *ConfigError {
	return &ConfigError{Section: section, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// ConfigErrors are every problem DecodeTOML found, in key order.
type ConfigErrors []*ConfigError

// Error joins the messages with "; ".
func (es ConfigErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns each error, so that errors.As finds a *ConfigError and
// errors.Is finds ErrInvalidArgument.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// DecodeTOML decodes a TOML document into v strictly, the way every Config
// must: the error is ConfigErrors, one per unknown key (with the keys v
// takes) or per value of the wrong type, saying in words what was expected
// and what was given.
func DecodeTOML(data []byte, v any) error {
	dec := toml.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		known := tomlKeys(reflect.TypeOf(v))
		var errs ConfigErrors
		for _, e := range strict.Errors {
			errs = append(errs, &ConfigError{Key: strings.Join(e.Key(), "."), Msg: "unknown key", Unknown: true, Known: known})
		}
		return errs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		var raw map[string]any
		_ = toml.Unmarshal(data, &raw)
		return ConfigErrors{{Key: strings.Join(de.Key(), "."), Msg: badValue(v, raw, de)}}
	}
	return ConfigErrors{{Msg: err.Error()}}
}

// badValue says, in words, what the value at de's key should have been and
// what it is.
func badValue(v any, values map[string]any, de *toml.DecodeError) string {
	ft, ok := fieldType(reflect.TypeOf(v), de.Key())
	raw, found := lookup(values, de.Key())
	if !ok || !found {
		return "bad value: " + strings.TrimPrefix(de.Error(), "toml: ")
	}
	if u, ok := reflect.New(ft).Interface().(encoding.TextUnmarshaler); ok {
		str, isStr := raw.(string)
		if !isStr {
			return fmt.Sprintf("must be a string, got %s", DescribeTOMLValue(raw))
		}
		if err := u.UnmarshalText([]byte(str)); err != nil {
			return fmt.Sprintf("bad value %q: %v", str, err)
		}
	}
	want := "a value of another kind"
	switch ft.Kind() {
	case reflect.Bool:
		want = "true or false"
	case reflect.String:
		want = "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer"
		if n, isInt := raw.(int64); isInt {
			return fmt.Sprintf("integer %d is out of range", n)
		}
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Slice, reflect.Array:
		want = "an array"
	case reflect.Struct, reflect.Map:
		want = "a table"
	}
	return fmt.Sprintf("must be %s, got %s", want, DescribeTOMLValue(raw))
}

// DescribeTOMLValue names a decoded TOML value for a message (`string
// "x"`, `integer 3`, `a table`, …).
func DescribeTOMLValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("float %v", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

// fieldType follows key through the struct type t to the type of the field
// it names.
func fieldType(t reflect.Type, key []string) (reflect.Type, bool) {
	for _, k := range key {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		found := false
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); TOMLKey(f) == k {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return t, true
}

// lookup follows key through nested tables.
func lookup(m map[string]any, key []string) (any, bool) {
	var cur any = m
	for _, k := range key {
		t, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = t[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// TOMLKey is the TOML key of a struct field ("" for a field TOML skips):
// its `toml` tag, else its name.
func TOMLKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	switch tag {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return tag
}

// tomlKeys lists the top-level TOML keys of the struct t points to, in
// field order.
func tomlKeys(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if k := TOMLKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}
