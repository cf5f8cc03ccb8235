package server

import (
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// What a reload (SIGHUP) changes without a restart: the users and their
// tokens ([[auth.users]]), the TLS certificate (server.tls_cert_file and
// server.tls_key_file, the files or the paths, while the server speaks
// HTTPS), log.level and log.access. Anything else that changed is logged as
// needing a restart and keeps its running value. A configuration that does
// not load, or that Check refuses, changes nothing: the reload is logged as
// failed with every problem, and the server goes on as it was.

// reloadable are the keys a reload applies.
var reloadable = []string{"auth.users", "server.tls_cert_file", "server.tls_key_file", "log.level", "log.access"}

// ReloadWith makes Run answer SIGHUP: load reads the configuration again
// (the file with the same environment and flags), and Reload applies it.
// level, when not nil, is the logger's level, which log.level sets.
func (s *Server) ReloadWith(load func() (*config.Config, error), level *slog.LevelVar) {
	s.reload, s.level = load, level
}

// reloadNow is Run's answer to SIGHUP.
func (s *Server) reloadNow() {
	if s.reload == nil {
		s.log.Warn("SIGHUP: this server has no configuration to reload; nothing changed")
		return
	}
	cfg, err := s.reload()
	if err == nil {
		err = s.Reload(cfg)
	}
	if err != nil {
		var ces config.Errors
		if errors.As(err, &ces) {
			msgs := make([]string, len(ces))
			for i, e := range ces {
				msgs[i] = e.Error()
			}
			s.log.Error("configuration reload failed; nothing changed", "problems", strings.Join(msgs, "; "))
			return
		}
		s.log.Error("configuration reload failed; nothing changed", "err", err)
	}
}

// Reload applies what can change without a restart from cfg, a newly loaded
// configuration, and logs what changed. It changes nothing and returns the
// problems when cfg is not valid.
func (s *Server) Reload(cfg *config.Config) error {
	if _, err := Check(cfg, s.set); err != nil {
		return err
	}
	authn, err := auth.New(cfg.Auth.Users)
	if err != nil {
		return err
	}
	changed := s.cfg.Diff(cfg)
	certChanged := slices.Contains(changed, "server.tls_cert_file") || slices.Contains(changed, "server.tls_key_file")
	var restart []string
	for _, k := range changed {
		if !slices.Contains(reloadable, k) {
			restart = append(restart, k)
		}
	}
	if s.cfg.Server.TLS() != cfg.Server.TLS() {
		// Turning HTTPS on or off changes the listener: a restart.
		restart = append(restart, "server.tls_cert_file")
		certChanged = false
	}
	if cfg.Server.TLS() && s.cfg.Server.TLS() {
		// The files may have changed under the same paths (a renewal).
		cert, err := loadCert(cfg.Server)
		if err != nil {
			return err
		}
		s.cert.Store(cert)
		certChanged = true
	}

	s.api.SetAuth(authn)
	s.api.SetAccessLog(cfg.Log.Access)
	if s.level != nil {
		s.level.Set(logLevel(cfg.Log.Level))
	}
	attrs := []any{}
	if added, removed, updated := userChanges(s.cfg.Auth.Users, cfg.Auth.Users); len(added)+len(removed)+len(updated) > 0 {
		attrs = append(attrs, "users_added", added, "users_removed", removed, "users_changed", updated)
	}
	if certChanged {
		attrs = append(attrs, "tls_certificate", "reloaded")
	}
	if slices.Contains(changed, "log.level") {
		attrs = append(attrs, "log.level", cfg.Log.Level)
	}
	if slices.Contains(changed, "log.access") {
		attrs = append(attrs, "log.access", cfg.Log.Access)
	}
	s.log.Info("configuration reloaded", attrs...)
	if len(restart) > 0 {
		s.log.Warn("configuration changes that need a restart were not applied", "keys", strings.Join(restart, ", "))
	}
	// What was applied becomes the running configuration's; the rest stays.
	s.cfg.Auth = cfg.Auth
	if cfg.Server.TLS() && s.cfg.Server.TLS() {
		s.cfg.Server.TLSCertFile, s.cfg.Server.TLSKeyFile = cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile
	}
	s.cfg.Log.Level, s.cfg.Log.Access = cfg.Log.Level, cfg.Log.Access
	return nil
}

// userChanges lists the ids of users added, removed, and whose role or
// token changed, from old to new.
func userChanges(old, new []config.User) (added, removed, changed []string) {
	byID := map[string]config.User{}
	for _, u := range old {
		byID[u.ID] = u
	}
	seen := map[string]bool{}
	for _, u := range new {
		seen[u.ID] = true
		o, ok := byID[u.ID]
		switch {
		case !ok:
			added = append(added, u.ID)
		case o.Role != u.Role || o.Digest() != u.Digest():
			changed = append(changed, u.ID)
		}
	}
	for _, u := range old {
		if !seen[u.ID] {
			removed = append(removed, u.ID)
		}
	}
	return added, removed, changed
}
