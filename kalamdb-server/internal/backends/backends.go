// Package backends links the storage backends into kalamdb-server: it builds
// the store.Registry the server opens its backend from, and knows how to
// check each backend's [storage.<name>] section without opening it.
package backends

import (
	"fmt"
	"sort"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/bbolt"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/pebble"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"
)

// Backend describes one linked storage backend.
type Backend struct {
	// Name is the registered name ("rocksdb").
	Name string
	// Aliases are other names accepted for it ("in-memory").
	Aliases []string
	// Durable tells whether data survives a restart of the server.
	Durable bool
	// Summary is one line for `kalamdb-server backends`.
	Summary string
	// register adds the backend to a registry.
	register func(*store.Registry)
	// decode decodes and validates a section without opening anything, and
	// returns the backend's configuration value.
	decode func(store.Config) (any, error)
}

// validator is implemented by backend Config types that check their values.
type validator interface{ Validate() error }

// decodeAndValidate returns a decode function for a backend whose settings
// decode into *T, starting from def.
func decodeAndValidate[T any](def func() T) func(store.Config) (any, error) {
	return func(cfg store.Config) (any, error) {
		c := def()
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
		if v, ok := any(c).(validator); ok {
			return c, v.Validate()
		}
		if v, ok := any(&c).(validator); ok {
			return c, v.Validate()
		}
		return c, nil
	}
}

// all is every backend linked into the server, in display order.
var all = []Backend{
	{
		Name:     memory.Name,
		Aliases:  []string{memory.Alias},
		Durable:  false,
		Summary:  "in-process B-trees; fast, and nothing survives a restart",
		register: memory.Register,
		decode:   decodeAndValidate(func() memory.Config { return memory.Config{} }),
	},
	{
		Name:     rocksdb.Name,
		Durable:  true,
		Summary:  "embedded RocksDB (the default); every acknowledged write is in its write-ahead log",
		register: rocksdb.Register,
		decode:   decodeAndValidate(rocksdb.DefaultConfig),
	},
	{
		Name:     pebble.Name,
		Durable:  true,
		Summary:  "embedded Pebble, pure Go; writes are synced to its log by default",
		register: pebble.Register,
		decode:   decodeAndValidate(pebble.DefaultConfig),
	},
	{
		Name:     bbolt.Name,
		Durable:  true,
		Summary:  "embedded bbolt, pure Go, one file; writes are synced to disk by default",
		register: bbolt.Register,
		decode:   decodeAndValidate(bbolt.DefaultConfig),
	},
	{
		Name:     redis.Name,
		Durable:  true,
		Summary:  "a Redis (or Valkey) server; durable as far as the server's persistence settings make it",
		register: redis.Register,
		decode:   decodeAndValidate(redis.DefaultConfig),
	},
}

// List returns the linked backends, sorted by name.
func List() []Backend {
	out := append([]Backend(nil), all...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Registry returns a registry holding every linked backend.
func Registry() *store.Registry {
	r := store.NewRegistry()
	for _, b := range all {
		b.register(r)
	}
	return r
}

// Names returns every name and alias a [storage.<name>] section may use.
func Names() []string {
	var names []string
	for _, b := range List() {
		names = append(names, b.Name)
		names = append(names, b.Aliases...)
	}
	return names
}

// Lookup returns the backend called name (or one of its aliases).
func Lookup(name string) (Backend, bool) {
	for _, b := range all {
		if b.Name == name {
			return b, true
		}
		for _, a := range b.Aliases {
			if a == name {
				return b, true
			}
		}
	}
	return Backend{}, false
}

// Check decodes and validates cfg as the section of backend name, without
// opening the backend.
func Check(name string, cfg store.Config) error {
	_, err := Decode(name, cfg)
	return err
}

// Decode decodes and validates cfg as the section of backend name, without
// opening the backend, and returns the backend's configuration with its
// defaults filled in: what the backend would open with.
func Decode(name string, cfg store.Config) (any, error) {
	b, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: unknown storage backend %q", store.ErrInvalidArgument, name)
	}
	return b.decode(cfg)
}
