package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
)

// chromiumPath is Debian's chromium, which scripts/chromium.sh installs.
const chromiumPath = "/usr/bin/chromium"

// TestBrowserHandshaker: a page on another origin embeds the handshaker
// by <script src> from a bridge in front of a real netget network (1
// registry, 3 providers, the bridge's node), and headless Chromium finds
// the providers through it; the ES module works the same; the page
// reconnects when the bridge restarts; a page on an origin outside the
// allowlist is refused with code forbidden.
func TestBrowserHandshaker(t *testing.T) {
	requireChromium(t)
	fx := newBrowserFixture(t)
	t.Run("go client", func(t *testing.T) {
		checkRecords(t, goFind(t, fx.bridgeURL, fx.allowed, "DatabaseService"), fx.want)
	})
	fx.browser = startBrowser(t)
	t.Run("script tag", fx.scriptTag)
	t.Run("readme snippet", fx.readmeSnippet)
	t.Run("stream and errors", fx.streamAndErrors)
	t.Run("reconnect", fx.reconnect)
	t.Run("es module", fx.esModule)
	t.Run("disallowed origin", fx.disallowedOrigin)
}

// browserFixture is a netget network with a bridge, two page origins and a
// browser.
type browserFixture struct {
	t          *testing.T // the parent test, which owns the bridges
	node       *dht.Node  // the DHT node the bridge's node joins
	bridgePeer string     // the bridge's node's peer ID
	want       map[string]map[string]string
	bridgeURL  string
	bridgeArgs []string
	stopBridge func(context.Context) error
	allowed    string // base URL of the pages on the allowed origin
	denied     string // base URL of the pages on another origin
	browser    context.Context
}

// newBrowserFixture starts 1 registry and 4 nodes, publishes
// DatabaseService from 3 of them, serves the bridge on the 4th with only
// the allowed origin listed, and serves the test pages on both origins.
func newBrowserFixture(t *testing.T) *browserFixture {
	network := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 4})
	fx := &browserFixture{t: t, node: network.Nodes[3], want: map[string]map[string]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, p := range network.Nodes[:3] {
		meta := map[string]string{"engine": "postgres", "replica": strconv.Itoa(i)}
		if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", Meta: meta, TTL: 10 * time.Minute}); err != nil {
			t.Fatalf("provider %d: publish: %v", i, err)
		}
		fx.want[p.Host().ID().String()] = meta
	}
	allowedL, deniedL := listen(t), listen(t)
	fx.bridgeArgs = []string{"--bridge", "127.0.0.1:0", "--bridge-origin", "http://" + allowedL.Addr().String()}
	fx.bridgeURL, fx.stopBridge, fx.bridgePeer = runBridge(t, fx.node, nil, fx.bridgeArgs...)
	fx.allowed, fx.denied = servePages(t, allowedL, fx.bridgeURL), servePages(t, deniedL, fx.bridgeURL)
	return fx
}

func (fx *browserFixture) scriptTag(t *testing.T) {
	navigate(t, fx.browser, fx.allowed+"/classic.html")
	var welcome struct{ Peer, Network string }
	evalOK(t, fx.browser, `netget.ready`, &welcome)
	if welcome.Peer != fx.bridgePeer || welcome.Network != "development" {
		t.Fatalf("welcome: got %+v, want peer %s", welcome, fx.bridgePeer)
	}
	var records []bridge.Record
	start := time.Now()
	evalOK(t, fx.browser, `netget.find("DatabaseService")`, &records)
	t.Logf("await netget.find took %s in the page", time.Since(start))
	checkRecords(t, records, fx.want)
}

