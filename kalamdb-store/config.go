package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Config is one backend's configuration section, such as the
// [storage.rocksdb] table of config.toml.
type Config interface {
	// Decode fills v, a pointer to a struct whose fields carry `toml` tags,
	// from the section. It is strict: a key that v has no field for, or a
	// value of the wrong type, is an error wrapping ErrInvalidArgument that
	// names the key. Keys absent from the section leave their fields as
	// they were, so callers set defaults before decoding.
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

// DecodeTOML decodes a TOML document into v strictly, the way every Config
// must: unknown keys and mistyped values are errors wrapping
// ErrInvalidArgument that name the key.
func DecodeTOML(data []byte, v any) error {
	dec := toml.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		keys := make([]string, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			keys = append(keys, strings.Join(e.Key(), "."))
		}
		return fmt.Errorf("%w: unknown configuration key(s): %s", ErrInvalidArgument, strings.Join(keys, ", "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		return fmt.Errorf("%w: configuration key %s: %v", ErrInvalidArgument, strings.Join(de.Key(), "."), de)
	}
	return fmt.Errorf("%w: configuration: %v", ErrInvalidArgument, err)
}
