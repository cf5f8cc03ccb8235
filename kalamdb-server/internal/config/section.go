package config

import (
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
// `toml` tags, from the section, strictly (store.DecodeTOML): unknown keys
// and values of the wrong type are store.ConfigErrors naming the section
// and the key; Errors turns them into configuration errors that say where
// each key was set. Afterwards every relative path
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
		key := store.TOMLKey(f)
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
		return store.ConfigErrors{{Section: s.name, Msg: "cannot be encoded: " + err.Error()}}
	}
	err = store.DecodeTOML(data, v)
	var ces store.ConfigErrors
	if errors.As(err, &ces) {
		for _, e := range ces {
			e.Section = s.name
		}
	}
	return err
}

// Errors turns the errors of a backend about this section (its Decode's,
// or its Config.Validate's) into configuration errors that name each key
// with where it was set and, for an unknown key, the key it resembles.
func (s *Section) Errors(err error) Errors {
	var ces store.ConfigErrors
	if !errors.As(err, &ces) {
		var ce *store.ConfigError
		if !errors.As(err, &ce) {
			return Errors{{Key: "storage." + s.name, Origin: s.origin, Msg: err.Error()}}
		}
		ces = store.ConfigErrors{ce}
	}
	out := make(Errors, 0, len(ces))
	for _, e := range ces {
		msg := e.Msg
		if e.Unknown {
			msg += suggest(e.Key, e.Known) + knownList(e.Known)
		}
		key := "storage." + s.name
		if e.Key != "" {
			key += "." + e.Key
		}
		out = append(out, &Error{Key: key, Origin: s.Origin(e.Key), Msg: msg})
	}
	return out
}

func knownList(keys []string) string {
	if len(keys) == 0 {
		return "; this section takes no keys"
	}
	return "; known keys: " + strings.Join(keys, ", ")
}

// String renders the section for messages.
func (s *Section) String() string { return fmt.Sprintf("[storage.%s]", s.name) }
