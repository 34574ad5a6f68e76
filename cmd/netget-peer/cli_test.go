package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// binary is the netget-peer executable built once for this package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "netget-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "netget-peer")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building netget-peer for the CLI tests:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// child is a running netget-peer process, killed when the test ends.
type child struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr *syncBuffer
	done   chan struct{}
	err    error // Wait's result, valid after done closes
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is the environment children run with: a private NETGET_HOME and no
// bootstrap peers inherited from the developer's shell.
func env(t *testing.T) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NETGET_") {
			out = append(out, kv)
		}
	}
	return append(out, "NETGET_HOME="+t.TempDir())
}

func start(t *testing.T, args ...string) *child {
	t.Helper()
	return startWith(t, env(t), args...)
}

// startWith starts netget-peer with environment environ.
func startWith(t *testing.T, environ []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = environ
	return startCmd(t, cmd)
}

// startCmd starts cmd (netget-peer, maybe behind a wrapper) with its
// stdout read line by line and its stderr kept, killed when the test ends.
func startCmd(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 64), stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// line waits for the next stdout line matching ok.
func (c *child) line(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, open := <-c.lines:
			if !open {
				t.Fatalf("waiting for %s: process exited (%v); stderr:\n%s", what, c.wait(t), c.stderr)
			}
			if ok(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("waiting for %s: timed out; stderr:\n%s", what, c.stderr)
		}
	}
}

// wait waits for the process to exit and returns its exit status.
func (c *child) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not exit; stderr:\n%s", c.stderr)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatalf("wait: %v", c.err)
	}
	return 0
}

// runCLI runs netget-peer to completion and returns stdout, stderr, status.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	c := start(t, args...)
	var out []string
	for l := range c.lines {
		out = append(out, l)
	}
	code := c.wait(t)
	return strings.Join(out, "\n"), c.stderr.String(), code
}

const loopback = "/ip4/127.0.0.1/tcp/0"

func startRegistry(t *testing.T) string {
	t.Helper()
	reg := start(t, "registry", "--listen", loopback, "--identity", filepath.Join(t.TempDir(), "reg.key"))
	return reg.line(t, "registry address", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
}

func TestCLIRegistryProvideFind(t *testing.T) {
	boot := startRegistry(t)
	prov := start(t, "provide", "DatabaseService", "--bootstrap", boot, "--listen", loopback,
		"--meta", "region=eu-west", "--meta", "engine=postgres", "--json", "--ttl", "10m")
	var published struct {
		Event, Peer, Service string
		Addrs                []string
	}
	l := prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	if err := json.Unmarshal([]byte(l), &published); err != nil {
		t.Fatalf("provide --json line %q: %v", l, err)
	}

	out, stderr, code := runCLI(t, "find", "DatabaseService", "--bootstrap", boot, "--json", "--timeout", "15s")
	if code != 0 {
		t.Fatalf("find: exit %d, stderr:\n%s", code, stderr)
	}
	var got findResult
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &got); err != nil {
		t.Fatalf("find --json output %q: %v", out, err)
	}
	wantMeta := map[string]string{"region": "eu-west", "engine": "postgres"}
	if got.Peer != published.Peer || got.Service != "DatabaseService" || got.Network != "development" || !maps.Equal(got.Meta, wantMeta) {
		t.Fatalf("find: got %+v, want peer %s with meta %v", got, published.Peer, wantMeta)
	}
	if strings.Join(got.Addrs, " ") != strings.Join(published.Addrs, " ") || !strings.HasPrefix(got.Addrs[0], "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("find addrs: got %v, want %v", got.Addrs, published.Addrs)
	}

	// Human output names the peer and the metadata.
	out, stderr, code = runCLI(t, "--bootstrap", boot, "find", "databaseservice")
	if code != 0 || !strings.Contains(out, published.Peer) || !strings.Contains(out, "engine=postgres,region=eu-west") {
		t.Fatalf("find (text): exit %d, out %q, stderr:\n%s", code, out, stderr)
	}

	// Another network sees nothing, and says why at once.
	_, stderr, code = runCLI(t, "find", "DatabaseService", "--bootstrap", boot, "--network", "production", "--timeout", "20s")
	if code != exitUsage || !strings.Contains(stderr, "speaks network development, not production (pass --network development)") {
		t.Fatalf("find on production: exit %d, stderr:\n%s", code, stderr)
	}

	// Ctrl-C withdraws, then exits 0; finds stop returning the provider.
	prov.cmd.Process.Signal(syscall.SIGINT)
	prov.line(t, "withdrawn event", func(l string) bool { return strings.Contains(l, `"withdrawn"`) })
	if code := prov.wait(t); code != 0 {
		t.Fatalf("provide after SIGINT: exit %d, stderr:\n%s", code, prov.stderr)
	}
	out, stderr, code = runCLI(t, "find", "DatabaseService", "--bootstrap", boot, "--timeout", "3s")
	if code != 1 || out != "" || !strings.Contains(stderr, "no provider of DatabaseService found") {
		t.Fatalf("find after withdraw: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
}

// deadAddr returns a bootstrap multiaddr nobody listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPublicKey(pub)
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, id)
}

