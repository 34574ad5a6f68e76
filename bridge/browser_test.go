package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/netget/netget-peer/bridge"
)

// chromiumPath is Debian's chromium, which scripts/chromium.sh installs.
const chromiumPath = "/usr/bin/chromium"

// TestBrowserChannels: two pages in headless Chromium, each on its own
// bridge, chat through one ChatService (a chat hub both bridges' openers
// reach, standing in for the provider); text and binary round trips,
// addEventListener and async iteration, a refusal code, an oversized
// message closing only its channel, a provider killed mid-channel, and a
// bridge shutdown all reach the page as the WebSocket-shaped events they
// should. cmd/netget-peer's TestBrowserChat does the same through real
// nodes.
func TestBrowserChannels(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("headless Chromium is required and %s is missing (%v): run scripts/chromium.sh as root", chromiumPath, err)
	}
	hub := &chatHub{}
	var bridges [2]*server
	var openers [2]*fakeOpener
	for i := range bridges {
		op := newFakeOpener(t)
		op.hub, op.chat["ChatService"] = hub, true
		op.refuse["SecretService"] = &bridge.Error{Code: bridge.CodeForbidden, Message: "origin not allowed by the provider"}
		cfg := channelConfig(op)
		cfg.MaxMessageSize = 4096
		cfg.Extra = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!doctype html><html><head><meta charset="utf-8"><title>chat</title>
<script src="`+bridge.PathScript+`"></script></head><body>chat</body></html>`)
		})
		openers[i], bridges[i] = op, startServer(t, newFakeFinder(t), cfg)
	}
	browser := startChromium(t)
	a, b := newTab(t, browser, bridges[0].httpURL()+"/"), newTab(t, browser, bridges[1].httpURL()+"/")

	// Page a listens with onmessage, page b with addEventListener.
	var peer string
	evalJS(t, a, `netget.connect("ChatService", { where: { room: "lobby" } }).then(ch => {
		window.ch = ch; window.got = []; window.ended = null; window.errors = [];
		ch.onmessage = e => got.push(e.data);
		ch.onclose = e => { ended = { code: e.code, reason: e.reason, wasClean: e.wasClean }; };
		ch.onerror = e => errors.push(e.code);
		return ch.readyState === 1 && ch.record.service === "ChatService" ? ch.peer : "";
	})`, &peer)
	if peer == "" {
		t.Fatal("page a: the channel is not open or has no record")
	}
	evalJS(t, b, `netget.connect("ChatService").then(ch => {
		window.ch = ch; window.got = []; window.ended = null;
		ch.addEventListener("message", e => got.push(e.data));
		ch.addEventListener("close", e => { ended = { code: e.code, reason: e.reason }; });
		return ch.peer;
	})`, &peer)

	evalJS(t, a, `(ch.send("hello from a"), true)`, nil)
	waitJS(t, b, `got.includes("hello from a")`)
	evalJS(t, b, `(ch.send("hello from b"), true)`, nil)
	waitJS(t, a, `got.includes("hello from b")`)

	t.Run("binary", func(t *testing.T) {
		evalJS(t, a, `(ch.send(new Uint8Array([0, 1, 2, 254, 255]).buffer), true)`, nil)
		var bin [][]int
		waitJS(t, b, `got.some(x => x instanceof ArrayBuffer)`)
		evalJS(t, b, `got.filter(x => x instanceof ArrayBuffer).map(x => Array.from(new Uint8Array(x)))`, &bin)
		if len(bin) != 1 || !equalInts(bin[0], []int{0, 1, 2, 254, 255}) {
			t.Fatalf("page b got binary %v, want [0 1 2 254 255]", bin)
		}
	})
	t.Run("async iteration", func(t *testing.T) {
		var got string
		evalJS(t, b, `(async () => {
			const it = ch[Symbol.asyncIterator]();
			const next = it.next();
			ch.send("to myself");
			const v = await next; await it.return(); return v.value;
		})()`, &got)
		if got != "to myself" {
			t.Fatalf("async iteration got %q, want the hub's echo", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		var code string
		evalJS(t, a, `netget.connect("SecretService").then(() => "opened", e => e.code)`, &code)
		if code != "forbidden" {
			t.Fatalf("connect to SecretService: %q, want forbidden", code)
		}
	})
	t.Run("too large", func(t *testing.T) {
		evalJS(t, a, `netget.connect("ChatService").then(c => { window.big = c; window.bigClosed = null;
			c.onclose = e => { bigClosed = e.code; }; c.onerror = e => errors.push(e.code);
			c.send("x".repeat(5000)); return true; })`, nil)
		waitJS(t, a, `bigClosed === 1009 && errors.includes("too_large")`)
		evalJS(t, a, `(ch.send("still here"), true)`, nil) // the other channel goes on
		waitJS(t, b, `got.includes("still here")`)
	})
	t.Run("provider killed", func(t *testing.T) {
		openers[1].lastChan().kill()
		var closed struct{ Code int }
		waitJS(t, b, `ended !== null`)
		evalJS(t, b, `ended`, &closed)
		if closed.Code != bridge.CloseLost {
			t.Fatalf("page b's close event: code %d, want %d", closed.Code, bridge.CloseLost)
		}
	})
	t.Run("bridge shutdown", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := bridges[0].Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		var closed struct {
			Code     int
			WasClean bool
		}
		waitJS(t, a, `ended !== null`)
		evalJS(t, a, `ended`, &closed)
		if closed.Code != bridge.CloseGoingAway || !closed.WasClean {
			t.Fatalf("page a's close event %+v, want a clean 1001", closed)
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// startChromium starts headless Chromium for the test and stops it, and
// every process of its profile, at the end.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	dir := t.TempDir()
	out := &lockedBuffer{}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(dir),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.CombinedOutput(out))
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		chromedp.Cancel(bctx)
		cancelBrowser()
		cancelAlloc()
		killProfile(t, dir)
	})
	watchdog := time.AfterFunc(60*time.Second, cancelBrowser)
	defer watchdog.Stop()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v\n%s", chromiumPath, err, out)
	}
	return bctx
}

// killProfile waits for the processes of Chromium profile dir to exit,
// killing by PID those left after 10 s.
func killProfile(t *testing.T, dir string) {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		raw, _ := exec.Command("pgrep", "-f", "--user-data-dir="+dir).Output()
		pids := strings.Fields(string(raw))
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("killing lingering Chromium processes %v", pids)
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return
		}
	}
}

// navigateTo loads url in tab.
func navigateTo(t *testing.T, tab context.Context, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

// newTab opens url in a new tab of browser.
func newTab(t *testing.T, browser context.Context, url string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// The first action binds the tab to its context: give it tab itself.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	navigateTo(t, tab, url)
	return tab
}

// evalJS evaluates expr in tab, awaits it if it is a promise, and decodes
// its value into out (if not nil); a rejection fails t.
func evalJS(t *testing.T, tab context.Context, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	wrapped := `Promise.resolve().then(() => (` + expr + `)).then(v => ({ ok: v === undefined ? null : v }),
		e => ({ err: String(e && e.code) + ": " + String(e && e.message || e) }))`
	type result struct {
		OK  json.RawMessage `json:"ok"`
		Err string          `json:"err"`
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[result](wrapped, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	if res.Err != "" {
		t.Fatalf("evaluate %s: rejected: %s", expr, res.Err)
	}
	if out != nil {
		if err := json.Unmarshal(res.OK, out); err != nil {
			t.Fatalf("evaluate %s: decode %s: %v", expr, res.OK, err)
		}
	}
}

// waitJS waits, in the page, until cond is true, for at most 10 s.
func waitJS(t *testing.T, tab context.Context, cond string) {
	t.Helper()
	var ok bool
	evalJS(t, tab, `new Promise((resolve, reject) => {
		const until = Date.now() + 10000;
		(function poll() {
			if (`+cond+`) resolve(true);
			else if (Date.now() > until) reject(new Error("timed out waiting for: `+strings.ReplaceAll(cond, `"`, `'`)+`"));
			else setTimeout(poll, 10);
		})();
	})`, &ok)
}

// lockedBuffer is a bytes.Buffer safe for Chromium's output goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