func (fx *browserFixture) streamAndErrors(t *testing.T) {
	var got struct {
		Streamed []string
		Count    int
		NotFound string
		BadName  string
	}
	evalOK(t, fx.browser, `(async () => {
		const streamed = [];
		const count = await netget.findStream("DatabaseService", r => streamed.push(r.peer), { limit: 2 });
		const code = p => p.then(() => "resolved", e => e.code);
		return { Streamed: streamed, Count: count,
			NotFound: await code(netget.find("NobodyService", { timeout: 5000 })),
			BadName: await code(netget.find("bad name!")) };
	})()`, &got)
	if got.Count != 2 || len(got.Streamed) != 2 || got.BadName != "bad_request" || got.NotFound != "not_found" {
		t.Fatalf("got %+v; want 2 streamed, not_found and bad_request", got)
	}
	for _, p := range got.Streamed {
		if fx.want[p] == nil {
			t.Errorf("streamed unknown peer %s", p)
		}
	}
}

// reconnect restarts the bridge on its address: the page learns of it,
// reconnects on its own, says hello again, and a find made meanwhile
// waits for the new session.
func (fx *browserFixture) reconnect(t *testing.T) {
	var subscribed bool
	evalOK(t, fx.browser, `(() => {
		window.events = [];
		netget.on("open", () => events.push("open"));
		window.bridgeClosed = new Promise(r => netget.on("close", e => {
			events.push("close " + e.code + " " + e.reconnecting); r(); }));
		return true;
	})()`, &subscribed)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fx.stopBridge(ctx); err != nil {
		t.Fatalf("stop bridge: %v", err)
	}
	args := slices.Clone(fx.bridgeArgs)
	args[1] = strings.TrimPrefix(fx.bridgeURL, "http://") // the same address
	// The new bridge belongs to the parent test: the later subtests use it.
	again, stop, _, err := bridgeApp(fx.t, fx.node, nil, args...)
	if err != nil || again != fx.bridgeURL {
		t.Fatalf("restarted bridge at %q (%v), want %s", again, err, fx.bridgeURL)
	}
	fx.stopBridge = stop
	var got struct {
		Records []bridge.Record
		Events  []string
	}
	evalOK(t, fx.browser, `bridgeClosed.then(async () =>
		({ Records: await netget.find("DatabaseService"), Events: events }))`, &got)
	checkRecords(t, got.Records, fx.want)
	if !slices.Equal(got.Events, []string{"close 1001 true", "open"}) {
		t.Fatalf("events %q, want a going-away close then a new open", got.Events)
	}
}

func (fx *browserFixture) esModule(t *testing.T) {
	navigate(t, fx.browser, fx.allowed+"/module.html")
	var got struct {
		Version int
		Global  string
		Records []bridge.Record
	}
	evalOK(t, fx.browser, `new Promise(r => window.esm ? r() : addEventListener("esm-ready", r)).then(async () =>
		({ Version: esm.PROTOCOL_VERSION, Global: typeof window.netget,
		   Records: await esm.netget.find("DatabaseService") }))`, &got)
	if got.Version != bridge.Version || got.Global != "undefined" {
		t.Fatalf("module: version %d, window.netget %s; want %d, undefined", got.Version, got.Global, bridge.Version)
	}
	checkRecords(t, got.Records, fx.want)
}

func (fx *browserFixture) disallowedOrigin(t *testing.T) {
	navigate(t, fx.browser, fx.denied+"/classic.html")
	var got struct{ Ready, Find, Message string }
	evalOK(t, fx.browser, `(async () => {
		const code = p => p.then(() => "resolved", e => e.code);
		let message = "";
		await netget.ready.catch(e => { message = e.message; });
		return { Ready: await code(netget.ready), Find: await code(netget.find("DatabaseService")), Message: message };
	})()`, &got)
	if got.Ready != "forbidden" || got.Find != "forbidden" || !strings.Contains(got.Message, "origin not allowed") {
		t.Fatalf("page on %s: got %+v, want forbidden / origin not allowed", fx.denied, got)
	}
}

