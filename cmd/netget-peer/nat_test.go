package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The NAT lab's addresses. The "public" side uses 100.128.0.0/16, just
// above the carrier-grade NAT range: libp2p counts it as public (AutoRelay
// advertises only relays' public addresses), and the namespaces have no
// route to the real Internet, so nothing leaves them.
const (
	labRegistry  = "100.128.1.1" // registry and finder, namespace pub
	labNATOuter  = "100.128.1.2" // the router's public side, namespace nat
	labNATInner  = "10.0.2.1"    // the router's private side
	labProvider  = "10.0.2.2"    // provider, namespace priv
	labNetnsPath = "/var/run/netns/"
)

// natLab is three network namespaces: pub (registry, finder), nat (a
// router that masquerades priv behind its public address, as a home
// router does) and priv (a provider). pub has no route to priv: nothing
// there can dial the provider's private address.
type natLab struct {
	pub, nat, priv string
}

// labSeq makes namespace names unique within this process; the PID,
// across processes.
var labSeq atomic.Int32

// newNATLab builds the namespaces, or fails saying what is missing. They
// are deleted when the test ends (after the processes in them are
// killed: cleanups run last-registered first).
func newNATLab(t *testing.T) *natLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the NAT test builds network namespaces and needs root (run it as root, as CI does)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the NAT test needs %s: run scripts/netns.sh (installs iproute2 and nftables): %v", tool, err)
		}
	}
	id := fmt.Sprintf("ng%d-%d", os.Getpid(), labSeq.Add(1))
	lab := &natLab{pub: id + "-pub", nat: id + "-nat", priv: id + "-priv"}
	for _, ns := range []string{lab.pub, lab.nat, lab.priv} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("delete namespace %s: %v: %s", ns, err, out)
			}
		})
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "link", "add", "p0", "netns", lab.pub, "type", "veth", "peer", "name", "n0", "netns", lab.nat)
	sh(t, "ip", "link", "add", "v0", "netns", lab.priv, "type", "veth", "peer", "name", "n1", "netns", lab.nat)
	for _, a := range []struct{ ns, dev, addr string }{
		{lab.pub, "p0", labRegistry + "/24"},
		{lab.nat, "n0", labNATOuter + "/24"},
		{lab.nat, "n1", labNATInner + "/24"},
		{lab.priv, "v0", labProvider + "/24"},
	} {
		sh(t, "ip", "-n", a.ns, "addr", "add", a.addr, "dev", a.dev)
		sh(t, "ip", "-n", a.ns, "link", "set", a.dev, "up")
	}
	sh(t, "ip", "-n", lab.priv, "route", "add", "default", "via", labNATInner)
	sh(t, "ip", "netns", "exec", lab.nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	nft := exec.Command("ip", "netns", "exec", lab.nat, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(`table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "n0" masquerade
	}
}
`)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft masquerade in %s: %v: %s", lab.nat, err, out)
	}
	return lab
}

// sh runs a setup command, failing the test with its output.
func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// startIn starts netget-peer inside namespace ns (`ip netns exec`, which
// execs it: the child's PID is netget-peer's), killed when the test ends.
func startIn(t *testing.T, ns string, args ...string) *child {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, binary}, args...)...)
	cmd.Env = env(t)
	return startCmd(t, cmd)
}

// runIn runs netget-peer to completion inside namespace ns.
func runIn(t *testing.T, ns string, args ...string) (string, string, int) {
	t.Helper()
	c := startIn(t, ns, args...)
	var out []string
	for l := range c.lines {
		out = append(out, l)
	}
	code := c.wait(t)
	return strings.Join(out, "\n"), c.stderr.String(), code
}

