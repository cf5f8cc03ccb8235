// Package cli is the command line of kalamdb-server (github.com/spf13/cobra):
//
//	kalamdb-server serve [--config PATH] [--host H] [--port N] [--backend B] [--set key=value]…
//	kalamdb-server config check [--config PATH] [same overrides]
//	kalamdb-server backends
//	kalamdb-server version
//	kalamdb-server backup --to DEST [--config PATH]
//	kalamdb-server restore --from SRC [--force] [--config PATH]
//	kalamdb-server migrate --from OLD.toml --to NEW.toml [--force]
//
// The configuration file is --config, else $KALAMDB_CONFIG, else
// ./config.toml; flags win over KALAMDB_<SECTION>_<KEY> environment
// variables, which win over the file, which wins over the defaults.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/server"
)

// Version and Commit identify the build; the Makefile sets them at link time
// from git:
//
//	-ldflags "-X github.com/kalamdb/kalamdb-go/kalamdb-server/internal/cli.Version=v1.2.3
//	          -X github.com/kalamdb/kalamdb-go/kalamdb-server/internal/cli.Commit=0123456789ab"
//
// Without them the version is "dev" and the commit comes from the build
// information Go records (when the build had VCS stamping on).
var (
	Version = "dev"
	Commit  = ""
)

// Env is what the commands use of the process: its streams, environment,
// signals and exit. Tests substitute their own.
type Env struct {
	Stdout, Stderr io.Writer
	// Stdin is standard input (the sql command reads statements from it);
	// nil reads nothing.
	Stdin io.Reader
	// Environ is the environment, as os.Environ returns it.
	Environ []string
	// Signals returns the channel of signals (SIGINT and SIGTERM stop the
	// server, SIGHUP reloads its configuration) and a function that stops
	// delivering them.
	Signals func() (<-chan os.Signal, func())
	// Exit ends the process; a second shutdown signal calls it.
	Exit func(code int)
	// Backends are the storage backends the binary links; nil means
	// backends.Default().
	Backends *backends.Set
}

func (e Env) backends() *backends.Set {
	if e.Backends == nil {
		return backends.Default()
	}
	return e.Backends
}

// ProcessEnv is the Env of the running process.
func ProcessEnv() Env {
	return Env{
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Stdin:   os.Stdin,
		Environ: os.Environ(),
		Signals: func() (<-chan os.Signal, func()) {
			ch := make(chan os.Signal, 2)
			signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			return ch, func() { signal.Stop(ch) }
		},
		Exit: os.Exit,
	}
}

// Main runs the command line args (without the program name) and returns
// the exit code: 0 on success, 1 on any error, 2 for a usage error.
func Main(args []string, env Env) int {
	root := NewRoot(env)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(env.Stderr, "kalamdb-server: %v\nRun 'kalamdb-server --help' for usage.\n", err)
		return 2
	}
	var ces config.Errors
	if errors.As(err, &ces) {
		fmt.Fprintf(env.Stderr, "kalamdb-server: invalid configuration:\n")
		for _, e := range ces {
			fmt.Fprintf(env.Stderr, "  %s\n", e)
		}
		return 1
	}
	fmt.Fprintf(env.Stderr, "kalamdb-server: %v\n", err)
	return 1
}

type usageError struct{ error }

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// NewRoot returns the root command with every subcommand.
func NewRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "kalamdb-server",
		Short:         "KalamDB server: tables over a pluggable storage backend, served as a JSON HTTP API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = versionString()
	root.SetVersionTemplate("kalamdb-server {{.Version}}\n")
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.AddCommand(newServe(env), newConfig(env), newBackends(env), newVersion(env), newSQL(env), newBackup(env), newRestore(env), newMigrate(env))
	return root
}

// overrides are the flags shared by serve and config check.
type overrides struct {
	configPath string
	host       string
	port       string
	backend    string
	logLevel   string
	logFormat  string
	sets       []string
}

func (o *overrides) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "configuration file (default $"+config.EnvConfigPath+", else ./"+config.DefaultPath+")")
	f.StringVar(&o.host, "host", "", "address to listen on (server.host)")
	f.StringVar(&o.port, "port", "", "TCP port to listen on (server.port)")
	f.StringVar(&o.backend, "backend", "", "storage backend (storage.backend); see 'kalamdb-server backends'")
	f.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (log.level)")
	f.StringVar(&o.logFormat, "log-format", "", "text or json (log.format)")
	f.StringArrayVar(&o.sets, "set", nil, "set any key, as section.key=value (repeatable), e.g. --set storage.rocksdb.path=/srv/kalamdb")
}

// load reads the configuration with the flags that were given and checks
// it as the server will (server.Check), so that every problem, of the file
// and of the backend sections alike, is reported at once. It also returns
// the canonical name of the storage backend.
func (o *overrides) load(cmd *cobra.Command, env Env) (*config.Config, string, string, error) {
	cfg, path, err := o.read(cmd, env)
	if cfg == nil {
		return nil, path, "", err
	}
	backend, cerr := server.Check(cfg, env.backends())
	var all config.Errors
	for _, e := range []error{err, cerr} {
		var ces config.Errors
		if errors.As(e, &ces) {
			for _, ce := range ces {
				if !slices.ContainsFunc(all, func(x *config.Error) bool { return x.Error() == ce.Error() }) {
					all = append(all, ce)
				}
			}
		} else if e != nil {
			return nil, path, "", e
		}
	}
	if len(all) > 0 {
		return nil, path, "", all
	}
	return cfg, path, backend, nil
}