// TestBridgeFlags: the --bridge flags build the bridge or fail as usage
// errors, and a started bridge serves its script and health check.
func TestBridgeFlags(t *testing.T) {
	node := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	tests := []struct {
		name     string
		args     []string
		wantErr  string
		wantCode int
	}{
		{"off", nil, "", 0},
		{"token without bridge", []string{"--bridge-token", "0123456789abcdef"}, "--bridge-token needs --bridge", exitUsage},
		{"short token", []string{"--bridge", "127.0.0.1:0", "--bridge-token", "s3cret"},
			"--bridge-token: token too short: 6 bytes, want at least 16", exitUsage},
		{"limit without bridge", []string{"--bridge-max-sessions-per-addr", "4"}, "--bridge-max-sessions-per-addr needs --bridge", exitUsage},
		{"bad limit", []string{"--bridge", "127.0.0.1:0", "--bridge-max-finds", "0"}, "max finds 0", exitUsage},
		{"bad watch limit", []string{"--bridge", "127.0.0.1:0", "--bridge-max-session-watches", "0"}, "max watches per session 0", exitUsage},
		{"bad record cache", []string{"--bridge", "127.0.0.1:0", "--bridge-record-cache", "-1"}, "record cache -1", exitUsage},
		{"reserve every descriptor", []string{"--bridge", "127.0.0.1:0", "--bridge-reserve-fds", "100000000"},
			"leaves none for the bridge", exitUsage},
		{"bad origin", []string{"--bridge", "127.0.0.1:0", "--bridge-origin", "app.example"}, `origin "app.example"`, exitUsage},
		{"bad service", []string{"--bridge", "127.0.0.1:0", "--bridge-service", "a b"}, "invalid service name", exitUsage},
		{"key without cert", []string{"--bridge", "127.0.0.1:0", "--bridge-tls-key", "k.pem"}, "cert file", exitUsage},
		{"missing cert", []string{"--bridge", "127.0.0.1:0", "--bridge-tls-cert", "/nonexistent.pem", "--bridge-tls-key", "/nonexistent.pem"},
			"load TLS certificate", exitUsage},
		{"bad address", []string{"--bridge", "127.0.0.1:99999"}, "--bridge 127.0.0.1:99999", exitFailure},
		{"bad channel limit", []string{"--bridge", "127.0.0.1:0", "--bridge-max-message-size", "0"}, "max message size 0", exitUsage},
		{"channel limit without bridge", []string{"--bridge-max-channels", "4"}, "--bridge-max-channels needs --bridge", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _, _, err := bridgeApp(t, node, nil, tt.args...)
			if tt.wantErr == "" {
				if err != nil || url != "" {
					t.Fatalf("got url %q, err %v; want no bridge", url, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != tt.wantCode {
				t.Fatalf("got %v (exit %d), want %q (exit %d)", err, exitCode(err), tt.wantErr, tt.wantCode)
			}
		})
	}
	reg := prometheus.NewRegistry()
	url, _, _ := runBridge(t, node, reg, "--bridge", "127.0.0.1:0", "--bridge-service", "DatabaseService")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("bridge URL %q", url)
	}
	for path, want := range map[string]string{bridge.PathScript: "netget handshaker", bridge.PathHealth: `"network":"development"`} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d %.100q", path, resp.StatusCode, body)
		}
	}
	// A page from an origin not allowed gets an error frame and the close,
	// and the bridge's metrics count the refusal by reason.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+bridge.PathWS, &websocket.DialOptions{
		Subprotocols: []string{bridge.Subprotocol}, HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if err != nil {
		t.Fatalf("dial the bridge: %v", err)
	}
	defer ws.CloseNow()
	_, frame, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(frame), "origin not allowed") {
		t.Fatalf("first frame from a foreign origin: %q, %v; want an origin error", frame, err)
	}
	waitFor(t, 10*time.Second, "the refused session ends", func() bool {
		s := gathered(t, reg, "netget_bridge_sessions")
		return len(s) == 1 && s[""] == 0
	})
	refusals := gathered(t, reg, "netget_bridge_refusals_total")
	if len(refusals) != len(bridge.Reasons()) || refusals[string(bridge.ReasonOrigin)] != 1 || refusals[string(bridge.ReasonHost)] != 0 {
		t.Fatalf("netget_bridge_refusals_total by reason: %v; want origin 1, every other reason 0", refusals)
	}
	if s := gathered(t, reg, "netget_bridge_sessions_total"); s[""] != 1 {
		t.Fatalf("netget_bridge_sessions_total: %v, want 1", s)
	}
}