// dialFrom dials TCP addr from inside namespace ns, on a thread of its
// own that enters ns and is never reused (Go ends a goroutine's locked
// thread when the goroutine returns).
func dialFrom(ns, addr string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		fd, err := unix.Open(labNetnsPath+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	return <-errc
}

// pingLine is ping's --json line, as the test reads it.
type pingLine struct {
	Peer    string  `json:"peer"`
	RTTMS   float64 `json:"rtt_ms"`
	Relayed bool    `json:"relayed"`
	Addr    string  `json:"addr"`
	Error   string  `json:"error"`
}

// TestNATProviderBehindRelay puts a provider behind a masquerading NAT
// that the finder's namespace cannot dial through, and checks it stays
// reachable: it reserves a slot on its registry's relay, its status says
// so, its signed record carries the relay address, find returns it from
// the registry (whose health check passed), and a ping from the finder's
// namespace reaches it through the relay.
func TestNATProviderBehindRelay(t *testing.T) {
	lab := newNATLab(t)
	reg := startIn(t, lab.pub, "registry", "--listen", "/ip4/"+labRegistry+"/tcp/4001", "--data-dir", shortDataDir(t))
	boot := reg.line(t, "registry address", func(l string) bool { return strings.HasPrefix(l, "/ip4/"+labRegistry+"/") })
	regID := boot[strings.LastIndex(boot, "/")+1:]

	// A second provider behind the same NAT is left to AutoNAT: the
	// registry dials it back, fails, and it learns it is private.
	autoDir := shortDataDir(t)
	autoStart := time.Now()
	startIn(t, lab.priv, "daemon", "--bootstrap", boot, "--listen", "/ip4/"+labProvider+"/tcp/0", "--data-dir", autoDir).
		line(t, "provider address", func(l string) bool { return strings.HasPrefix(l, "/ip4/"+labProvider+"/") })

	dir := shortDataDir(t)
	prov := startIn(t, lab.priv, "daemon", "--bootstrap", boot, "--listen", "/ip4/"+labProvider+"/tcp/0",
		"--reachability", "private", "--data-dir", dir)
	provAddr := prov.line(t, "provider address", func(l string) bool { return strings.HasPrefix(l, "/ip4/"+labProvider+"/") })

	// The finder's namespace cannot reach the provider's own address, but
	// reaches the registry.
	tcp := strings.Split(provAddr, "/")
	if err := dialFrom(lab.pub, net.JoinHostPort(labProvider, tcp[4])); err == nil {
		t.Fatalf("namespace %s dialled the provider's private address %s: the lab is not a NAT", lab.pub, provAddr)
	}
	if err := dialFrom(lab.nat, net.JoinHostPort(labRegistry, "4001")); err != nil {
		t.Fatalf("the router cannot reach the registry: %v", err)
	}

	wantRelay := "/ip4/" + labRegistry + "/tcp/4001/p2p/" + regID + "/p2p-circuit"
	waitRelayed(t, dir, regID, wantRelay, 30*time.Second)
	out, _, _ := runCLI(t, "status", "--data-dir", dir)
	if !strings.Contains(out, "private via relays "+regID) || !strings.Contains(out, wantRelay) {
		t.Errorf("status does not say how the node is reached; got:\n%s", out)
	}

	if out, stderr, code := runIn(t, lab.priv, "provide", "NatService", "--data-dir", dir, "--meta", "behind=nat"); code != 0 {
		t.Fatalf("provide through the daemon: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}

	out, stderr, code := runIn(t, lab.pub, "find", "NatService", "--bootstrap", boot, "--json", "--timeout", "15s")
	var got findResult
	if code != 0 || json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &got) != nil {
		t.Fatalf("find from %s: exit %d, out %q, stderr:\n%s", lab.pub, code, out, stderr)
	}
	if got.Source != "registry" || !strings.Contains(strings.Join(got.Addrs, " "), wantRelay) {
		t.Fatalf("find: source %q, addrs %v; want registry, with %s", got.Source, got.Addrs, wantRelay)
	}

	pong := pingIn(t, lab.pub, boot)
	if pong.Error != "" || !pong.Relayed || !strings.HasPrefix(pong.Addr, wantRelay) {
		t.Fatalf("ping from %s: %+v; want an answer through %s", lab.pub, pong, wantRelay)
	}
	t.Logf("ping through the relay: %.2f ms", pong.RTTMS)

	// A finder that listens on a public address can be dialled back:
	// hole punching (DCUtR) may upgrade the relayed connection.
	pong = pingIn(t, lab.pub, boot, "--listen", "/ip4/"+labRegistry+"/tcp/0")
	if pong.Error != "" {
		t.Fatalf("ping from a listening finder: %s", pong.Error)
	}
	t.Logf("ping from a finder listening on %s: relayed=%v at %s, %.2f ms", labRegistry, pong.Relayed, pong.Addr, pong.RTTMS)

	// A foreground provide behind the NAT waits for its relay slot, so its
	// first record carries the relay address (the registry, on a public
	// address, refuses one with private addresses only).
	fg := startIn(t, lab.priv, "provide", "FgService", "--bootstrap", boot, "--listen", "/ip4/"+labProvider+"/tcp/0",
		"--reachability", "private", "--data-dir", shortDataDir(t), "--json")
	l := fg.line(t, "foreground publication", func(l string) bool { return strings.Contains(l, `"published"`) })
	var ev providerEvent
	if err := json.Unmarshal([]byte(l), &ev); err != nil || !slices.ContainsFunc(ev.Addrs, func(a string) bool {
		return strings.HasPrefix(a, "/ip4/"+labRegistry+"/tcp/4001/p2p/"+regID+"/p2p-circuit")
	}) {
		t.Fatalf("foreground provide published %q (%v); want the relay address among its addrs", l, err)
	}

	// AutoNAT (v1) probes after 15s; allow it a minute.
	waitRelayed(t, autoDir, regID, wantRelay, time.Minute)
	t.Logf("--reachability auto: private via the relay %s after start", time.Since(autoStart).Round(time.Second))
}

// waitRelayed waits until the daemon in dir says, in `status --json`, that
// it is private and reachable through registry regID at wantRelay.
func waitRelayed(t *testing.T, dir, regID, wantRelay string, within time.Duration) {
	t.Helper()
	var st struct {
		Reachability string   `json:"reachability"`
		Relays       []string `json:"relays"`
		RelayAddrs   []string `json:"relay_addrs"`
	}
	deadline := time.Now().Add(within)
	tick := time.NewTicker(250 * time.Millisecond) // each poll is a process
	defer tick.Stop()
	for ; ; <-tick.C {
		out, stderr, code := runCLI(t, "status", "--data-dir", dir, "--json")
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status --json: exit %d, out %q, stderr:\n%s", code, out, stderr)
		}
		if st.Reachability == "private" && len(st.RelayAddrs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, status says reachability %q via %v; want private via %s", within, st.Reachability, st.Relays, regID)
		}
	}
	if len(st.Relays) != 1 || st.Relays[0] != regID || len(st.RelayAddrs) != 1 || st.RelayAddrs[0] != wantRelay {
		t.Fatalf("status: private via %v at %v; want via [%s] at [%s]", st.Relays, st.RelayAddrs, regID, wantRelay)
	}
}

// pingIn runs `ping NatService` in namespace ns and returns its one line.
func pingIn(t *testing.T, ns, boot string, extra ...string) pingLine {
	t.Helper()
	args := append([]string{"ping", "NatService", "--bootstrap", boot, "--json", "--timeout", "15s"}, extra...)
	out, stderr, code := runIn(t, ns, args...)
	var p pingLine
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &p); err != nil {
		t.Fatalf("ping in %s: exit %d, out %q, stderr:\n%s", ns, code, out, stderr)
	}
	if code != 0 && p.Error == "" {
		t.Fatalf("ping in %s: exit %d with no error; stderr:\n%s", ns, code, stderr)
	}
	return p
}

// TestCLINATFlagsRefused: a bad reachability or relay limit is a usage
// error (exit 2) that names what is wrong, before anything starts.
func TestCLINATFlagsRefused(t *testing.T) {
	boot := "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWCXDDYokYmbKsVBcXnGKfcgg1oCZyM1mcyLpXVtZkc1at"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"reachability", []string{"find", "X", "--bootstrap", boot, "--reachability", "maybe"}, `reachability "maybe": want auto, public or private`},
		{"relay bytes", []string{"registry", "--listen", loopback, "--relay-circuit-bytes", "0"}, "circuit bytes 0"},
		{"relay slots", []string{"registry", "--listen", loopback, "--relay-max-reservations", "0"}, "relay service limits must be positive"},
		{"autonat rate", []string{"registry", "--listen", loopback, "--autonat-rate", "0"}, "autonat service limits must be positive"},
		{"memtable", []string{"registry", "--listen", loopback, "--datastore-memtable-mib", "0"}, "--datastore-memtable-mib 0: want 1 to 1024"},
		{"memtable too big", []string{"registry", "--listen", loopback, "--datastore-memtable-mib", "2048"}, "want 1 MiB to 1024 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 saying %q", code, stderr, tc.want)
			}
		})
	}
}