// read reads the configuration with the flags that were given.
func (o *overrides) read(cmd *cobra.Command, env Env) (*config.Config, string, error) {
	flags := map[string]config.FlagValue{}
	f := cmd.Flags()
	for _, x := range []struct{ flag, key, value string }{
		{"host", "server.host", o.host},
		{"port", "server.port", o.port},
		{"backend", "storage.backend", o.backend},
		{"log-level", "log.level", o.logLevel},
		{"log-format", "log.format", o.logFormat},
	} {
		if f.Changed(x.flag) {
			flags[x.key] = config.FlagValue{Flag: "--" + x.flag, Value: x.value}
		}
	}
	for _, s := range o.sets {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, "", usageError{fmt.Errorf("--set %q: want section.key=value", s)}
		}
		flags[k] = config.FlagValue{Flag: "--set " + k, Value: v}
	}
	opts := config.Options{
		Path:          o.configPath,
		Environ:       env.Environ,
		Flags:         flags,
		KnownSections: env.backends().Names(),
	}
	path := config.ResolvePath(opts)
	cfg, err := config.Load(opts)
	return cfg, path, err
}

func newServe(env Env) *cobra.Command {
	var o overrides
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server until SIGINT or SIGTERM",
		Long: `Run the server on the configured storage backend until SIGINT or SIGTERM.

On the first signal the server stops accepting connections, finishes the
requests in flight, stops background work, flushes if configured and closes
the backend. A second signal exits at once.

SIGHUP reloads the configuration: the users and their tokens, the TLS
certificate, log.level and log.access change at once; other changes are
logged as needing a restart. A file with a problem changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, _, err := o.load(cmd, env)
			if err != nil {
				return err
			}
			restrictFileModes()
			log, level := server.NewLogger(cfg.Log, env.Stderr)
			// Libraries that log through slog (the Redis client, say) reach
			// the same log.
			slog.SetDefault(log)
			signals, stop := env.Signals()
			defer stop()
			s, err := server.Open(context.Background(), cfg, log, env.backends())
			if err != nil {
				return err
			}
			s.ReloadWith(func() (*config.Config, error) {
				cfg, _, _, err := o.load(cmd, env)
				return cfg, err
			}, level)
			if _, err := s.Listen(); err != nil {
				_ = s.Shutdown(context.Background())
				return err
			}
			return s.Run(context.Background(), signals, func() { env.Exit(2) })
		},
	}
	o.register(cmd)
	return cmd
}

func newConfig(env Env) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("config needs a subcommand: check")}
		}}
	var o overrides
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective values, secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, backend, err := o.load(cmd, env)
			if err != nil {
				return err
			}
			decoded, err := decodeSections(env.backends(), cfg, backend)
			if err != nil {
				return err
			}
			out, err := cfg.Effective(decoded)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "# %s is valid; storage backend %q\n# relative paths of the file lead from %s\n", path, backend, cfg.Dir())
			for _, w := range cfg.Warnings() {
				fmt.Fprintf(env.Stdout, "# warning: %s\n", w)
			}
			fmt.Fprintf(env.Stdout, "\n%s", out)
			return nil
		},
	}
	o.register(check)
	cmd.AddCommand(check)
	return cmd
}

// decodeSections returns what each backend makes of its [storage.<name>]
// section, defaults filled in and paths resolved: every section present, and
// the selected backend's even when the file has none.
func decodeSections(set *backends.Set, cfg *config.Config, backend string) (map[string]any, error) {
	out := map[string]any{}
	selected := false
	for _, name := range cfg.SectionNames() {
		d, err := set.Decode(name, cfg.Section(name))
		if err != nil {
			return nil, err
		}
		out[name] = d
		if b, ok := set.Lookup(name); ok && b.Name == backend {
			selected = true
		}
	}
	if !selected {
		d, err := set.Decode(backend, cfg.Section(backend))
		if err != nil {
			return nil, err
		}
		out[backend] = d
	}
	return out, nil
}

func newBackends(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "backends",
		Short: "List the storage backends this binary can open",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tALIASES\tDURABLE\tDESCRIPTION")
			set := env.backends()
			for _, b := range set.List() {
				aliases := strings.Join(set.AliasesOf(b.Name), ", ")
				if aliases == "" {
					aliases = "-"
				}
				durable := "no"
				if b.Durable {
					durable = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Name, aliases, durable, b.Summary)
			}
			return tw.Flush()
		},
	}
}

func newVersion(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(env.Stdout, "kalamdb-server %s\n", versionString())
			return nil
		},
	}
}

// versionString is Version plus what the binary knows of its build.
func versionString() string {
	parts := []string{Version}
	if Commit != "" {
		parts = append(parts, "commit "+Commit)
	} else if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if len(s.Value) > 12 {
					s.Value = s.Value[:12]
				}
				parts = append(parts, "commit "+s.Value)
			case "vcs.modified":
				if s.Value == "true" {
					parts = append(parts, "modified")
				}
			}
		}
	}
	parts = append(parts, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	return strings.Join(parts, " ")
}