// gathered returns metric name's values from reg, by their one label's
// value ("" for an unlabelled metric).
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			label := ""
			if len(m.GetLabel()) > 0 {
				label = m.GetLabel()[0].GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				out[label] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[label] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// requireChromium fails, never skips, when Chromium is missing.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("headless Chromium is required for the browser test and %s is missing (%v): "+
			"run scripts/chromium.sh as root (it runs apt-get install chromium), then rerun", chromiumPath, err)
	}
}

// bridgeApp runs the bridge flags through a cli app, as a command would
// (withBridge), on a netget node (netget.Client) joined to n, and returns
// the bridge's URL, stop (closing the node, its bridge first), the
// bridge's peer ID and the error; a started node stops when the test
// ends. reg, if set, receives the node's metrics, the bridge's included.
func bridgeApp(t *testing.T, n *dht.Node, reg prometheus.Registerer, args ...string) (string, func(context.Context) error, string, error) {
	t.Helper()
	var baseURL, id string
	var stop func(context.Context) error
	app := &cli.App{Name: "netget-peer", Flags: bridgeFlags(), Writer: io.Discard, ErrWriter: io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			cfg := netget.Client()
			cfg.Network, cfg.Registerer, cfg.Logger = n.Network(), reg, slog.New(slog.DiscardHandler)
			cfg.Bootstrap = []ma.Multiaddr{fullAddr(t, n)}
			if err := withBridge(c)(&cfg); err != nil {
				return err
			}
			node, err := netget.New(c.Context, cfg)
			if err != nil {
				return startError(c, err)
			}
			stop = func(context.Context) error { return node.Close() }
			t.Cleanup(func() { node.Close() })
			baseURL, id = node.BridgeURL(), node.ID().String()
			return nil
		}}
	err := app.RunContext(context.Background(), append([]string{"netget-peer"}, args...))
	return baseURL, stop, id, err
}

// fullAddr is n's first listen address with /p2p/<id>.
func fullAddr(t *testing.T, n *dht.Node) ma.Multiaddr {
	t.Helper()
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()})
	if err != nil || len(addrs) == 0 {
		t.Fatalf("addresses of %s: %v", n.Host().ID(), err)
	}
	return addrs[0]
}

// runBridge starts the bridge for n with args and returns its base URL,
// stop and peer ID.
func runBridge(t *testing.T, n *dht.Node, reg prometheus.Registerer, args ...string) (string, func(context.Context) error, string) {
	t.Helper()
	url, stop, id, err := bridgeApp(t, n, reg, args...)
	if err != nil || url == "" {
		t.Fatalf("start bridge %v: %q, %v", args, url, err)
	}
	return url, stop, id
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// servePages serves the test pages on l and returns their base URL.
func servePages(t *testing.T, l net.Listener, bridgeURL string) string {
	t.Helper()
	pages := map[string]string{
		"/classic.html": `<!doctype html><html><head><meta charset="utf-8"><title>netget classic</title>
<script src="` + bridgeURL + bridge.PathScript + `"></script></head><body>classic</body></html>`,
		"/readme.html": readmePage(t, bridgeURL),
		"/module.html": `<!doctype html><html><head><meta charset="utf-8"><title>netget module</title>
<script type="module">
import netget, { connect, PROTOCOL_VERSION } from "` + bridgeURL + bridge.PathModule + `";
window.esm = { netget, connect, PROTOCOL_VERSION };
window.dispatchEvent(new Event("esm-ready"));
</script></head><body>module</body></html>`,
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// goFind finds service through the bridge with a Go WebSocket client.
func goFind(t *testing.T, bridgeURL, origin, service string) []bridge.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(bridgeURL, "http") + bridge.PathWS
	c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{Subprotocols: []string{bridge.Subprotocol},
		HTTPHeader: http.Header{"Origin": {origin}}})
	if err != nil {
		t.Fatalf("dial %s: %v", ws, err)
	}
	defer c.CloseNow()
	var records []bridge.Record
	for _, f := range []any{&bridge.HelloFrame{Version: bridge.Version}, &bridge.FindFrame{ID: "1", Service: service}} {
		b, _ := bridge.Marshal(f)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		f, err := bridge.ParseServerFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *bridge.ResultFrame:
			records = append(records, f.Record)
		case *bridge.DoneFrame:
			return records
		case *bridge.ErrorFrame:
			t.Fatalf("find %s: %s: %s", service, f.Code, f.Message)
		}
	}
}

