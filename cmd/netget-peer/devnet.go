package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/cmd/netget-peer/devnet"
	"github.com/netget/netget-peer/record"
)

func devnetCommand() *cli.Command {
	def := devnet.DefaultConfig()
	return &cli.Command{
		Name:  "devnet",
		Usage: "run a whole local network on this machine, with a live web page",
		Description: "Starts, in this process and on 127.0.0.1 only, registries and service nodes that provide\n" +
			"sample services (DatabaseService, CacheService, WebApp, QueueService), a gateway node\n" +
			"and a WebSocket bridge serving a page that finds them through the handshaker script.\n" +
			"Prints the registries' bootstrap addresses, commands to try from another terminal and\n" +
			"the page's URL, then runs until Ctrl-C. The network is \"devnet\" unless --network says\n" +
			"otherwise. --churn stops and restarts service nodes so health checks and withdrawals\n" +
			"show on the page.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "registries", Value: def.Registries, Usage: "how many registries"},
			&cli.IntFlag{Name: "nodes", Value: def.Nodes, Usage: "how many service nodes"},
			&cli.StringFlag{Name: "bridge", Value: "127.0.0.1:8787", Usage: "`host:port` of the bridge and page; :0 picks a free port"},
			&cli.BoolFlag{Name: "churn", Usage: "stop and restart service nodes on a schedule"},
			&cli.DurationFlag{Name: "churn-every", Value: 8 * time.Second, Usage: "time between two churn steps"},
		},
		Action: devnetAction,
	}
}

func devnetAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError("devnet takes no arguments, got %q", c.Args().Slice())
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg := devnet.DefaultConfig()
	if c.IsSet("network") {
		cfg.Network = c.String("network")
	}
	cfg.Registries, cfg.Nodes, cfg.Logger = c.Int("registries"), c.Int("nodes"), log
	if c.Bool("churn") {
		cfg.Churn = c.Duration("churn-every")
		if cfg.Churn <= 0 {
			return usageError("--churn-every %s: must be positive", cfg.Churn)
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%w", err)
	}
	addr, err := loopbackAddr("bridge", c.String("bridge"))
	if err != nil {
		return err
	}
	var metrics *metricsServer
	if c.IsSet("metrics") {
		maddr, err := loopbackAddr("metrics", c.String("metrics"))
		if err != nil {
			return err
		}
		if metrics, err = listenMetrics(maddr); err != nil {
			return err
		}
		defer metrics.close()
		cfg.Registerer = metrics.reg
	}
	ctx := c.Context
	l, err := listenBridge(ctx, addr)
	if err != nil {
		return fmt.Errorf("%w (pass --bridge :0 to pick a free port)", err)
	}
	// The gateway serves the bridge on l, with the devnet's page at /.
	cfg.Gateway = func(gw *netget.Config, page http.Handler) {
		gw.BridgeListener, gw.Bridge = l, bridge.DefaultConfig("", "")
		gw.Bridge.Extra, gw.Bridge.Logger = page, log.With("component", "bridge")
	}
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		l.Close() // in case the gateway never took it
		return fmt.Errorf("devnet: %w", err)
	}
	defer d.Close()
	gw := d.Gateway()
	if metrics != nil {
		metrics.serve(func() healthz { return nodeHealthz(gw.DHT()) }, log)
	}
	printDevnet(c.App.Writer, d, gw.BridgeURL())
	d.Run(ctx)
	log.Info("devnet shutting down")
	return nil
}

// loopbackAddr checks the devnet's --flag address: a port, on a loopback
// host; an empty host means 127.0.0.1, never all interfaces.
func loopbackAddr(flag, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageError("--%s %q: want host:port, e.g. 127.0.0.1:8787 or :0", flag, addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", usageError("--%s %q: the devnet listens on loopback only (127.0.0.1, [::1] or localhost)", flag, addr)
	}
	return net.JoinHostPort(host, port), nil
}

// printDevnet tells the user how to use the devnet.
func printDevnet(w io.Writer, d *devnet.Devnet, url string) {
	boot := d.Bootstrap()
	self := selfCommand()
	st := d.State()
	fmt.Fprintf(w, "netget devnet %q: %d registries, %d service nodes, all on 127.0.0.1\n", d.Network(), len(st.Registries), len(st.Nodes))
	fmt.Fprintf(w, "it runs network %q, not the default %q: other commands need --network %s to join it\n\n",
		d.Network(), record.DefaultNetwork, d.Network())
	fmt.Fprintln(w, "registries (bootstrap addresses):")
	for _, a := range boot {
		fmt.Fprintln(w, "  "+a)
	}
	fmt.Fprintln(w, "\nservices:")
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  %-16s %s\n", n.Service, n.Peer)
	}
	fmt.Fprintln(w, "\ntry from another terminal:")
	prefix := fmt.Sprintf("%s --network %s --bootstrap %s", self, d.Network(), boot[0])
	fmt.Fprintf(w, "  %s find DatabaseService\n", prefix)
	fmt.Fprintf(w, "  %s provide MyService --meta version=1 --listen /ip4/127.0.0.1/tcp/0 --identity /tmp/my-service.key\n", prefix)
	fmt.Fprintf(w, "\npage: %s/\n\nCtrl-C stops the devnet.\n", url)
}

// selfCommand is how the user runs this program again: "go run
// ./cmd/netget-peer" under go run, "netget-peer" when that is on PATH,
// else the executable's path.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "netget-peer"
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/netget-peer"
	}
	if p, err := exec.LookPath("netget-peer"); err == nil {
		if a, b := realPath(p), realPath(exe); a == b {
			return "netget-peer"
		}
	}
	return exe
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	abs, _ := filepath.Abs(p)
	return abs
}
