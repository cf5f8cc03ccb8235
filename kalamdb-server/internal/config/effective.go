package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Mask replaces every secret in the effective configuration.
const Mask = "********"

// Digest returns the lower-case hex SHA-256 of the user's token: computed
// from Token or from the content of TokenFile, or TokenSHA256 as
// configured.
func (u User) Digest() string {
	switch {
	case u.Token != "":
		return digestOf(u.Token)
	case u.fileToken != "":
		return digestOf(u.fileToken)
	}
	return strings.ToLower(u.TokenSHA256)
}

// TokenLen returns the length of the user's token in bytes, or 0 when only
// its digest is known.
func (u User) TokenLen() int {
	if u.Token != "" {
		return len(u.Token)
	}
	return len(u.fileToken)
}

func digestOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// secretKey reports whether a backend-section key holds a secret.
func secretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"password", "passwd", "secret", "token", "credential", "private_key", "auth"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Effective renders the configuration as TOML with every secret masked
// (tokens, token digests, and backend keys that look like passwords or
// secrets), followed by comments saying which values came from the
// environment or flags. decoded holds, by section name, what backends made
// of their [storage.<name>] sections (defaults filled in, paths resolved);
// it is rendered in place of the section as written, and a name of decoded
// that the file has no section for is rendered too.
func (c *Config) Effective(decoded map[string]any) (string, error) {
	masked := *c
	masked.Auth.Users = make([]User, len(c.Auth.Users))
	for i, u := range c.Auth.Users {
		if u.Token != "" {
			u.Token = Mask
		}
		if u.TokenSHA256 != "" {
			u.TokenSHA256 = Mask
		}
		masked.Auth.Users[i] = u
	}
	if masked.Storage.SegmentsURL != "" {
		masked.Storage.SegmentsURL = masked.Segments().Redacted
	}
	var b strings.Builder
	out, err := toml.Marshal(struct {
		Server  Server  `toml:"server"`
		Storage Storage `toml:"storage"`
		Flush   Flush   `toml:"flush"`
		Stream  Stream  `toml:"stream"`
		Log     Log     `toml:"log"`
	}{masked.Server, masked.Storage, masked.Flush, masked.Stream, masked.Log})
	if err != nil {
		return "", fmt.Errorf("rendering the configuration: %w", err)
	}
	b.Write(out)
	names := c.SectionNames()
	for name := range decoded {
		if _, ok := c.Storage.Sections[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		vals := c.Section(name).Values()
		if d, ok := decoded[name]; ok {
			data, err := toml.Marshal(d)
			if err != nil {
				return "", fmt.Errorf("rendering [storage.%s]: %w", name, err)
			}
			vals = map[string]any{}
			if err := toml.Unmarshal(data, &vals); err != nil {
				return "", fmt.Errorf("rendering [storage.%s]: %w", name, err)
			}
		}
		maskSecrets(vals)
		fmt.Fprintf(&b, "\n[storage.%s]\n", quoteKey(name))
		if len(vals) > 0 {
			sec, err := toml.Marshal(vals)
			if err != nil {
				return "", fmt.Errorf("rendering [storage.%s]: %w", name, err)
			}
			b.Write(sec)
		}
	}
	for _, u := range masked.Auth.Users {
		out, err := toml.Marshal(u)
		if err != nil {
			return "", fmt.Errorf("rendering a user: %w", err)
		}
		b.WriteString("\n[[auth.users]]\n")
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			// Leave out the empty alternative (token or token_sha256).
			if strings.HasSuffix(line, "= ''") || strings.HasSuffix(line, `= ""`) {
				continue
			}
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	var notes []string
	for path, o := range c.origins {
		if o.Kind == OriginEnv || o.Kind == OriginFlag {
			notes = append(notes, fmt.Sprintf("# %s from %s", path, o))
		}
	}
	for _, name := range c.SectionNames() {
		s := c.Storage.Sections[name]
		for k, o := range s.origins {
			if o.Kind == OriginEnv || o.Kind == OriginFlag {
				notes = append(notes, fmt.Sprintf("# storage.%s.%s from %s", name, k, o))
			}
		}
	}
	if len(notes) > 0 {
		sort.Strings(notes)
		b.WriteString("\n# Overrides:\n")
		b.WriteString(strings.Join(notes, "\n"))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func maskSecrets(m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			cp := make(map[string]any, len(sub))
			for sk, sv := range sub {
				cp[sk] = sv
			}
			maskSecrets(cp)
			m[k] = cp
			continue
		}
		if secretKey(k) {
			m[k] = Mask
		}
	}
}

func quoteKey(k string) string {
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Sprintf("%q", k)
		}
	}
	return k
}

// Diff lists the keys whose effective values differ between c and other,
// sorted: the scalar keys of the static sections ("server.port"), a backend
// section as a whole ("storage.rocksdb"), and "auth.users" when a user was
// added, removed, or changed role or token.
func (c *Config) Diff(other *Config) []string {
	var keys []string
	a, b := c.scalarKeys(), other.scalarKeys()
	for k, v := range a {
		if !reflect.DeepEqual(v.Interface(), b[k].Interface()) {
			keys = append(keys, k)
		}
	}
	names := map[string]bool{}
	for n := range c.Storage.Sections {
		names[n] = true
	}
	for n := range other.Storage.Sections {
		names[n] = true
	}
	for n := range names {
		if !reflect.DeepEqual(c.Section(n).values, other.Section(n).values) {
			keys = append(keys, "storage."+n)
		}
	}
	if !sameUsers(c.Auth.Users, other.Auth.Users) {
		keys = append(keys, "auth.users")
	}
	sort.Strings(keys)
	return keys
}

func sameUsers(a, b []User) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Role != b[i].Role || a[i].Digest() != b[i].Digest() {
			return false
		}
	}
	return true
}