// checkRecords checks that records are exactly the wanted providers, with
// their metadata and loopback addresses.
func checkRecords(t *testing.T, records []bridge.Record, want map[string]map[string]string) {
	t.Helper()
	var peers []string
	for _, r := range records {
		peers = append(peers, r.Peer)
		if !maps.Equal(r.Meta, want[r.Peer]) || r.Service != "DatabaseService" || r.Network != "development" ||
			len(r.Addrs) == 0 || !strings.HasPrefix(r.Addrs[0], "/ip4/127.0.0.1/tcp/") || !r.ExpiresAt.After(time.Now()) {
			t.Errorf("record %+v; want meta %v", r, want[r.Peer])
		}
	}
	slices.Sort(peers)
	if wantPeers := slices.Sorted(maps.Keys(want)); !slices.Equal(peers, wantPeers) {
		t.Fatalf("found peers %v, want %v", peers, wantPeers)
	}
}

// startBrowser starts headless Chromium with a fresh profile, kept off
// every host but loopback; it is closed, and its processes gone, when the
// test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	dir := t.TempDir() // removed after the browser is gone (cleanups run last-in first-out)
	out := &syncBuffer{}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dir),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"),
		// Nothing resolves but 127.0.0.1, where the pages and the bridge are.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.CombinedOutput(out),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		chromedp.Cancel(bctx) // closes the browser
		cancelBrowser()
		cancelAlloc()
		waitBrowserGone(t, dir)
	})
	// The first action starts the browser and binds it to its context, so
	// it gets bctx itself; a watchdog bounds the start instead.
	watchdog := time.AfterFunc(60*time.Second, cancelBrowser)
	defer watchdog.Stop()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v\n%s", chromiumPath, err, out)
	}
	return bctx
}

// waitBrowserGone waits for every Chromium process of profile dir (ours:
// the profile is this test's) to exit, killing by PID any that linger.
func waitBrowserGone(t *testing.T, dir string) {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pids := browserPIDs(dir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("killing %d lingering Chromium processes: %v", len(pids), pids)
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			deadline = time.Now().Add(10 * time.Second)
		}
		<-tick.C
	}
}

// browserPIDs lists the processes started with --user-data-dir=dir.
func browserPIDs(dir string) []int {
	want := "--user-data-dir=" + dir
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func navigate(t *testing.T, browser context.Context, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

// evalOK evaluates a JavaScript expression in the page, awaits it if it
// is a promise, and decodes its value into out; a rejection fails t with
// the error's code and message.
func evalOK(t *testing.T, browser context.Context, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 45*time.Second)
	defer cancel()
	wrapped := `Promise.resolve().then(() => (` + expr + `)).then(
		v => ({ ok: v }),
		e => ({ err: { code: String(e && e.code), message: String(e && e.message || e) } }))`
	type result struct {
		OK  json.RawMessage `json:"ok"`
		Err *struct{ Code, Message string }
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[result](wrapped, chromedp.EvalAwaitPromise))
	switch {
	case err != nil:
		t.Fatalf("evaluate %s: %v", expr, err)
	case res.Err != nil:
		t.Fatalf("evaluate %s: rejected with %s: %s", expr, res.Err.Code, res.Err.Message)
	}
	if err := json.Unmarshal(res.OK, out); err != nil {
		t.Fatalf("evaluate %s: decode %s: %v", expr, res.OK, err)
	}
}
