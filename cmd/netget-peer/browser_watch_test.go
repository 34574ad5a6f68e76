package main

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bridge"
)

// TestBrowserWatch: a page on another origin watches a service through
// the handshaker, with callbacks and with `for await`, in front of real
// netget nodes (a registry, a gateway serving the bridge, providers):
// a provider that provides appears in both lists with no polling, one that
// unprovides leaves them as withdrawn, and when the bridge restarts the
// page drops what it showed (disconnected), reconnects, resubscribes and
// shows the providers there are again.
func TestBrowserWatch(t *testing.T) {
	requireChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := newTestNode(t, ctx, netget.Registry(), nil)
	boot := reg.Addrs()
	pageL, bridgeL := listen(t), listen(t)
	bridgeAddr := bridgeL.Addr().String()
	gateway := newGateway(t, ctx, boot, bridgeL, "http://"+pageL.Addr().String())
	page := servePages(t, pageL, gateway.BridgeURL())

	browser := startBrowser(t)
	navigate(t, browser, page+"/classic.html")
	var ok bool
	evalOK(t, browser, `netget.ready.then(() => {
		window.live = new Set(); window.log = []; window.iter = [];
		window.stopLive = netget.watch("LiveService", {
			onAdd: (r) => { live.add(r.peer); log.push("add " + r.peer + " " + r.meta.color); },
			onRemove: (p, why) => { live.delete(p); log.push("remove " + p + " " + why); } });
		window.stopIter = netget.watch("LiveService");
		(async () => {
			for await (const ev of stopIter) iter.push(ev.type + " " + ev.peer + (ev.reason ? " " + ev.reason : ""));
			iter.push("end");
		})();
		return netget.welcome.features.includes("watch");
	})`, &ok)
	if !ok {
		t.Fatal("the bridge's welcome does not list the watch feature")
	}

	// Provide: both lists gain the provider, with its metadata.
	blue := newTestNode(t, ctx, netget.Service(), boot)
	if _, err := blue.Provide(ctx, netget.Spec{Name: "LiveService", Meta: map[string]string{"color": "blue"}, TTL: 10 * time.Minute}); err != nil {
		t.Fatalf("provide: %v", err)
	}
	b := blue.ID().String()
	waitPage(t, browser, "the page shows the new provider", `log.includes("add `+b+` blue") && iter.includes("add `+b+`")`)

	// Unprovide: both lists lose it, withdrawn.
	if _, err := blue.Unprovide(ctx, "LiveService"); err != nil {
		t.Fatalf("unprovide: %v", err)
	}
	waitPage(t, browser, "the page drops the withdrawn provider",
		`!live.has("`+b+`") && log.includes("remove `+b+` withdrawn") && iter.includes("remove `+b+` withdrawn")`)

	// A bridge restart: what the page showed is dropped as disconnected,
	// and the resubscribed watch shows the provider there is again.
	red := newTestNode(t, ctx, netget.Service(), boot)
	if _, err := red.Provide(ctx, netget.Spec{Name: "LiveService", Meta: map[string]string{"color": "red"}, TTL: 10 * time.Minute}); err != nil {
		t.Fatalf("provide: %v", err)
	}
	r := red.ID().String()
	waitPage(t, browser, "the page shows the second provider", `live.has("`+r+`")`)
	gateway.Close()
	l, err := net.Listen("tcp", bridgeAddr)
	if err != nil {
		t.Fatalf("listen again on the bridge's address: %v", err)
	}
	newGateway(t, ctx, boot, l, "http://"+pageL.Addr().String())
	waitPage(t, browser, "the page resubscribes after reconnecting",
		`log.slice(-2).join() === ["remove `+r+` disconnected", "add `+r+` red"].join() && live.has("`+r+`")`)

	// Stopping ends a `for await` loop, and no callback runs after stop.
	waitPage(t, browser, "the iterator resubscribed too", `iter.slice(-2).join() === ["remove `+r+` disconnected", "add `+r+`"].join()`)
	evalOK(t, browser, `(() => {
		window.probe = [];
		netget.watch("LiveService", { onRemove: (p, why) => probe.push(p + " " + why) });
		stopLive(); stopIter(); return true; })()`, &ok)
	waitPage(t, browser, "the stopped loop ended", `iter[iter.length - 1] === "end"`)
	if _, err := red.Unprovide(ctx, "LiveService"); err != nil {
		t.Fatalf("unprovide: %v", err)
	}
	waitPage(t, browser, "a watch still running sees the withdrawal", `probe.includes("`+r+` withdrawn")`)
	var got []string
	evalOK(t, browser, `log`, &got)
	if !slices.Contains(got, "add "+b+" blue") || !strings.HasPrefix(got[len(got)-1], "add "+r) {
		t.Fatalf("page log %q: a stopped watch still reported, or the log is wrong", got)
	}
}

// newTestNode starts a netget node from preset on 127.0.0.1, joined to
// boot, keeping nothing on disk; it is closed when the test ends.
func newTestNode(t *testing.T, ctx context.Context, cfg netget.Config, boot []string) *netget.Node {
	t.Helper()
	cfg.Persist, cfg.Logger = false, slog.New(slog.DiscardHandler)
	cfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	for _, a := range boot {
		cfg.Bootstrap = append(cfg.Bootstrap, ma.StringCast(a))
	}
	n, err := netget.New(ctx, cfg)
	if err != nil {
		t.Fatalf("netget.New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// newGateway starts a client node joined to boot serving the bridge on l
// for pages of origin.
func newGateway(t *testing.T, ctx context.Context, boot []string, l net.Listener, origin string) *netget.Node {
	t.Helper()
	cfg := netget.Client()
	cfg.BridgeListener, cfg.Bridge = l, bridge.DefaultConfig("", "")
	cfg.Bridge.Origins = []string{origin}
	return newTestNode(t, ctx, cfg, boot)
}

// waitPage waits until the JavaScript condition cond holds in the page.
func waitPage(t *testing.T, browser context.Context, what, cond string) {
	t.Helper()
	var ok bool
	evalOK(t, browser, `new Promise((resolve, reject) => {
		const deadline = Date.now() + 30000;
		const check = () => {
			if (`+cond+`) resolve(true);
			else if (Date.now() > deadline) reject(new Error("timed out; log " + JSON.stringify(window.log) +
				", iterator " + JSON.stringify(window.iter)));
			else setTimeout(check, 20);
		};
		check();
	})`, &ok)
	if !ok {
		t.Fatalf("the page never showed that %s", what)
	}
}
