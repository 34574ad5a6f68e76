package main

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	ma "github.com/multiformats/go-multiaddr"
)

// devnetOutput is what `netget-peer devnet` printed before it ran.
type devnetOutput struct {
	bootstrap []string            // registry multiaddrs
	services  map[string][]string // service name → provider peer IDs
	find      string              // the printed find command
	page      string              // the page URL
}

// readDevnet reads the devnet's start-up output up to its last line.
func readDevnet(t *testing.T, dev *child) devnetOutput {
	t.Helper()
	out := devnetOutput{services: map[string][]string{}}
	section := ""
	for {
		l := dev.line(t, "devnet output", func(string) bool { return true })
		trimmed := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "Ctrl-C stops the devnet"):
			return out
		case strings.HasSuffix(l, ":") && !strings.HasPrefix(l, " "):
			section = l
		case strings.HasPrefix(l, "page: "):
			out.page = strings.TrimPrefix(l, "page: ")
		case trimmed == "":
		case strings.HasPrefix(section, "registries"):
			out.bootstrap = append(out.bootstrap, trimmed)
		case section == "services:":
			f := strings.Fields(trimmed)
			out.services[f[0]] = append(out.services[f[0]], f[1])
		case strings.HasSuffix(trimmed, " find DatabaseService"):
			out.find = trimmed
		}
	}
}

// TestDevnet: `netget-peer devnet` runs a network whose printed find
// command finds its DatabaseService providers from another process, whose
// page finds services in headless Chromium (the screenshot is kept as an
// artifact), and which SIGINT shuts down leaving no port open.
func TestDevnet(t *testing.T) {
	requireChromium(t)
	metrics := freeAddr(t)
	dev := start(t, "--metrics", metrics, "devnet", "--bridge", ":0")
	out := readDevnet(t, dev)
	if len(out.bootstrap) != 2 || len(out.services["DatabaseService"]) != 2 || out.find == "" || out.page == "" {
		t.Fatalf("devnet printed %+v; stderr:\n%s", out, dev.stderr)
	}

	// The printed find command, run as printed, from another process.
	args := strings.Fields(out.find)
	if args[0] != binary {
		t.Fatalf("printed command runs %q, want this binary %q", args[0], binary)
	}
	stdout, stderr, code := runCLI(t, args[1:]...)
	if code != 0 {
		t.Fatalf("%s: exit %d, stderr:\n%s", out.find, code, stderr)
	}
	for _, p := range out.services["DatabaseService"] {
		if !strings.Contains(stdout, p+" DatabaseService") {
			t.Fatalf("printed find did not find provider %s:\n%s", p, stdout)
		}
	}

	browser := startBrowser(t)
	if err := chromedp.Do(browser, chromedp.EmulateViewport(1200, 900)); err != nil {
		t.Fatal(err)
	}
	navigate(t, browser, out.page)
	// The page finds DatabaseService as soon as it connects.
	checkPageResults(t, browser, out.services["DatabaseService"])
	saveScreenshot(t, browser)
	// A search typed into the page.
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("name"), "CacheService"),
		chromedp.Click(chromedp.CSS(`#search button`))); err != nil {
		t.Fatalf("search CacheService: %v", err)
	}
	checkPageResults(t, browser, out.services["CacheService"])
	checkChat(t, browser, out.page)
	// --metrics serves the gateway's and the bridge's counters; the page
	// follows each search with a watch (a find on a bridge that cannot).
	url := "http://" + metrics + "/metrics"
	watches, _ := scrape(t, url, "netget_bridge_watches_total")
	finds, _ := scrape(t, url, "netget_bridge_finds_total")
	results, _ := scrape(t, url, "netget_bridge_results_total")
	if watches+finds < 2 || results < 2 {
		t.Errorf("devnet metrics: %v watches + %v finds, %v results; want at least 2 of each after two searches",
			watches, finds, results)
	}
	if _, ok := scrape(t, url, "netget_bridge_finds_moved_total"); !ok {
		t.Errorf("devnet metrics: the bridge's netget_bridge_finds_moved_total is missing")
	}
	if _, ok := scrape(t, "http://"+metrics+"/metrics", "netget_records_stored"); !ok {
		t.Errorf("devnet metrics: the gateway's netget_records_stored is missing")
	}

	dev.cmd.Process.Signal(syscall.SIGINT)
	if code := dev.wait(t); code != 0 {
		t.Fatalf("devnet after SIGINT: exit %d, stderr:\n%s", code, dev.stderr)
	}
	checkClosed(t, out, metrics)
}

