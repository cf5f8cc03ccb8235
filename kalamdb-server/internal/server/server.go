// Package server runs kalamdb-server: it checks the configuration, opens
// the storage backend through the registry, serves the HTTP API, and shuts
// down in order on SIGINT/SIGTERM: stop accepting, finish the requests in
// flight, stop background work, flush if configured, close the backend. A
// second signal during shutdown exits at once.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gocloud.dev/blob"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/metrics"
	sqlapi "github.com/kalamdb/kalamdb-go/kalamdb-server/internal/sql"
)

// NewLogger returns the logger the configuration asks for, writing to w,
// and the variable that holds its level: a reload of the configuration
// changes the level there.
func NewLogger(c config.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(logLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// logLevel is the slog level of a log.level value.
func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Check validates what config.Load cannot know alone: that the backend is
// one of set, that every [storage.<name>] section decodes and validates for
// its backend, and that the example token is not exposed beyond loopback.
// It opens nothing. It returns the canonical backend name.
func Check(cfg *config.Config, set *backends.Set) (string, error) {
	var errs config.Errors
	reg := set.Registry()
	canonical, err := reg.Resolve(cfg.Storage.Backend)
	if err != nil {
		errs = append(errs, &config.Error{Key: "storage.backend", Origin: cfg.Origin("storage.backend"),
			Msg: fmt.Sprintf("storage backend %q is not registered; known backends: %s (aliases: %s)",
				cfg.Storage.Backend, strings.Join(reg.Names(), ", "), strings.Join(set.Aliases(), ", "))})
	}
	byBackend := map[string]string{}
	for _, name := range cfg.SectionNames() {
		target, err := reg.Resolve(name)
		if err != nil {
			errs = append(errs, &config.Error{Key: "storage." + name, Msg: err.Error()})
			continue
		}
		if other, dup := byBackend[target]; dup {
			errs = append(errs, &config.Error{Key: "storage." + name,
				Msg: fmt.Sprintf("[storage.%s] and [storage.%s] both configure backend %q; keep one", other, name, target)})
			continue
		}
		byBackend[target] = name
		if err := set.Check(target, cfg.Section(name)); err != nil {
			errs = append(errs, cfg.Section(name).Errors(err)...)
		}
	}
	if !config.IsLoopback(cfg.Server.Host) {
		if id, ok := cfg.UsesExampleToken(); ok {
			errs = append(errs, &config.Error{Key: "server.host", Origin: cfg.Origin("server.host"),
				Msg: fmt.Sprintf("refusing to listen on non-loopback address %q while user %q still has the example token from the committed config.toml; set a token of your own (or token_sha256) first",
					cfg.Server.Host, id)})
		}
		for i, u := range cfg.Auth.Users {
			if n := u.TokenLen(); n > 0 && n < MinTokenLen {
				key := fmt.Sprintf("auth.users[%d].token", i)
				if u.TokenFile != "" {
					key += "_file"
				}
				errs = append(errs, &config.Error{Key: key, Origin: cfg.Origin(key),
					Msg: fmt.Sprintf("the token of user %q is %d characters; on a non-loopback address (server.host %q) tokens need at least %d, so that they cannot be guessed",
						u.ID, n, cfg.Server.Host, MinTokenLen)})
			}
		}
	}
	if len(errs) > 0 {
		return "", errs
	}
	return canonical, nil
}

// MinTokenLen is the shortest token accepted while the server listens
// beyond loopback.
const MinTokenLen = 16

// backendSection returns the section configuring the backend: the one named
// as storage.backend is written, else the canonical name's.
func backendSection(cfg *config.Config, set *backends.Set, canonical string) *config.Section {
	if _, ok := cfg.Storage.Sections[cfg.Storage.Backend]; ok {
		return cfg.Section(cfg.Storage.Backend)
	}
	if _, ok := cfg.Storage.Sections[canonical]; ok {
		return cfg.Section(canonical)
	}
	for _, a := range set.AliasesOf(canonical) {
		if _, ok := cfg.Storage.Sections[a]; ok {
			return cfg.Section(a)
		}
	}
	return cfg.Section(canonical)
}

// Server is a running kalamdb-server.
type Server struct {
	// sql serves POST /v1/api/sql.
	sql         *sqlapi.Engine
	cfg         *config.Config
	set         *backends.Set
	log         *slog.Logger
	name        string
	backend     store.StorageBackend
	metrics     *metrics.Metrics
	api         *api.API
	http        *http.Server
	ln          net.Listener
	stopBg      []func()
	db          *tables.DB
	flush       *flush.Manager
	tempParquet string
	// flushDir names where the segments are, for logs and /readyz: the
	// Parquet directory, or the object store's URL without credentials.
	flushDir string
	// objects is the object store of the segments (nil for a directory),
	// bucket its bucket, closed at shutdown.
	objects  *objstore.Store
	bucket   *blob.Bucket
	buffered bufferedCache
	stats    statsCache
	// cert is the TLS certificate served, replaced by a reload.
	cert atomic.Pointer[tls.Certificate]
	// reload reads the configuration again for SIGHUP; level is the
	// logger's level, which a reload sets (see ReloadWith).
	reload func() (*config.Config, error)
	level  *slog.LevelVar
	writes *writeWatch
	// gate pauses the backend's writes, and segHold the segments'
	// removals, for an online backup (see Backup).
	gate    *backup.Gate
	segHold *backup.SegmentHold
	hooks   hooks

	closeOnce sync.Once
	closeErr  error
}

// readyPartition is the partition /readyz asks the backend about; it need
// not exist.
var readyPartition = store.MustPartition("kalamdb.readyz")

// hooks let tests put fault-injecting wrappers around what the server
// opens.
type hooks struct {
	// parquetFS wraps the file system of the Parquet directory.
	parquetFS func(segment.FS) segment.FS
	// backend wraps the storage backend.
	backend func(store.StorageBackend) store.StorageBackend
	// clock is the cold tier's clock (the scheduler's rounds, its backoff).
	clock clock.Clock
}

// Open checks cfg, opens the storage backend (one of set) and builds the
// API. The server does not listen until Listen.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger, set *backends.Set) (*Server, error) {
	return open(ctx, cfg, log, set, hooks{})
}

func open(ctx context.Context, cfg *config.Config, log *slog.Logger, set *backends.Set, h hooks) (*Server, error) {
	canonical, err := Check(cfg, set)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	s := &Server{cfg: cfg, set: set, log: log, name: canonical}
	s.stats.ttl = statsTTL
	if cfg.Server.TLS() {
		cert, err := loadCert(cfg.Server)
		if err != nil {
			return nil, err
		}
		s.cert.Store(cert)
	}
	section := backendSection(cfg, set, canonical)
	raw, err := set.Registry().Open(ctx, canonical, section)
	if err != nil {
		return nil, err
	}
	durable := raw.Capabilities().Durable
	if !durable {
		warnNotDurable(log, canonical)
	}
	s.metrics = metrics.New()
	if h.backend != nil {
		raw = h.backend(raw)
	}
	s.hooks = h
	s.writes = newWriteWatch(s.metrics.InstrumentBackend(canonical, raw), canonical, log)
	s.gate = backup.NewGate(s.writes)
	s.backend = s.gate
	if err := checkNoRestore(ctx, s.backend); err != nil {
		_ = s.backend.Close()
		return nil, err
	}
	log.Info("storage backend open", append([]any{"backend", canonical, "durable", durable}, pathAttrs(set, canonical, section)...)...)

	authn, err := auth.New(cfg.Auth.Users)
	if err != nil {
		_ = s.backend.Close()
		return nil, err
	}
	opts := api.Options{
		Logger:       log,
		AccessLog:    cfg.Log.Access,
		Auth:         authn,
		Metrics:      s.metrics,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		MaxPageRows:  cfg.Server.MaxPageRows,
		MaxPageBytes: cfg.Server.MaxPageBytes,
		Backend:      canonical,
		Ready: func(ctx context.Context) error {
			if err := s.writes.check(ctx); err != nil {
				return err
			}
			_, err := s.backend.PartitionExists(ctx, readyPartition)
			return err
		},
	}
	if err := s.openTables(ctx, &opts, durable); err != nil {
		_ = s.backend.Close()
		s.removeTempParquet()
		return nil, err
	}
	s.api = api.New(opts)
	sqlOpts := sqlapi.Options{API: s.api, DB: s.db, Logger: log}
	if s.flush != nil {
		sqlOpts.Segments = s.flush
		if s.objects != nil {
			// The SQL engine reads copies of the object store's segment
			// files, kept beside the disk cache's blocks and bounded alike.
			sqlOpts.SegmentFiles = filepath.Join(cfg.Storage.SegmentCache.Dir, "sql-files")
			sqlOpts.SegmentFilesMaxBytes = cfg.Storage.SegmentCache.MaxBytes
		}
	}
	if s.sql, err = sqlapi.New(sqlOpts); err != nil {
		_ = s.db.Close()
		_ = s.backend.Close()
		s.removeTempParquet()
		return nil, err
	}
	s.sql.Register(s.api)
	if err := s.startStreams(ctx); err != nil {
		_ = s.sql.Close()
		_ = s.db.Close()
		_ = s.backend.Close()
		s.removeTempParquet()
		return nil, err
	}
	// Background work runs on contexts that these cancel, so that a
	// shutdown never waits on work it cannot stop; they run before the
	// final flush.
	s.stopBg = append(s.stopBg, s.db.StopEviction)
	s.flush.Start()
	s.stopBg = append(s.stopBg, s.flush.Stop)
	s.http = &http.Server{
		Handler:           s.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Duration(cfg.Server.ReadTimeoutSeconds) * time.Second,
		WriteTimeout:      time.Duration(cfg.Server.WriteTimeoutSeconds) * time.Second,
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeoutSeconds) * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.Server.TLS() {
		s.http.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The certificate is looked up per handshake, so that a
			// reload replaces it for new connections.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
		}
	}
	return s, nil
}

