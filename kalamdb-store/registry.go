package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Factory opens a backend from its configuration section (for the backend
// named "rocksdb", the [storage.rocksdb] table of config.toml). A factory
// decodes cfg strictly: an unknown key is an error that names it.
type Factory func(ctx context.Context, cfg Config) (StorageBackend, error)

// Registry maps backend names to factories, in the style of database/sql's
// drivers but without global state: the program that opens backends builds a
// Registry and registers, explicitly, the backends it links in.
//
// A Registry is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
	aliases   map[string]string
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}, aliases: map[string]string{}}
}

// Register makes a backend available under name. It panics if name is empty,
// f is nil, or name is already registered (as a name or an alias): two
// backends under one name is a programming error.
func (r *Registry) Register(name string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" {
		panic("kalamdb-store: Register with an empty backend name")
	}
	if f == nil {
		panic(fmt.Sprintf("kalamdb-store: Register(%q) with a nil factory", name))
	}
	if r.taken(name) {
		panic(fmt.Sprintf("kalamdb-store: backend %q registered twice", name))
	}
	r.factories[name] = f
}

// Alias makes alias another name for the registered backend name (for
// example "in-memory" for "memory"). It panics if name is not registered or
// alias is already taken.
func (r *Registry) Alias(alias, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.factories[name]; !ok {
		panic(fmt.Sprintf("kalamdb-store: Alias(%q, %q): backend %q is not registered", alias, name, name))
	}
	if alias == "" || r.taken(alias) {
		panic(fmt.Sprintf("kalamdb-store: alias %q is empty or already taken", alias))
	}
	r.aliases[alias] = name
}

func (r *Registry) taken(name string) bool {
	_, f := r.factories[name]
	_, a := r.aliases[name]
	return f || a
}

// Names returns the registered backend names (not the aliases), sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Aliases returns the aliases of the registered backend name, sorted; none
// when name has none or is not registered.
func (r *Registry) Aliases(name string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for a, target := range r.aliases {
		if target == name {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Resolve returns the backend name that name stands for (itself, or the
// backend an alias points to), or an error wrapping ErrInvalidArgument that
// lists the known names.
func (r *Registry) Resolve(name string) (string, error) {
	r.mu.RLock()
	_, ok := r.factories[name]
	target, isAlias := r.aliases[name]
	r.mu.RUnlock()
	switch {
	case ok:
		return name, nil
	case isAlias:
		return target, nil
	}
	return "", fmt.Errorf("%w: unknown storage backend %q; known backends: %s",
		ErrInvalidArgument, name, strings.Join(r.Names(), ", "))
}

// Open opens the backend registered as name (or an alias of it) with its
// configuration section cfg; a nil cfg means an empty section.
func (r *Registry) Open(ctx context.Context, name string, cfg Config) (StorageBackend, error) {
	canonical, err := r.Resolve(name)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	f := r.factories[canonical]
	r.mu.RUnlock()
	if cfg == nil {
		cfg = ConfigMap(nil)
	}
	b, err := f(ctx, cfg)
	if err != nil {
		// Name the section of the keys a strict decode refused.
		var ces ConfigErrors
		if errors.As(err, &ces) {
			for _, e := range ces {
				if e.Section == "" {
					e.Section = canonical
				}
			}
		}
		return nil, fmt.Errorf("opening storage backend %q: %w", canonical, err)
	}
	return b, nil
}
