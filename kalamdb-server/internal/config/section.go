package config

import (
	"bytes"
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
// errors.Is(err, store.ErrInvalidArgument).
func (s *Section) Decode(v any) error {
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
		return Errors{{Key: prefix + key, Origin: s.Origin(key), Msg: "bad value: " + strings.TrimPrefix(de.Error(), "toml: ")}}
	}
	return Errors{{Key: "storage." + s.name, Origin: s.origin, Msg: err.Error()}}
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
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch tag {
		case "-":
			continue
		case "":
			tag = f.Name
		}
		keys = append(keys, tag)
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
