package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/cmd/netget-peer/control"
)

// otherUID is a local user who is neither root nor the test's user. Only
// root may chown to it; CI runs the tests as root.
const otherUID = 65534

func chownOther(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, otherUID, otherUID); err != nil {
		t.Fatalf("chown %s to uid %d (the tests run as root): %v", path, otherUID, err)
	}
}

// fakeDaemon serves a control API on dir's socket that answers every
// find with a forged record of peer forged, and returns forged.
func fakeDaemon(t *testing.T, dir string) string {
	t.Helper()
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	forged, _ := peer.IDFromPublicKey(pub)
	ln, err := net.Listen("unix", control.SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"type":"result","record":{"v":1,"network":"development","name":"DatabaseService","peer":%q,"addrs":["/ip4/127.0.0.1/tcp/6666"],"seq":1},"source":"registry"}`+"\n"+
			`{"type":"done","found":1}`+"\n", forged)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return forged.String()
}

// TestCLIDataDirTrustsNoOne: the attacks of issue 13 from a second local
// user - a fake control socket, a planted services.json, a data dir others
// can write, a dangling-symlink identity key - each end in a one-line
// refusal that says how to fix it, and nothing forged is printed or
// provided.
func TestCLIDataDirTrustsNoOne(t *testing.T) {
	boot := startRegistry(t)
	dead := deadAddr(t)

	// A fake control.sock, another user's: find and status refuse it.
	sockDir := shortDataDir(t)
	forged := fakeDaemon(t, sockDir)
	chownOther(t, control.SocketPath(sockDir))
	// A data dir others may write, with a fake daemon in it.
	openDir := shortDataDir(t)
	forged2 := fakeDaemon(t, openDir)
	os.Chmod(openDir, 0o777)
	// Planted services.json files.
	planted := func(mode os.FileMode, other bool) string {
		dir := shortDataDir(t)
		p := filepath.Join(dir, control.ServicesName)
		os.WriteFile(p, []byte(`{"version":1,"services":[{"name":"Planted","ttl":"1h"}]}`), mode)
		os.Chmod(p, mode)
		if other {
			chownOther(t, p)
		}
		return dir
	}
	writable, foreignFile := planted(0o666, false), planted(0o644, true)
	// Another user's data dir.
	foreignDir := shortDataDir(t)
	chownOther(t, foreignDir)
	// A dangling symlink where the identity key goes.
	linkDir := shortDataDir(t)
	os.Symlink(filepath.Join(linkDir, "nowhere"), filepath.Join(linkDir, "identity.key"))

	tests := []struct {
		name string
		args []string
		want []string // in stderr, in this order
	}{
		{"find via another user's socket", []string{"find", "DatabaseService", "--data-dir", sockDir, "-b", dead},
			[]string{"control socket not trusted", "not owned by the current user", "chown 0"}},
		{"status via another user's socket", []string{"status", "--data-dir", sockDir},
			[]string{"control socket not trusted", "chown 0"}},
		{"find in a data dir others can write", []string{"find", "DatabaseService", "--data-dir", openDir, "-b", dead},
			[]string{"is not safe", "permissions too open", "chmod 755 " + openDir}},
		{"daemon in a data dir others can write", []string{"daemon", "--data-dir", openDir, "-b", boot, "--listen", loopback},
			[]string{"is not safe", "chmod 755"}},
		{"daemon with a writable services.json", []string{"daemon", "--data-dir", writable, "-b", boot, "--listen", loopback},
			[]string{"invalid services file", "permissions too open", "chmod 644"}},
		{"daemon with another user's services.json", []string{"daemon", "--data-dir", foreignFile, "-b", boot, "--listen", loopback},
			[]string{"invalid services file", "not owned", "chown 0"}},
		{"registry in another user's data dir", []string{"registry", "--data-dir", foreignDir, "--listen", loopback},
			[]string{"is not safe", "not owned", "chown 0 " + foreignDir}},
		{"provide with a dangling-symlink key", []string{"provide", "X", "--data-dir", linkDir, "-b", boot, "--listen", loopback},
			[]string{"refusing to follow a symbolic link", "rm " + filepath.Join(linkDir, "identity.key")}},
		{"id with a dangling-symlink key", []string{"id", "--data-dir", linkDir},
			[]string{"refusing to follow a symbolic link"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, tt.args...)
			if code != exitFailure || out != "" || strings.Contains(out+stderr, forged) || strings.Contains(out+stderr, forged2) {
				t.Fatalf("netget-peer %v: exit %d, out %q, stderr %q; want exit 1, nothing on stdout", tt.args, code, out, stderr)
			}
			rest := stderr
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr %q: want %q (in order %q)", stderr, w, tt.want)
				}
				rest = rest[i+len(w):]
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("stderr %q: want one line", stderr)
			}
		})
	}
	// Nothing was created through the link, nor provided from the planted files.
	if _, err := os.Lstat(filepath.Join(linkDir, "nowhere")); err == nil {
		t.Error("a key was written through the dangling symlink")
	}
	if out, _, code := runCLI(t, "find", "Planted", "-b", boot, "--timeout", "2s"); code != exitFailure || out != "" {
		t.Errorf("find Planted: exit %d, out %q; want nothing found", code, out)
	}
}

const testPSK = "/key/swarm/psk/1.0.0/\n/base16/\n" +
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"

// runCLIEnv runs netget-peer with extra environment variables.
func runCLIEnv(t *testing.T, extra []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(env(t), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return strings.TrimSpace(stdout.String()), stderr.String(), code
}

// TestCLIPrivateNetwork: nodes holding the network's pre-shared key (by
// --psk, $NETGET_PSK_FILE or the config file) find each other; a node
// without it cannot join and is told why; a key file others can read is
// refused.
func TestCLIPrivateNetwork(t *testing.T) {
	dir := t.TempDir()
	psk := filepath.Join(dir, "swarm.key")
	os.WriteFile(psk, []byte(testPSK), 0o600)
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, []byte(testPSK), 0o600)
	os.Chmod(open, 0o644)
	conf := filepath.Join(dir, "netget.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("psk = %q\n", psk)), 0o600)

	reg := start(t, "registry", "--listen", loopback, "--psk", psk, "--identity", filepath.Join(dir, "reg.key"))
	boot := reg.line(t, "registry address", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
	prov := start(t, "provide", "PrivateService", "--bootstrap", boot, "--listen", loopback, "--psk", psk, "--json")
	var published struct{ Peer string }
	l := prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	if err := json.Unmarshal([]byte(l), &published); err != nil || published.Peer == "" {
		t.Fatalf("provide --json line %q: %v", l, err)
	}

	out, stderr, code := runCLIEnv(t, []string{"NETGET_PSK_FILE=" + psk}, "find", "PrivateService", "-b", boot, "--json", "--timeout", "15s")
	var got findResult
	if code != 0 || json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &got) != nil || got.Peer != published.Peer {
		t.Fatalf("find with $NETGET_PSK_FILE: exit %d, out %q (published by %s), stderr:\n%s", code, out, published.Peer, stderr)
	}
	if out, stderr, code := runCLI(t, "find", "PrivateService", "-b", boot, "--config", conf, "--timeout", "15s"); code != 0 || out == "" {
		t.Fatalf("find with psk in --config: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	out, stderr, code = runCLI(t, "find", "PrivateService", "-b", boot, "--timeout", "3s")
	if code != exitFailure || out != "" || !strings.Contains(stderr, "no bootstrap peer reachable") || !strings.Contains(stderr, "--psk") {
		t.Fatalf("find without the key: exit %d, out %q, stderr %q; want a refusal naming --psk", code, out, stderr)
	}
	out, stderr, code = runCLI(t, "find", "PrivateService", "-b", boot, "--psk", open, "--timeout", "3s")
	if code != exitFailure || out != "" || !strings.Contains(stderr, "--psk") || !strings.Contains(stderr, "chmod 600 "+open) {
		t.Fatalf("find with a key others can read: exit %d, out %q, stderr %q", code, out, stderr)
	}
}