func TestCLIBadInput(t *testing.T) {
	dead := deadAddr(t)
	deadID := dead[strings.LastIndex(dead, "/")+1:]
	openKey := filepath.Join(t.TempDir(), "open.key")
	if _, _, code := runCLI(t, "id", "--identity", openKey); code != 0 {
		t.Fatal("id could not create a key")
	}
	os.Chmod(openKey, 0o644)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown flag", []string{"find", "X", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{"unknown command", []string{"fnd", "X"}, exitUsage, `unknown command "fnd"`},
		{"bad service name", []string{"find", "bad name!", "-b", dead}, exitUsage, "invalid service name"},
		{"missing name", []string{"find", "-b", dead}, exitUsage, "needs exactly one service NAME"},
		{"no bootstrap", []string{"find", "DatabaseService"}, exitUsage, "no bootstrap peers"},
		{"bad bootstrap", []string{"find", "DatabaseService", "-b", "/ip4/127.0.0.1/tcp/1"}, exitUsage, "--bootstrap"},
		{"bad network", []string{"--network", "Prod_1", "find", "DatabaseService", "-b", dead}, exitUsage, "invalid network name"},
		{"unreachable bootstrap", []string{"find", "DatabaseService", "-b", dead, "--timeout", "20s"}, exitFailure, deadID},
		{"ttl too long", []string{"provide", "DatabaseService", "--ttl", "48h", "-b", dead}, exitUsage, "--ttl"},
		{"bad meta", []string{"provide", "DatabaseService", "--meta", "novalue", "-b", dead}, exitUsage, "key=value"},
		{"bad log level", []string{"--log-level", "loud", "find", "DatabaseService", "-b", dead}, exitUsage, "--log-level"},
		{"open identity key", []string{"provide", "DatabaseService", "--identity", openKey, "-b", dead}, exitFailure, openKey},
		{"bad dht mode", []string{"find", "DatabaseService", "-b", dead, "--dht-mode", "fast"}, exitUsage, "dht mode"},
		{"provider lifetime too long", []string{"find", "DatabaseService", "-b", dead, "--provider-lifetime", "72h"}, exitUsage, "provider lifetime"},
		{"bad allow-provider", []string{"find", "DatabaseService", "-b", dead, "--allow-provider", "DatabaseService=nobody"}, exitUsage, "--allow-provider"},
		{"no provider quota", []string{"find", "DatabaseService", "-b", dead, "--providers-per-peer", "0"}, exitUsage, "provider record limits"},
		{"no request rate", []string{"find", "DatabaseService", "-b", dead, "--request-rate", "0"}, exitUsage, "request limits must be positive"},
		{"list page too big", []string{"find", "DatabaseService", "-b", dead, "--list-page", "5000"}, exitUsage, "list page size 5000: want 1 to 1024 records"},
		{"no list page", []string{"find", "DatabaseService", "-b", dead, "--list-page", "0"}, exitUsage, "list page size 0"},
		{"bad walk dial timeout", []string{"find", "DatabaseService", "-b", dead, "--walk-dial-timeout", "0s"}, exitUsage, "--walk-dial-timeout 0s: must be positive"},
		{"max conns below conn high", []string{"find", "DatabaseService", "-b", dead, "--conn-high", "300", "--max-conns", "250"}, exitUsage,
			"max connections 250: must be 0 (go-libp2p's scaled limit) or at least the high water mark 300"},
	}
	// A registry whose fellow registries are down still starts.
	reg := start(t, "registry", "--listen", loopback, "--bootstrap", dead)
	reg.line(t, "registry address despite an unreachable peer registry", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("netget-peer %v: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, tt.wantCode, tt.wantErr)
			}
			if out != "" {
				t.Fatalf("stdout should be empty on error, got %q", out)
			}
		})
	}
}

func TestCLIIDAndVersion(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k")
	a, _, code := runCLI(t, "id", "--identity", key)
	b, _, code2 := runCLI(t, "id", "--json", "--identity", key)
	var j struct{ Peer, Identity string }
	if code != 0 || code2 != 0 || json.Unmarshal([]byte(b), &j) != nil || j.Peer != a || j.Identity != key {
		t.Fatalf("id: %q / %q (exit %d, %d)", a, b, code, code2)
	}
	if _, err := peer.Decode(a); err != nil {
		t.Fatalf("id printed %q: %v", a, err)
	}
	v, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(v, "netget-peer ") || !strings.Contains(v, "go-libp2p-kad-dht") {
		t.Fatalf("version: %q (exit %d)", v, code)
	}
}

func TestNormalizeArgs(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"p find X --json", "p find --json X"},
		{"p find X --network prod --timeout 3s", "p --network prod find --timeout 3s X"},
		{"p --network prod find --json X", "p --network prod find --json X"},
		{"p provide X -m a=b --meta=c=d -b /ip4/1", "p -b /ip4/1 provide -m a=b --meta=c=d X"},
		{"p find X -- --json", "p find X -- --json"},
		{"p --bootstrap /ip4/1", "p --bootstrap /ip4/1"},
		{"p nosuch --json", "p nosuch --json"},
	}
	for _, tt := range tests {
		got := strings.Join(normalizeArgs(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("normalizeArgs(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRunInProcess covers run's wiring without a child: help goes to
// stdout and exits 0.
func TestRunInProcess(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"netget-peer", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, errb.String())
	}
	for _, want := range []string{"registry", "provide", "find", "--bootstrap", "NETGET_BOOTSTRAP"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}