// pathAttrs are the log attributes of the path keys of the backend's
// section, as the backend opens them (resolved to absolute paths).
func pathAttrs(set *backends.Set, backend string, section store.Config) []any {
	decoded, err := set.Decode(backend, section)
	if err != nil || decoded == nil {
		return nil
	}
	var attrs []any
	v := reflect.ValueOf(decoded)
	for i := 0; i < v.NumField(); i++ {
		key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
		if v.Field(i).Kind() == reflect.String && config.IsPathKey(key) && v.Field(i).String() != "" {
			attrs = append(attrs, key, v.Field(i).String())
		}
	}
	return attrs
}

// loadCert loads the certificate of server.tls_cert_file and
// server.tls_key_file.
func loadCert(c config.Server) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls_cert_file %q, server.tls_key_file %q: loading the certificate: %w", c.TLSCertFile, c.TLSKeyFile, err)
	}
	return &cert, nil
}

func warnNotDurable(log *slog.Logger, name string) {
	log.Warn(fmt.Sprintf("!!! storage backend %q is NOT DURABLE: nothing survives a restart !!! every namespace, table and row is lost when this process stops; set storage.backend = \"rocksdb\" to keep data", name))
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.api }

// Backend returns the (instrumented) storage backend.
func (s *Server) Backend() store.StorageBackend { return s.backend }

