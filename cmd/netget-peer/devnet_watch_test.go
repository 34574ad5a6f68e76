package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
)

// TestDevnetLiveList: the devnet page's provider list follows a watch
// while --churn runs: a churned DatabaseService node leaves the list
// (withdrawn, listed under it) and comes back, and a provider process
// started from another terminal, as the devnet's printed command says,
// appears with no search, then disappears as withdrawn when interrupted.
func TestDevnetLiveList(t *testing.T) {
	requireChromium(t)
	dev := start(t, "devnet", "--bridge", ":0", "--churn", "--churn-every", "1s")
	out := readDevnet(t, dev)
	if len(out.services["DatabaseService"]) == 0 || len(out.bootstrap) == 0 {
		t.Fatalf("devnet printed %+v; stderr:\n%s", out, dev.stderr)
	}
	browser := startBrowser(t)
	navigate(t, browser, out.page)
	waitPage(t, browser, "the page watches", `document.querySelector("#status").textContent.includes("live provider")`)

	// Churn: the first step withdraws the first DatabaseService node.
	churned := out.services["DatabaseService"][0]
	waitPage(t, browser, "the churned provider leaves the list", changeListed(churned, "withdrawn")+` && !`+rowShown(churned))
	waitPage(t, browser, "the churned provider comes back", rowShown(churned))

	// A provider process joins: the list gains it, then loses it.
	prov := start(t, "provide", "DatabaseService", "--network", out.network(), "--bootstrap", out.bootstrap[0],
		"--listen", loopback, "--meta", "engine=sqlite", "--json", "--ttl", "10m")
	var published struct{ Peer string }
	l := prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	if err := json.Unmarshal([]byte(l), &published); err != nil || published.Peer == "" {
		t.Fatalf("provide --json line %q: %v", l, err)
	}
	waitPage(t, browser, "the new provider is listed", rowShown(published.Peer)+
		` && document.querySelector('#results tr[data-peer="`+published.Peer+`"]').textContent.includes("engine=sqlite")`)
	prov.cmd.Process.Signal(syscall.SIGINT)
	if code := prov.wait(t); code != 0 {
		t.Fatalf("provide after SIGINT: exit %d, stderr:\n%s", code, prov.stderr)
	}
	waitPage(t, browser, "the interrupted provider leaves the list", changeListed(published.Peer, "withdrawn")+
		` && !`+rowShown(published.Peer))

	dev.cmd.Process.Signal(syscall.SIGINT)
	if code := dev.wait(t); code != 0 {
		t.Fatalf("devnet after SIGINT: exit %d, stderr:\n%s", code, dev.stderr)
	}
}

// rowShown is a JavaScript condition: the results table lists peer.
func rowShown(peer string) string {
	return `!!document.querySelector('#results tbody tr[data-peer="` + peer + `"]')`
}

// changeListed is a JavaScript condition: the list of changes under the
// table says that peer was removed for reason.
func changeListed(peer, reason string) string {
	return `[...document.querySelectorAll("#changes li.remove")].some((li) =>
		li.querySelector("code").title === "` + peer + `" && li.textContent.endsWith("` + reason + `"))`
}

// network is the devnet's network name, read from its printed find command.
func (o devnetOutput) network() string {
	f := strings.Fields(o.find)
	for i, a := range f {
		if a == "--network" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "devnet"
}
