package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/cmd/netget-peer/control"
)

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run a long-lived node with a local control API (the same as `netget-peer --bootstrap ADDR`)",
		Description: "Joins the network with this node's identity (identity.key in the data dir, $NETGET_HOME by\n" +
			"default), keeps its records in the data dir's datastore, and serves a control API (HTTP +\n" +
			"JSON) on <data-dir>/control.sock, mode 0600. `provide`, `unprovide`, `find` and `status`\n" +
			"use it whenever it runs. Services provided through it are republished until unprovided,\n" +
			"kept in <data-dir>/services.json and provided again when the daemon restarts. On SIGINT or\n" +
			"SIGTERM it withdraws them (they stay in services.json) and exits.\n" +
			"Prints its full multiaddrs on stdout once the control socket is up. One daemon per data\n" +
			"dir: a second one exits with an \"already running\" error.",
		Flags:  bridgeFlags(),
		Action: daemonAction,
	}
}

// daemonRole is the daemon (netget.Daemon): the service node, with its
// records in the data dir and the data dir locked.
func daemonRole() role { return role{preset: netget.Daemon} }

// daemonAction runs the daemon until interrupted: `netget-peer daemon`, or
// bare `netget-peer --bootstrap ADDR`.
func daemonAction(c *cli.Context) error {
	if c.Args().Present() {
		if c.Command.Name == "daemon" {
			return usageError("daemon takes no arguments, got %q", c.Args().Slice())
		}
		return usageError("unknown command %q (see --help)", c.Args().First())
	}
	if c.Command.Name != "daemon" {
		announceBare(c)
	}
	ctx := c.Context
	n, err := startNode(ctx, c, daemonRole(), withBridge(c))
	if err != nil {
		return err
	}
	defer n.Close() // the bridge first: top-down
	serve, err := controlServer(n)
	if err != nil {
		return err
	}
	for _, a := range n.Addrs() {
		fmt.Fprintln(c.App.Writer, a)
	}
	n.log.Info("daemon running", "node", n.describe(), "control", control.SocketPath(n.dataDir),
		"bootstrap_peers", len(n.Joined()))
	err = serve(ctx)
	n.log.Info("daemon stopped")
	return err
}

// controlServer listens on n's control socket and returns the function
// that serves it until ctx ends: the daemon's and a registry's.
func controlServer(n *node) (serve func(ctx context.Context) error, err error) {
	cfg := control.DefaultConfig(n.dataDir)
	cfg.Logger, cfg.DHTMode, cfg.Version = n.log, n.mode.String(), versionString()
	cfg.Registries = n.Node
	srv, err := control.NewServer(n.Node, cfg)
	if err != nil {
		return nil, err
	}
	// The data-dir lock startNode took proves any socket there is stale.
	ln, err := control.Listen(n.dataDir)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return srv.Serve(ctx, ln) }, nil
}

// daemonClient returns a client for the daemon serving this command's data
// dir (--data-dir, or $NETGET_HOME) and that dir, or a nil client when no
// daemon answers there or --no-daemon is set.
func daemonClient(c *cli.Context) (*control.Client, string, error) {
	if c.Bool("no-daemon") {
		return nil, "", nil
	}
	dir, err := dataDir(c, serviceRole())
	if err != nil {
		return nil, "", err
	}
	if err := netget.CheckDataDir(dir, false); err != nil {
		return nil, dir, err
	}
	cl, err := control.Dial(c.Context, dir)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		return nil, dir, nil
	case err != nil:
		return nil, dir, fmt.Errorf("%w (pass --no-daemon to run a node of its own)", err)
	}
	if c.IsSet("allow-provider") {
		cl.Close()
		return nil, dir, usageError("--allow-provider filters a node of its own, not the daemon's results: " +
			"pass --no-daemon, or start the daemon with --allow-provider")
	}
	if log, err := newLogger(c); err == nil {
		var ignored []string
		for _, f := range []string{"bootstrap", "listen", "identity", "dht-mode", "psk", "reachability", "conn-low", "conn-high", "max-conns"} {
			if c.IsSet(f) {
				ignored = append(ignored, "--"+f)
			}
		}
		if len(ignored) > 0 {
			log.Info("using the daemon; flags for a node of its own are ignored (--no-daemon runs one)",
				"data_dir", dir, "ignored", ignored)
		}
	}
	return cl, dir, nil
}

// daemonNetwork is the network a request to the daemon names: the one the
// user chose, if they did, so a daemon on another network refuses it.
func daemonNetwork(c *cli.Context) string {
	if c.IsSet("network") {
		return c.String("network")
	}
	return ""
}

// daemonError reports a failed control API call: the daemon's refusal of
// bad input is a usage error.
func daemonError(dir string, err error) error {
	err = fmt.Errorf("daemon in %s: %w", dir, err)
	var e *control.Error
	switch {
	case errors.As(err, &e) && e.Code == control.CodeWrongNetwork:
		return &exitError{code: exitUsage, err: fmt.Errorf("%w (pass --no-daemon to use a node of its own)", err)}
	case errors.As(err, &e) && e.Status == 400:
		return &exitError{code: exitUsage, err: err}
	}
	return err
}

// noDaemonFlag forces a command to run a node of its own.
func noDaemonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-daemon", Usage: "run a node of its own even when a daemon serves the data dir"}
}

// announceBare says, first thing, what a bare `netget-peer` (no command,
// but bootstrap peers from --bootstrap or $NETGET_BOOTSTRAP) is about to
// do: a user who typed it by accident learns it starts a node that
// listens, by default, on every interface.
func announceBare(c *cli.Context) {
	listen := strings.Join(netget.Daemon().Host.ListenAddrs, " ")
	where := " (every interface; narrow it with --listen)"
	if c.IsSet("listen") {
		listen, where = strings.Join(c.StringSlice("listen"), " "), ""
	}
	src := "--bootstrap"
	if !c.IsSet("bootstrap") {
		src = "$" + bootstrap.EnvVar
	}
	fmt.Fprintf(c.App.ErrWriter, "netget-peer: no command given, so running a node until interrupted, as `netget-peer daemon` does:\n"+
		"  network %s, joining through the bootstrap peers in %s, listening on %s%s.\n"+
		"  `netget-peer --help` lists the commands.\n", c.String("network"), src, listen, where)
}
