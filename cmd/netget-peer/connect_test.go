package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startInput starts netget-peer with stdin read from in.
func startInput(t *testing.T, in io.Reader, args ...string) *child {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env, cmd.Stdin = env(t), in
	return startCmd(t, cmd)
}

// output collects c's stdout until it exits, and its exit status.
func (c *child) output(t *testing.T) (string, int) {
	t.Helper()
	var out []string
	for l := range c.lines {
		out = append(out, l)
	}
	return strings.Join(out, "\n"), c.wait(t)
}

// listenTCP listens on 127.0.0.1 and serves each connection with serve.
func listenTCP(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// upper is a WebSocket target answering each message in upper case.
func upper(t *testing.T) string {
	t.Helper()
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
		for {
			typ, b, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			if ws.Write(r.Context(), typ, []byte(strings.ToUpper(string(b)))) != nil {
				return
			}
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(context.Background()); srv.Close() })
	return "ws://" + l.Addr().String() + "/upper"
}

// provideTarget runs provide NAME --target target and waits until it is
// published.
func provideTarget(t *testing.T, boot, name, target string, extra ...string) *child {
	t.Helper()
	args := append([]string{"provide", name, "--bootstrap", boot, "--listen", loopback, "--target", target}, extra...)
	p := start(t, args...)
	p.line(t, "published", func(l string) bool { return strings.HasPrefix(l, "published "+name) })
	return p
}

func TestCLIConnect(t *testing.T) {
	boot := startRegistry(t)
	echo := listenTCP(t, func(c net.Conn) { io.Copy(c, c) })
	provideTarget(t, boot, "Echo", "tcp://"+echo)
	provideTarget(t, boot, "Upper", upper(t), "--channel-token", "s3cret")
	provideTarget(t, boot, "Down", "tcp://"+closedPort(t))

	t.Run("tcp bytes", func(t *testing.T) {
		in := "hello\x00world\nno newline at the end"
		c := startInput(t, strings.NewReader(in), "connect", "Echo", "--bootstrap", boot)
		out, code := c.output(t)
		if code != 0 || out != in {
			t.Fatalf("connect Echo: exit %d, out %q, want %q; stderr:\n%s", code, out, in, c.stderr)
		}
	})
	t.Run("ws lines with a token", func(t *testing.T) {
		c := startInput(t, strings.NewReader("one\ntwo\n"), "connect", "Upper", "--bootstrap", boot, "--token", "s3cret")
		out, code := c.output(t)
		if code != 0 || out != "ONE\nTWO" {
			t.Fatalf("connect Upper: exit %d, out %q; stderr:\n%s", code, out, c.stderr)
		}
	})
	for _, tc := range []struct{ name, service, want string }{
		{"no token", "Upper", "forbidden"},
		{"target down", "Down", "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startInput(t, strings.NewReader("x\n"), "connect", tc.service, "--bootstrap", boot)
			if _, code := c.output(t); code != exitFailure || !strings.Contains(c.stderr.String(), "channel refused: "+tc.want) {
				t.Fatalf("connect %s: exit %d, want 1 and %q; stderr:\n%s", tc.service, code, tc.want, c.stderr)
			}
		})
	}
	t.Run("no such channel", func(t *testing.T) {
		c := startInput(t, strings.NewReader(""), "connect", "Echo", "--bootstrap", boot, "--where", "region=mars")
		if _, code := c.output(t); code != exitFailure || !strings.Contains(c.stderr.String(), "no provider taking channels") {
			t.Fatalf("connect --where region=mars: exit %d; stderr:\n%s", code, c.stderr)
		}
	})
}

// TestCLIConnectProviderKilled: a provider SIGKILLed mid-channel ends
// connect with an error within seconds, never a hang.
func TestCLIConnectProviderKilled(t *testing.T) {
	boot := startRegistry(t)
	hold := listenTCP(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	prov := provideTarget(t, boot, "Hold", "tcp://"+hold)
	// An *os.File, so that the child's exit does not wait for our writer.
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer stdin.Close()
	c := startInput(t, stdin, "connect", "Hold", "--bootstrap", boot)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(c.stderr.String(), "connected to") {
		if time.Now().After(deadline) {
			t.Fatalf("connect never connected; stderr:\n%s", c.stderr)
		}
		select {
		case <-c.done:
			t.Fatalf("connect exited; stderr:\n%s", c.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	w.Write([]byte("still open\n"))
	prov.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	_, code := c.output(t)
	took := time.Since(killed)
	if code != exitFailure || !strings.Contains(c.stderr.String(), "channel broken") {
		t.Fatalf("connect after its provider was killed: exit %d; stderr:\n%s", code, c.stderr)
	}
	if took > 5*time.Second {
		t.Errorf("connect noticed the kill after %s, want within 5s", took)
	}
	t.Logf("connect ended %s after the provider was killed", took)
}

// TestCLIConnectThroughDaemon: with a daemon serving the data dir,
// connect asks it, and the daemon holds the channel.
func TestCLIConnectThroughDaemon(t *testing.T) {
	boot := startRegistry(t)
	echo := listenTCP(t, func(c net.Conn) { io.Copy(c, c) })
	provideTarget(t, boot, "Echo", "tcp://"+echo)
	provideTarget(t, boot, "Upper", upper(t), "--channel-token", "s3cret")
	dir := shortDataDir(t)
	startDaemon(t, "daemon", "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)

	in := "through\x00the daemon\n"
	c := startInput(t, strings.NewReader(in), "connect", "Echo", "--data-dir", dir)
	out, code := c.output(t)
	if code != 0 || out != strings.TrimSuffix(in, "\n") || !strings.Contains(c.stderr.String(), "through the daemon") {
		t.Fatalf("connect Echo via the daemon: exit %d, out %q; stderr:\n%s", code, out, c.stderr)
	}
	c = startInput(t, strings.NewReader("a\nb\n"), "connect", "Upper", "--data-dir", dir, "--token", "s3cret")
	if out, code := c.output(t); code != 0 || out != "A\nB" {
		t.Fatalf("connect Upper via the daemon: exit %d, out %q; stderr:\n%s", code, out, c.stderr)
	}
	c = startInput(t, strings.NewReader("a\n"), "connect", "Upper", "--data-dir", dir)
	if _, code := c.output(t); code != exitFailure || !strings.Contains(c.stderr.String(), "channel refused: forbidden") {
		t.Fatalf("connect Upper via the daemon without a token: exit %d; stderr:\n%s", code, c.stderr)
	}
}
