package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// commands are the command groups under pairingd, in the order help lists
// them. A new group is one file with a func(*app) *cobra.Command and one
// line here.
var commands = []func(*app) *cobra.Command{
	serveCommand, migrateCommand, keysCommand, pinsCommand, linksCommand,
	messagesCommand, eventsCommand, messengerCommand, clientsCommand, signingKeysCommand,
	backupCommand, copyCommand, secretCommand, demoCommand, versionCommand,
}

const rootLong = `pairingd links bot users (Telegram, Messenger) to website accounts.

Without a command it serves. Without --config the embedded default runs:
SQLite file pairingd.db in the working directory, listening on
127.0.0.1:8080. Every config key can be set with PAIRINGD_<PATH>, e.g.
PAIRINGD_SERVER_LISTEN=0.0.0.0:8080.

Exit codes: 0 success, 1 runtime error, 2 usage or configuration error.`

// run is the whole program; main only wires the process to it, and tests
// call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:     "pairingd",
		Short:   "link bot users to website accounts",
		Long:    rootLong,
		Version: buildInfo().String(),
		Args:    noCommand,
		RunE:    a.serve,
		// Errors and usage are printed once, by exit, to stderr.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.PersistentFlags().StringVar(&a.configPath, "config", getenv("PAIRINGD_CONFIG"),
		"config file (YAML); default $PAIRINGD_CONFIG, else the embedded default")
	for _, c := range commands {
		root.AddCommand(c(a))
	}
	// A nil slice would make cobra read os.Args.
	root.SetArgs(append([]string{}, args...))
	cmd, err := root.ExecuteContextC(ctx)
	return a.exit(cmd, err)
}

// app is what every command runs with: the process's environment and
// streams, and the config file named on the command line.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	configPath     string
}

// config loads and validates the configuration and makes the logger.
func (a *app) config() (Config, *slog.Logger, error) {
	cfg, err := loadConfig(a.configPath, a.getenv)
	if err != nil {
		return Config{}, nil, configError{err}
	}
	return cfg, newLogger(cfg.Log, a.stderr), nil
}

// withService runs fn on the opened (and migrated) database and the
// service, with the configuration of the command line.
func (a *app) withService(cmd *cobra.Command, fn func(*store.Store, *pairing.Service) error) error {
	cfg, log, err := a.config()
	if err != nil {
		return err
	}
	return withService(cmd.Context(), cfg, log, fn)
}

// withStore runs fn on the opened (and migrated) database.
func (a *app) withStore(cmd *cobra.Command, fn func(*store.Store) error) error {
	cfg, log, err := a.config()
	if err != nil {
		return err
	}
	st, err := openStore(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// exit prints a failed command's error to stderr and gives the exit code:
// 2 and the command's usage for a wrong command line, 2 for a wrong
// configuration, 1 for anything else.
func (a *app) exit(cmd *cobra.Command, err error) int {
	var ue usageError
	var ce configError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "%v\n\n%s", err, cmd.UsageString())
		return 2
	case errors.As(err, &ce):
		fmt.Fprintln(a.stderr, err)
		return 2
	default:
		fmt.Fprintln(a.stderr, "error:", err)
		return 1
	}
}

// usageError: the command line is wrong.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// configError: the configuration does not load or validate.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }

// noCommand refuses arguments where a command takes none, which at the
// top level means an unknown command.
func noCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageError{msg}
}

// group is a command that holds subcommands; without one, or with an
// unknown one, it is a usage error.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Sprintf("usage: %s <command>", cmd.CommandPath())}
			}
			return usageError{fmt.Sprintf("unknown %s command %q", cmd.Name(), args[0])}
		},
	}
	g.AddCommand(subs...)
	return g
}

// nArgs checks that a command got exactly n arguments; usage is the error
// text otherwise.
func nArgs(n int, usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{usage}
		}
		return nil
	}
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens and migrates the database.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.Database, log)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return st, nil
}

// newService builds the pairing service on an open store, with the server
// secret from pairing.secret, pairing.secret_file or (SQLite) the file
// beside the database (store.ServerSecret).
func newService(ctx context.Context, cfg Config, st *store.Store, log *slog.Logger, opts ...pairing.Option) (*pairing.Service, error) {
	pc := cfg.Pairing
	secret, err := serverSecret(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	pc.Secret = secret
	svc, err := pairing.New(st, pc, append(opts, pairing.WithLogger(log))...)
	if err != nil {
		return nil, err
	}
	applyChannelOptions(cfg, svc)
	return svc, nil
}

// serverSecret resolves the secret that keys PIN hashes. A secret that
// cannot be found is a configuration error (exit 2), whose message says
// what to set.
func serverSecret(ctx context.Context, cfg Config, st *store.Store) ([]byte, error) {
	secret, err := st.ServerSecret(ctx, cfg.Pairing.Secret, cfg.Pairing.SecretFile, cfg.Database)
	if errors.Is(err, store.ErrSecretConfig) {
		return nil, configError{err}
	}
	return secret, err
}

func withService(ctx context.Context, cfg Config, log *slog.Logger, fn func(*store.Store, *pairing.Service) error) error {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := newService(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	return fn(st, svc)
}
