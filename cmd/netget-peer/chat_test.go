package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
)

// TestBrowserChat: two registries run as processes, each serving a
// bridge; a provider process (provide ChatService --target) relays each
// channel to a chat server, its target. Two pages in headless Chromium, each loading the handshaker
// from a different bridge, join the chat with netget.connect and talk,
// text and binary; a provider that refuses the pages' origin gives
// forbidden; when the chat provider is SIGKILLed, both pages get a close
// event (1006) within seconds.
func TestBrowserChat(t *testing.T) {
	requireChromium(t)
	chat := chatTarget(t)
	reg1, bridge1 := startBridgeRegistry(t)
	_, bridge2 := startBridgeRegistry(t, "--bootstrap", reg1)
	prov := provideTarget(t, reg1, "ChatService", chat, "--meta", "room=lobby")
	provideTarget(t, reg1, "Guarded", chat, "--channel-origin", "https://app.example")

	browser := startBrowser(t)
	a := chatTab(t, browser, bridge1)
	b := chatTab(t, browser, bridge2)
	for _, tab := range []context.Context{a, b} {
		var ok bool
		evalOK(t, tab, `netget.connect("ChatService", { where: { room: "lobby" } }).then(ch => {
			window.ch = ch; window.got = []; window.ended = null;
			ch.onmessage = e => got.push(e.data);
			ch.onclose = e => { ended = { code: e.code, reason: e.reason, at: Date.now() }; };
			return ch.readyState === 1 && ch.record.meta.room === "lobby";
		})`, &ok)
		if !ok {
			t.Fatal("a page's channel is not open, or its record is not the lobby's")
		}
	}
	// Each member may join the room a moment after its channel opened:
	// the pages say hello until the other one hears it.
	for _, pair := range [][2]context.Context{{a, b}, {b, a}} {
		var ok bool
		evalOK(t, pair[0], `(window.saying = setInterval(() => ch.send("hello from " + location.port), 100), true)`, &ok)
		var heard string
		evalOK(t, pair[1], `new Promise(resolve => { const check = () => {
			const m = got.find(x => typeof x === "string" && x.startsWith("hello from") && x !== "hello from " + location.port);
			m ? resolve(m) : setTimeout(check, 20); }; check(); })`, &heard)
		evalOK(t, pair[0], `(clearInterval(saying), true)`, &ok)
		t.Logf("heard %q", heard)
	}
	t.Run("binary", func(t *testing.T) {
		var ok bool
		evalOK(t, a, `(ch.send(new Uint8Array([0, 7, 255]).buffer), true)`, &ok)
		var bytes []int
		evalOK(t, b, `new Promise(resolve => { const check = () => {
			const m = got.find(x => x instanceof ArrayBuffer);
			m ? resolve(Array.from(new Uint8Array(m))) : setTimeout(check, 20); }; check(); })`, &bytes)
		if len(bytes) != 3 || bytes[0] != 0 || bytes[1] != 7 || bytes[2] != 255 {
			t.Fatalf("page b got %v, want [0 7 255]", bytes)
		}
	})
	t.Run("refused", func(t *testing.T) {
		var code string
		evalOK(t, a, `netget.connect("Guarded").then(() => "opened", e => e.code)`, &code)
		if code != "forbidden" {
			t.Fatalf("connect to Guarded: %q, want forbidden", code)
		}
	})
	t.Run("provider killed", func(t *testing.T) {
		var killedAt float64
		evalOK(t, a, `Date.now()`, &killedAt)
		prov.cmd.Process.Signal(syscall.SIGKILL)
		for _, tab := range []context.Context{a, b} {
			var ended struct {
				Code int
				At   float64
			}
			evalOK(t, tab, `new Promise(resolve => { const check = () => ended ? resolve(ended) : setTimeout(check, 20); check(); })`, &ended)
			if ended.Code != bridge.CloseLost {
				t.Fatalf("close event code %d, want %d", ended.Code, bridge.CloseLost)
			}
			t.Logf("close event %d, %.0f ms after the SIGKILL", ended.Code, ended.At-killedAt)
		}
	})
}

// startBridgeRegistry runs a registry process with a bridge on a free
// port and returns its address and the bridge's URL, once it answers.
func startBridgeRegistry(t *testing.T, args ...string) (addr, bridgeURL string) {
	t.Helper()
	baddr := freeAddr(t)
	args = append([]string{"registry", "--listen", loopback, "--identity", filepath.Join(t.TempDir(), "reg.key"),
		"--bridge", baddr}, args...)
	reg := start(t, args...)
	addr = reg.line(t, "registry address", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
	bridgeURL = "http://" + baddr
	waitFor(t, 30*time.Second, "the bridge to answer", func() bool {
		resp, err := http.Get(bridgeURL + bridge.PathHealth)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr, bridgeURL
}

// chatTab opens, in a new tab, a page on its own origin that loads the
// handshaker from bridgeURL.
func chatTab(t *testing.T, browser context.Context, bridgeURL string) context.Context {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html><head><meta charset="utf-8"><title>chat</title>
<script src="`+bridgeURL+bridge.PathScript+`"></script></head><body>chat</body></html>`)
	}))
	t.Cleanup(srv.Close)
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil { // binds the tab to its own context
		t.Fatal(err)
	}
	navigate(t, tab, srv.URL+"/")
	return tab
}

// chatTarget serves a chat room on 127.0.0.1: every message, text or
// binary, goes to every member.
func chatTarget(t *testing.T) string {
	t.Helper()
	var mu sync.Mutex
	members := map[*websocket.Conn]bool{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		mu.Lock()
		members[ws] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(members, ws)
			mu.Unlock()
		}()
		for {
			typ, b, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			mu.Lock()
			for m := range members {
				ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
				m.Write(ctx, typ, b)
				cancel()
			}
			mu.Unlock()
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "ws://" + l.Addr().String() + "/chat"
}
