package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// readmeBridge is the bridge address the README's snippet uses.
const readmeBridge = "http://127.0.0.1:8080"

// readmeSnippet returns the README's bridge snippet: the first ```html
// block that loads the handshaker.
func readmeSnippet(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	for _, block := range strings.Split(string(b), "```html\n")[1:] {
		code, _, ok := strings.Cut(block, "```")
		if ok && strings.Contains(code, readmeBridge+"/netget-handshaker.js") {
			return code
		}
	}
	t.Fatal("README.md has no ```html block loading the handshaker from " + readmeBridge)
	return ""
}

// readmePage is a page that runs the README's snippet against bridgeURL,
// recording what it logs (window.logged) and any error it throws
// (window.pageErrors).
func readmePage(t *testing.T, bridgeURL string) string {
	return `<!doctype html><html><head><meta charset="utf-8"><title>netget readme</title>
<script>
window.logged = []; window.pageErrors = [];
const log = console.log;
console.log = (...args) => { window.logged.push(args.map(String).join(" ")); log(...args); };
window.addEventListener("error", e => window.pageErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", e => window.pageErrors.push(String(e.reason && e.reason.message || e.reason)));
</script>
` + strings.ReplaceAll(readmeSnippet(t), readmeBridge, bridgeURL) + `</head><body>readme</body></html>`
}

// readmeSnippet runs the README's bridge snippet itself, so it cannot
// drift: it must throw nothing and log every provider, found and streamed.
func (fx *browserFixture) readmeSnippet(t *testing.T) {
	navigate(t, fx.browser, fx.allowed+"/readme.html")
	var logged []string
	evalOK(t, fx.browser, `new Promise((resolve, reject) => {
		const check = () => {
			if (window.pageErrors.length) return reject(new Error(window.pageErrors.join("; ")));
			if (window.logged.filter(l => l.startsWith("streamed ")).length >= `+strconv.Itoa(len(fx.want))+`) return resolve(window.logged);
			setTimeout(check, 20);
		};
		check();
	})`, &logged)
	for p := range fx.want {
		found, streamed := false, false
		for _, l := range logged {
			found = found || strings.HasPrefix(l, p+" ")
			streamed = streamed || l == "streamed "+p
		}
		if !found || !streamed {
			t.Errorf("the README snippet did not log provider %s (found %v, streamed %v); it logged %q", p, found, streamed, logged)
		}
	}
}
