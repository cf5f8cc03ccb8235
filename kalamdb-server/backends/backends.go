// Package backends is the set of storage backends a kalamdb-server binary
// can open: each one's name, whether it is durable, how it
// registers with a store.Registry, and how its [storage.<name>] section is
// decoded and checked without opening anything.
//
// The server's own binary links the Builtin backends. A backend from
// another module joins them from a main package of that module, through
// package app:
//
//	func main() { os.Exit(app.Main(os.Args[1:], mykvBackend)) }
//
// where mykvBackend is the Backend of mykv, built in that main package so
// that the backend's own package need not import the server (see
// docs/backends.md, and examples/badger-backend).
package backends

import (
	"fmt"
	"slices"
	"sort"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/bbolt"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/pebble"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"
)

// Backend describes one storage backend linked into the server.
type Backend struct {
	// Name is the registered name ("rocksdb"), the value of
	// [storage] backend and the name of the [storage.<name>] section.
	Name string
	// Durable tells whether data survives a restart of the server.
	Durable bool
	// Summary is one line for `kalamdb-server backends`.
	Summary string
	// Register adds the backend's factory to a registry under Name, and
	// any aliases of it (the backend package's Register function). It is
	// the one place a backend's names are given: the set learns the
	// aliases from it.
	Register func(*store.Registry)
	// Decode decodes and validates a [storage.<name>] section without
	// opening anything, and returns the backend's configuration with its
	// defaults filled in; DecodeWith builds it from the backend's
	// DefaultConfig.
	Decode func(store.Config) (any, error)
}

// validator is implemented by backend Config types that check their values.
type validator interface{ Validate() error }

// DecodeWith returns the Decode function of a backend whose settings decode
// into a T that def fills with the defaults; when T (or *T) has a Validate
// method it is called after decoding.
func DecodeWith[T any](def func() T) func(store.Config) (any, error) {
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

// Builtin returns the backends of this repository, the ones the
// kalamdb-server command links.
func Builtin() []Backend {
	return []Backend{
		{
			Name:     memory.Name,
			Durable:  false,
			Summary:  "in-process B-trees; fast, and nothing survives a restart",
			Register: memory.Register,
			Decode:   DecodeWith(memory.DefaultConfig),
		},
		{
			Name:     rocksdb.Name,
			Durable:  true,
			Summary:  "embedded RocksDB (the default); every acknowledged write is in its write-ahead log",
			Register: rocksdb.Register,
			Decode:   DecodeWith(rocksdb.DefaultConfig),
		},
		{
			Name:     pebble.Name,
			Durable:  true,
			Summary:  "embedded Pebble, pure Go; writes are synced to its log by default",
			Register: pebble.Register,
			Decode:   DecodeWith(pebble.DefaultConfig),
		},
		{
			Name:     bbolt.Name,
			Durable:  true,
			Summary:  "embedded bbolt, pure Go, one file; writes are synced to disk by default",
			Register: bbolt.Register,
			Decode:   DecodeWith(bbolt.DefaultConfig),
		},
		{
			Name:     etcd.Name,
			Durable:  true,
			Summary:  "an etcd cluster (Raft): shared by several servers, survives the loss of a minority of its members",
			Register: etcd.Register,
			Decode:   DecodeWith(etcd.DefaultConfig),
		},
		{
			Name:     redis.Name,
			Durable:  true,
			Summary:  "a Redis (or Valkey) server; durable as far as the server's persistence settings make it",
			Register: redis.Register,
			Decode:   DecodeWith(redis.DefaultConfig),
		},
	}
}

// Set is the backends one binary links, with the registry that opens them.
// It is immutable and safe for concurrent use.
type Set struct {
	list    []Backend // sorted by name
	aliases map[string][]string
	reg     *store.Registry
}

// NewSet returns the set of the given backends. Every backend needs a name,
// Register and Decode, must register under its name, and no name or alias
// may be taken twice; the error says which is at fault.
func NewSet(list ...Backend) (*Set, error) {
	s := &Set{list: slices.Clone(list), aliases: map[string][]string{}, reg: store.NewRegistry()}
	sort.Slice(s.list, func(i, j int) bool { return s.list[i].Name < s.list[j].Name })
	taken := map[string]string{}
	for _, b := range s.list {
		switch {
		case b.Name == "":
			return nil, fmt.Errorf("%w: a storage backend has no name", store.ErrInvalidArgument)
		case b.Register == nil || b.Decode == nil:
			return nil, fmt.Errorf("%w: storage backend %q needs both Register and Decode", store.ErrInvalidArgument, b.Name)
		}
		aliases, err := namesOf(b)
		if err != nil {
			return nil, err
		}
		s.aliases[b.Name] = aliases
		for _, n := range append([]string{b.Name}, aliases...) {
			if other, dup := taken[n]; dup {
				if other == b.Name {
					return nil, fmt.Errorf("%w: two storage backends are called %q", store.ErrInvalidArgument, n)
				}
				return nil, fmt.Errorf("%w: storage backend name %q is taken by both %q and %q", store.ErrInvalidArgument, n, other, b.Name)
			}
			taken[n] = b.Name
		}
	}
	for _, b := range s.list {
		b.Register(s.reg) // cannot panic: namesOf registered it alone, and no name is taken twice
	}
	return s, nil
}

// namesOf registers b alone in a registry of its own and returns the
// aliases it registered, or an error when it panics or registers anything
// but its own name.
func namesOf(b Backend) (aliases []string, err error) {
	r := store.NewRegistry()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: storage backend %q: registering it failed: %v", store.ErrInvalidArgument, b.Name, p)
		}
	}()
	b.Register(r)
	if names := r.Names(); len(names) != 1 || names[0] != b.Name {
		return nil, fmt.Errorf("%w: storage backend %q did not register under its name (it registered %q)",
			store.ErrInvalidArgument, b.Name, names)
	}
	return r.Aliases(b.Name), nil
}

