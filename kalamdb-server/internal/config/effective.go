package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Mask replaces every secret in the effective configuration.
const Mask = "********"

// Digest returns the lower-case hex SHA-256 of the user's token: computed
// from Token, or TokenSHA256 as configured.
func (u User) Digest() string {
	if u.Token != "" {
		return digestOf(u.Token)
	}
	return strings.ToLower(u.TokenSHA256)
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
// environment or flags.
func (c *Config) Effective() (string, error) {
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
	for _, name := range c.SectionNames() {
		vals := c.Storage.Sections[name].Values()
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
