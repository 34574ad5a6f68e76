package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	logging "github.com/ipfs/go-log/v2"
	"github.com/urfave/cli/v2"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// run executes the command line args and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, normalizeArgs(app, args))
	if err != nil {
		fmt.Fprintf(stderr, "netget-peer: %v\n", err)
	}
	return exitCode(err)
}

func newApp(stdout, stderr io.Writer) *cli.App {
	commands := []*cli.Command{devnetCommand(), registryCommand(), daemonCommand(), provideCommand(), unprovideCommand(), findCommand(), connectCommand(), pingCommand(), statusCommand(), registriesCommand(), idCommand(), versionCommand()}
	durations := durationFlags(append(globalFlags(), bridgeFlags()...))
	for _, c := range commands {
		maps.Copy(durations, durationFlags(c.Flags))
	}
	onUsageError := func(_ *cli.Context, err error, _ bool) error {
		return usageError("%w (see --help)", explainParse(err, durations))
	}
	for _, c := range commands {
		c.OnUsageError = onUsageError
	}
	app := &cli.App{
		Name:  "netget-peer",
		Usage: "peer-to-peer service discovery on a Kademlia DHT",
		UsageText: "netget-peer [global options] --bootstrap ADDR          run a node until interrupted\n" +
			"netget-peer [global options] command [options] [args]",
		Description: "A service node runs `netget-peer provide NAME` and becomes discoverable; anyone runs\n" +
			"`netget-peer find NAME` and gets its peer ID, addresses and metadata, signed by the\n" +
			"provider and verified by the finder. Start a network with `netget-peer registry`.\n" +
			"Flags may come before or after the command and its arguments.",
		Flags:     append(append(globalFlags(), providerFlags()...), bridgeFlags()...), // the bare form runs the daemon
		Commands:  commands,
		Action:    daemonAction,
		Writer:    stdout,
		ErrWriter: stderr,
		Version:   versionString(), // --version, as `netget-peer version`
		// Errors are printed and mapped to exit statuses by run, never here.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Before: func(c *cli.Context) error {
			configureLibp2pLogging(c.String("log-level"))
			return nil
		},
	}
	withConfig(app)
	return app
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "network", Value: record.DefaultNetwork, EnvVars: []string{"NETGET_NETWORK"},
			Usage: "network to join, [a-z0-9-]{1,32}; networks never see each other's records"},
		&cli.StringSliceFlag{Name: "bootstrap", Aliases: []string{"b"},
			Usage: "registry multiaddr with /p2p/ID to join through (repeatable, or comma-separated in $" + bootstrap.EnvVar + ") [$" + bootstrap.EnvVar + "]"},
		&cli.StringFlag{Name: "data-dir", EnvVars: []string{"NETGET_DATA_DIR"},
			Usage: "directory for the identity key, the record datastore and the daemon's socket, locked by the node using it " +
				"(default: " + defaultHomeHelp() + "; registries use its registry/ subdirectory)"},
		&cli.IntFlag{Name: "datastore-memtable-mib", Value: dht.DefaultMemtableBytes >> 20,
			Usage: "MiB of Pebble's write buffer (memtable) in the record datastore, 1 to 1024: larger merges writes " +
				"into a big datastore less often (less CPU a write), at that much memory twice while one is flushed"},
		&cli.StringFlag{Name: "identity",
			Usage: "identity key file, created 0600 on first run (default: identity.key in the data dir; find uses a fresh key)"},
		&cli.StringFlag{Name: "psk", EnvVars: []string{"NETGET_PSK_FILE"},
			Usage: "private network: only peers holding this pre-shared key `file` (go-libp2p swarm key format, mode 0600) connect; TCP only, no QUIC"},
		&cli.StringSliceFlag{Name: "listen", Aliases: []string{"l"},
			Usage: "multiaddr to listen on (repeatable; default TCP and QUIC on all interfaces, port 4001 for registries, any port otherwise)"},
		&cli.StringFlag{Name: "dht-mode", Usage: "DHT role: server, client or auto (default: client for find, server otherwise)"},
		reachabilityFlag(),
		&cli.IntFlag{Name: "conn-low", Usage: "connections the connection manager trims back to once above --conn-high " +
			"(default: 100; registries 1000); registries' and protected connections are never trimmed"},
		&cli.IntFlag{Name: "conn-high", Usage: "connections above which the connection manager trims (default: 200; registries 2000)"},
		&cli.IntFlag{Name: "max-conns", Usage: "connections held at once, inbound and outbound together; the resource manager refuses any beyond it " +
			"(default: go-libp2p's limit scaled to the machine's memory, 252 inbound on 24 GiB; registries 4096); at least --conn-high"},
		&cli.DurationFlag{Name: "walk-dial-timeout", Value: dht.DefaultConfig("").WalkDialTimeout,
			Usage: "bound on each dial a find's DHT walk makes, to a peer that may be gone (a Go duration such as 2s)"},
		&cli.BoolFlag{Name: "no-fast-path", Usage: "ask no registry directly: find and provide use the DHT path alone (for comparing paths)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error (logs go to stderr)"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format on stderr: text or json"},
		&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus /metrics and /healthz on this `host:port` (e.g. 127.0.0.1:9464)"},
		&cli.StringFlag{Name: "config", EnvVars: []string{"NETGET_CONFIG"},
			Usage: "TOML `file` whose keys are flag names (network = \"production\", health-interval = \"30s\"); flags and environment win"},
	}
}

// defaultHomeHelp names the default data dir for --help.
func defaultHomeHelp() string {
	h, err := netgetHome()
	if err != nil {
		return "$NETGET_HOME, or ~/.netget"
	}
	if os.Getenv("NETGET_HOME") != "" {
		return h + ", from $NETGET_HOME"
	}
	return h + ", or $NETGET_HOME when set"
}

// netgetHome is $NETGET_HOME, or ~/.netget.
func netgetHome() (string, error) {
	if h := os.Getenv("NETGET_HOME"); h != "" {
		return h, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory (set NETGET_HOME): %w", err)
	}
	return filepath.Join(home, ".netget"), nil
}

// newLogger returns the process logger on stderr, at --log-level, in
// --log-format.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := c.String("log-format"); f {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	default:
		return nil, usageError("--log-format %q: want text or json", f)
	}
}

// configureLibp2pLogging quiets go-libp2p's own logger, which reports
// routine events (a listener closing at shutdown) as errors, unless the
// user asked for debug output or set GOLOG_LOG_LEVEL themselves.
func configureLibp2pLogging(level string) {
	if os.Getenv("GOLOG_LOG_LEVEL") != "" {
		return
	}
	if strings.EqualFold(level, "debug") {
		logging.SetAllLoggers(logging.LevelWarn)
		return
	}
	logging.SetAllLoggers(logging.LevelFatal)
}

// durationFlags maps the names and aliases of the duration flags in flags.
func durationFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		if _, ok := f.(*cli.DurationFlag); ok {
			for _, n := range f.Names() {
				m[n] = true
			}
		}
	}
	return m
}

// flagParseError matches the flag package's message for a value that does
// not parse.
var flagParseError = regexp.MustCompile(`^invalid value "(.*)" for flag -([A-Za-z0-9-]+): parse error$`)

// explainParse rewrites the flag package's "parse error" for a duration
// flag into what the flag wants; other errors pass unchanged.
func explainParse(err error, durations map[string]bool) error {
	m := flagParseError.FindStringSubmatch(err.Error())
	if m == nil || !durations[m[2]] {
		return err
	}
	return fmt.Errorf("--%s %q: want a Go duration such as 90m, 30s or 1h30m", m[2], m[1])
}