// Default returns the set of the Builtin backends.
func Default() *Set {
	s, err := NewSet(Builtin()...)
	if err != nil {
		panic(err) // the built-in list is fixed: a test catches a mistake in it
	}
	return s
}

// Registry returns the registry that opens the set's backends.
func (s *Set) Registry() *store.Registry { return s.reg }

// List returns the backends, sorted by name.
func (s *Set) List() []Backend { return slices.Clone(s.list) }

// Names returns every name and alias a [storage.<name>] section may use.
func (s *Set) Names() []string {
	var names []string
	for _, b := range s.list {
		names = append(names, b.Name)
		names = append(names, s.aliases[b.Name]...)
	}
	return names
}

// Aliases returns every alias, in the order of List.
func (s *Set) Aliases() []string {
	var out []string
	for _, b := range s.list {
		out = append(out, s.aliases[b.Name]...)
	}
	return out
}

// AliasesOf returns the aliases of the backend called name, as its Register
// function registers them.
func (s *Set) AliasesOf(name string) []string { return slices.Clone(s.aliases[name]) }

// Lookup returns the backend called name (or one of its aliases).
func (s *Set) Lookup(name string) (Backend, bool) {
	for _, b := range s.list {
		if b.Name == name || slices.Contains(s.aliases[b.Name], name) {
			return b, true
		}
	}
	return Backend{}, false
}

// Check decodes and validates cfg as the section of backend name, without
// opening the backend.
func (s *Set) Check(name string, cfg store.Config) error {
	_, err := s.Decode(name, cfg)
	return err
}

// Decode decodes and validates cfg as the section of backend name, without
// opening the backend, and returns the backend's configuration with its
// defaults filled in: what the backend would open with.
func (s *Set) Decode(name string, cfg store.Config) (any, error) {
	b, ok := s.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: unknown storage backend %q", store.ErrInvalidArgument, name)
	}
	return b.Decode(cfg)
}
