package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Section is one [storage.<name>] table: a backend's own settings, which the
// server passes to the backend's factory without knowing their keys. It
// implements store.Config: Decode is strict, and its errors name each
// offending key with the file line (or the environment variable or flag)
// that set it.
type Section struct {
	name    string
	file    string
	dir     string // the configuration file's folder, for relative paths
	origin  Origin
	values  map[string]any
	origins map[string]Origin // by top-level key of the section
	lines   map[string]int    // by dotted path inside the section
}

var _ store.Config = (*Section)(nil)

// Name returns the backend name of the section ("rocksdb").
func (s *Section) Name() string { return s.name }

// Keys returns the section's top-level keys, sorted.
func (s *Section) Keys() []string { return sortedKeys(s.values) }

// Values returns a copy of the section's top-level values.
func (s *Section) Values() map[string]any {
	out := make(map[string]any, len(s.values))
	for k, v := range s.values {
		out[k] = v
	}
	return out
}

// Origin is where the dotted key inside the section was set.
func (s *Section) Origin(key string) Origin {
	top, _, _ := strings.Cut(key, ".")
	if o, ok := s.origins[top]; ok && o.Kind != OriginFile {
		return o
	}
	if l, ok := s.lines[key]; ok {
		return Origin{Kind: OriginFile, File: s.file, Line: l}
	}
	if l, ok := s.lines[stripIndexes(key)]; ok {
		return Origin{Kind: OriginFile, File: s.file, Line: l}
	}
	if o, ok := s.origins[top]; ok {
		return o
	}
	return s.origin
}

// Decode implements store.Config: it fills v, a pointer to a struct with
// `toml` tags, from the section. Unknown keys and values of the wrong type
// are reported together, as Errors, which also match
// errors.Is(err, store.ErrInvalidArgument). Afterwards every relative path
// in v (a string field whose key IsPathKey) is made absolute, against the
// configuration file's folder unless the environment or a flag set it.
func (s *Section) Decode(v any) error {
	if err := s.decode(v); err != nil {
		return err
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		s.resolvePaths(rv.Elem(), "")
	}
	return nil
}

// resolvePaths makes the relative paths of struct value v absolute; prefix
// is the dotted key of v inside the section.
func (s *Section) resolvePaths(v reflect.Value, prefix string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := tomlKey(f)
		if key == "" {
			continue
		}
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Struct:
			s.resolvePaths(fv, prefix+key+".")
		case fv.Kind() == reflect.String && IsPathKey(key):
			fv.SetString(resolvePath(fv.String(), s.Origin(prefix+key), s.dir))
		}
	}
}

func (s *Section) decode(v any) error {
	if len(s.values) == 0 {
		return nil
	}
	data, err := toml.Marshal(s.values)
	if err != nil {
		return Errors{{Key: "storage." + s.name, Origin: s.origin, Msg: "cannot be encoded: " + err.Error()}}
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		return nil
	}
	prefix := "storage." + s.name + "."
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		known := tomlKeys(v)
		var errs Errors
		for _, e := range strict.Errors {
			key := strings.Join(e.Key(), ".")
			errs = append(errs, &Error{Key: prefix + key, Origin: s.Origin(key),
				Msg: "unknown key" + suggest(key, known) + knownList(known)})
		}
		return errs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		key := strings.Join(de.Key(), ".")
		return Errors{{Key: prefix + key, Origin: s.Origin(key), Msg: s.badValue(v, de.Key(), de)}}
	}
	return Errors{{Key: "storage." + s.name, Origin: s.origin, Msg: err.Error()}}
}

// badValue says, in words, what the value at key should have been and what
// it is.
func (s *Section) badValue(v any, key []string, de *toml.DecodeError) string {
	ft, ok := fieldType(reflect.TypeOf(v), key)
	raw, found := lookup(s.values, key)
	if !ok || !found {
		return "bad value: " + strings.TrimPrefix(de.Error(), "toml: ")
	}
	if u, ok := reflect.New(ft).Interface().(encoding.TextUnmarshaler); ok {
		str, isStr := raw.(string)
		if !isStr {
			return fmt.Sprintf("must be a string, got %s", describe(raw))
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
	return fmt.Sprintf("must be %s, got %s", want, describe(raw))
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
			if f := t.Field(i); tomlKey(f) == k {
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

// tomlKey is the TOML key of a struct field, or "" for a field TOML skips.
func tomlKey(f reflect.StructField) string {
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

func knownList(keys []string) string {
	if len(keys) == 0 {
		return "; this section takes no keys"
	}
	return "; known keys: " + strings.Join(keys, ", ")
}

// tomlKeys lists the top-level TOML keys of the struct v points to.
func tomlKeys(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := tomlKey(t.Field(i)); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// Is makes every configuration error match store.ErrInvalidArgument, the
// error the storage contract uses for bad configuration.
func (es Errors) Is(target error) bool { return target == store.ErrInvalidArgument }

// Is makes a configuration error match store.ErrInvalidArgument.
func (e *Error) Is(target error) bool { return target == store.ErrInvalidArgument }

// String renders the section for messages.
func (s *Section) String() string { return fmt.Sprintf("[storage.%s]", s.name) }
