package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/cmd/netget-peer/control"
)

// registriesJSON runs `registries ARGS --data-dir dir --json` and decodes
// the daemon's answer.
func registriesJSON(t *testing.T, dir string, args ...string) control.RegistriesResponse {
	t.Helper()
	out, stderr, code := runCLI(t, append(append([]string{"registries"}, args...), "--data-dir", dir, "--json")...)
	var resp control.RegistriesResponse
	if code != 0 || json.Unmarshal([]byte(out), &resp) != nil {
		t.Fatalf("registries %v: exit %d, out %q, stderr:\n%s", args, code, out, stderr)
	}
	return resp
}

func peers(resp control.RegistriesResponse) []string {
	var out []string
	for _, r := range resp.Registries {
		out = append(out, r.Peer)
	}
	return out
}

// TestCLIRegistriesAtRunTime: a registry added to a running daemon gets
// its records at once (a finder that knows only that registry gets the
// daemon's record from it, on the fast path), is kept in registries.json,
// and is forgotten by rm; bad input changes nothing.
func TestCLIRegistriesAtRunTime(t *testing.T) {
	boot := startRegistry(t)
	dir := shortDataDir(t)
	startDaemon(t, "daemon", "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)
	st := daemonStatus(t, dir)
	if _, stderr, code := runCLI(t, "provide", "DatabaseService", "--data-dir", dir); code != 0 {
		t.Fatalf("provide via the daemon: exit %d, stderr:\n%s", code, stderr)
	}
	later := startRegistry(t) // knows nothing of the daemon or its service
	laterID := later[strings.LastIndex(later, "/")+1:]
	resp := registriesJSON(t, dir, "add", later)
	if resp.Peer != laterID || len(resp.Registries) != 2 {
		t.Fatalf("add: got %+v, want %s added beside the bootstrap registry", resp, laterID)
	}
	saved, err := os.ReadFile(filepath.Join(dir, netget.RegistriesFile))
	if err != nil || !strings.Contains(string(saved), later) {
		t.Fatalf("%s after add: %q, %v; want %s kept", netget.RegistriesFile, saved, err, later)
	}
	waitUntil(t, "a find through the added registry only to get the daemon's record from it", func() bool {
		out, _, code := runCLI(t, "find", "DatabaseService", "--bootstrap", later, "--json", "--limit", "1", "--timeout", "5s")
		var got findResult
		return code == 0 && json.Unmarshal([]byte(out), &got) == nil && got.Peer == st.Peer && got.Source == "registry"
	})
	out, _, code := runCLI(t, "registries", "ls", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, laterID+" connected ") {
		t.Fatalf("ls: exit %d, out:\n%s", code, out)
	}

	dead := deadAddr(t)
	deadID := dead[strings.LastIndex(dead, "/")+1:]
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"address without /p2p/", []string{"add", "/ip4/127.0.0.1/tcp/4001"}, exitUsage, "/ip4/127.0.0.1/tcp/4001"},
		{"not a multiaddr", []string{"add", "registry1.example:4001"}, exitUsage, `"registry1.example:4001"`},
		{"unreachable", []string{"add", dead}, exitFailure, dead},
		{"rm unknown", []string{"rm", deadID}, exitFailure, "not a registry of this node"},
		{"rm not a peer ID", []string{"rm", "nobody"}, exitUsage, `"nobody"`},
		{"add without ADDR", []string{"add"}, exitUsage, "takes 1 argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, append(append([]string{"registries"}, tt.args...), "--data-dir", dir)...)
			if code != tt.wantCode || out != "" || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, out %q, stderr:\n%s\nwant exit %d naming %q", code, out, stderr, tt.wantCode, tt.want)
			}
		})
	}
	if got := peers(registriesJSON(t, dir, "ls")); len(got) != 2 || strings.Contains(strings.Join(got, " "), deadID) {
		t.Fatalf("registries after bad input: %v, want the two", got)
	}
	if saved, _ := os.ReadFile(filepath.Join(dir, netget.RegistriesFile)); strings.Contains(string(saved), deadID) {
		t.Fatalf("%s keeps the unreachable address: %s", netget.RegistriesFile, saved)
	}

	resp = registriesJSON(t, dir, "rm", laterID)
	if resp.Peer != laterID || strings.Contains(strings.Join(peers(resp), " "), laterID) {
		t.Fatalf("rm: got %+v, want %s gone", resp, laterID)
	}
	if saved, _ := os.ReadFile(filepath.Join(dir, netget.RegistriesFile)); strings.Contains(string(saved), laterID) {
		t.Fatalf("%s after rm keeps %s: %s", netget.RegistriesFile, laterID, saved)
	}
}

// TestCLIRegistriesWithoutDaemon: without a daemon there is nothing to
// change, and the command says so.
func TestCLIRegistriesWithoutDaemon(t *testing.T) {
	dir := shortDataDir(t)
	out, stderr, code := runCLI(t, "registries", "ls", "--data-dir", dir)
	if code != exitFailure || out != "" || !strings.Contains(stderr, "no daemon running") {
		t.Fatalf("exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
}