// checkChat opens the page in a second tab and has the two tabs talk
// through the chat panel: a channel to ChatService each, through the
// bridge and libp2p to the chat node and its chat server.
func checkChat(t *testing.T, browser context.Context, page string) {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	if err := chromedp.Do(tab); err != nil { // binds the tab to its own context
		t.Fatal(err)
	}
	navigate(t, tab, page)
	joined := `new Promise((resolve) => { const check = () => window.devnetChat && devnetChat.readyState === 1 ?
		resolve(true) : setTimeout(check, 50); check(); })`
	var ok bool
	evalOK(t, browser, joined, &ok)
	evalOK(t, tab, joined, &ok)
	ctx, cancelType := context.WithTimeout(browser, 30*time.Second)
	defer cancelType()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("chatname"), "tab-one"),
		chromedp.SetValue(chromedp.ID("chatmsg"), "hello from the first tab"),
		chromedp.Click(chromedp.CSS(`#chatform button`))); err != nil {
		t.Fatalf("send a chat message: %v", err)
	}
	var line string
	evalOK(t, tab, `new Promise((resolve) => { const check = () => {
		const l = [...document.querySelectorAll("#chatlog li")].map((li) => li.textContent).find((x) => x.includes("hello from"));
		l ? resolve(l) : setTimeout(check, 50); }; check(); })`, &line)
	if line != "tab-one: hello from the first tab" {
		t.Fatalf("the second tab shows %q, want the first tab's message", line)
	}
}

// checkPageResults waits until the page's results table lists exactly
// peers, each with its metadata, and the network view shows every node.
func checkPageResults(t *testing.T, browser context.Context, peers []string) {
	t.Helper()
	var got []string
	evalOK(t, browser, `new Promise((resolve) => {
		const want = `+jsStrings(peers)+`;
		const check = () => {
			const rows = [...document.querySelectorAll("#results tbody tr")];
			const shown = rows.map((r) => r.dataset.peer);
			const meta = rows.every((r) => r.querySelectorAll(".kv").length > 0);
			if (shown.length === want.length && want.every((p) => shown.includes(p)) && meta &&
			    document.querySelectorAll("#nodes li").length > 0) resolve(shown);
			else setTimeout(check, 50);
		};
		check();
	})`, &got)
	slices.Sort(got)
	want := slices.Sorted(slices.Values(peers))
	if !slices.Equal(got, want) {
		t.Fatalf("page shows %v, want %v", got, want)
	}
}

// jsStrings renders ss as a JavaScript array literal.
func jsStrings(ss []string) string {
	quoted := make([]string, len(ss))
	for i, s := range ss {
		quoted[i] = `"` + s + `"`
	}
	return "[" + strings.Join(quoted, ",") + "]"
}

// saveScreenshot keeps a PNG of the page as a test artifact, in
// $NETGET_ARTIFACTS (default: a netget-artifacts dir in the system temp
// dir), and also at $NETGET_SCREENSHOT when set (scripts/screenshot.sh
// refreshes the README's copy that way).
func saveScreenshot(t *testing.T, browser context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("NETGET_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "netget-artifacts")
	}
	paths := []string{filepath.Join(dir, "devnet.png")}
	if p := os.Getenv("NETGET_SCREENSHOT"); p != "" {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("devnet page screenshot: %s", p)
	}
}

// checkClosed checks that nothing listens any more on the devnet's page and
// registry ports, nor on more.
func checkClosed(t *testing.T, out devnetOutput, more ...string) {
	t.Helper()
	u, err := url.Parse(out.page)
	if err != nil {
		t.Fatal(err)
	}
	addrs := append([]string{u.Host}, more...)
	for _, b := range out.bootstrap {
		port, err := ma.StringCast(b).ValueForProtocol(ma.P_TCP)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", port))
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the devnet exited", a)
		}
	}
}

// TestDevnetBadInput: a bridge or metrics port in use and a non-loopback
// address fail clearly, before anything runs.
func TestDevnetBadInput(t *testing.T) {
	busy := busyAddr(t).Addr().String()
	tests := []struct {
		name, wantErr string
		args          []string
	}{
		{"port in use", "address already in use", []string{"devnet", "--bridge", busy}},
		{"public address", "loopback only", []string{"devnet", "--bridge", "0.0.0.0:8787"}},
		{"no port", "want host:port", []string{"devnet", "--bridge", "localhost"}},
		{"too many nodes", "nodes 500", []string{"devnet", "--nodes", "500"}},
		{"public metrics address", "--metrics \"0.0.0.0:9464\": the devnet listens on loopback only",
			[]string{"--metrics", "0.0.0.0:9464", "devnet", "--bridge", ":0"}},
		{"metrics port in use", "--metrics", []string{"--metrics", busy, "devnet", "--bridge", ":0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tt.args...)
			if code == 0 || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("netget-peer %v: exit %d, stderr %q; want %q", tt.args, code, stderr, tt.wantErr)
			}
		})
	}
}