// Listen binds the configured address. It returns the address bound, which
// tells the port when server.port is 0.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.cfg.Server.Listen())
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", s.cfg.Server.Listen(), err)
	}
	max, lowered := connectionBound(s.cfg.Server.MaxConnections)
	if lowered {
		s.log.Warn("server.max_connections lowered to what the process's open-file limit leaves beside the storage backend; raise the limit (ulimit -n) to allow more",
			"configured", s.cfg.Server.MaxConnections, "used", max, "reserved_for_files", fdReserve)
	}
	s.ln = newLimitListener(ln, max, s.cfg.Server.MaxConnectionsPerClient, s.log, s.metrics)
	return ln.Addr(), nil
}

// Serve serves HTTP (HTTPS with server.tls_cert_file) on the listener until
// Shutdown; it returns nil after a graceful shutdown.
func (s *Server) Serve() error {
	if s.ln == nil {
		return errors.New("server: Serve before Listen")
	}
	var err error
	if s.http.TLSConfig != nil {
		err = s.http.ServeTLS(s.ln, "", "")
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server in order: readiness goes to 503, the listener
// closes, requests in flight finish (until ctx is done, when their
// connections are closed), background work stops, buffers are flushed when
// flush.on_shutdown is set, and the backend is closed. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.api.SetDraining()
		var errs []error
		if err := s.http.Shutdown(ctx); err != nil {
			s.log.Warn("requests still in flight at the shutdown deadline; closing their connections", "err", err)
			_ = s.http.Close()
		}
		for i := len(s.stopBg) - 1; i >= 0; i-- {
			s.stopBg[i]()
		}
		if err := s.sql.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the SQL engine: %w", err))
		}
		// The final flush gets a budget of its own: the requests may have
		// used up ctx.
		fctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.ShutdownTimeoutSeconds)*time.Second)
		if err := s.closeTables(fctx); err != nil {
			errs = append(errs, fmt.Errorf("closing the tables: %w", err))
		}
		cancel()
		if err := s.backend.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing storage backend %q: %w", s.name, err))
		}
		s.removeTempParquet()
		if !s.backend.Capabilities().Durable {
			s.log.Warn("non-durable storage backend closed: its data is gone", "backend", s.name)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Run serves on the listener bound by Listen until a signal arrives on
// signals (or ctx is done), then shuts down gracefully within
// server.shutdown_timeout_seconds. A second signal during the shutdown
// calls forceExit. SIGHUP is not a shutdown: it reloads the configuration
// (see ReloadWith and Reload).
func (s *Server) Run(ctx context.Context, signals <-chan os.Signal, forceExit func()) error {
	log := s.log
	if id, ok := s.cfg.UsesExampleToken(); ok {
		log.Warn("user still has the example token from the committed config.toml; the server only allows this on a loopback address", "user", id)
	}
	scheme := "http"
	if s.cfg.Server.TLS() {
		scheme = "https"
	}
	addr := s.ln.Addr().String()
	log.Info("kalamdb-server listening", "addr", addr, "url", scheme+"://"+addr, "backend", s.name, "users", len(s.cfg.Auth.Users))

	served := make(chan error, 1)
	go func() { served <- guard.Run("server: serving HTTP", s.Serve) }()

wait:
	for {
		select {
		case err := <-served:
			if guard.Stack(err) != nil {
				s.logError("serving HTTP failed; shutting down", err)
			}
			_ = s.Shutdown(context.Background())
			return err
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				s.reloadNow()
				continue
			}
			log.Info("shutting down: finishing requests in flight; send the signal again to exit at once", "signal", sig.String())
			break wait
		case <-ctx.Done():
			log.Info("shutting down", "reason", ctx.Err())
			break wait
		}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		err := guard.Run("server: watching for a second signal", func() error {
			for {
				select {
				case sig := <-signals:
					if sig == syscall.SIGHUP {
						log.Info("ignoring SIGHUP: the server is shutting down")
						continue
					}
					log.Error("second signal: exiting without finishing the shutdown", "signal", sig.String())
					forceExit()
					return nil
				case <-done:
					return nil
				}
			}
		})
		if err != nil {
			s.logError("watching for a second signal", err)
		}
	}()
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.ShutdownTimeoutSeconds)*time.Second)
	defer cancel()
	err := s.Shutdown(sctx)
	if serr := <-served; serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	log.Info("kalamdb-server stopped")
	return nil
}
