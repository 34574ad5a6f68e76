package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netget/netget-peer/p2p"
)

// otherUID is a local user who is neither root nor the test's user.
const otherUID = 65534

// helperEnv makes the test binary act as another local user's program
// (see TestMain): "serve PATH" runs a fake daemon on a socket at PATH,
// "status DIR" asks the daemon in DIR for its status with a plain client.
const helperEnv = "NETGET_CONTROL_TEST_HELPER"

func TestMain(m *testing.M) {
	if cmd, arg, ok := strings.Cut(os.Getenv(helperEnv), " "); ok {
		os.Exit(runHelper(cmd, arg))
	}
	os.Exit(m.Run())
}

// forgedFind is what a fake daemon answers to a find: a record the
// finder would print if it believed it.
const forgedFind = `{"type":"result","record":{"v":1,"network":"development","name":"DatabaseService","peer":"12D3KooWForged"},"source":"registry"}` + "\n" + `{"type":"done","found":1}` + "\n"

func runHelper(cmd, arg string) int {
	switch cmd {
	case "serve":
		ln, err := net.Listen("unix", arg)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		os.Chmod(arg, 0o600) // it looks like a daemon's socket
		fmt.Println("ready")
		return exitOf(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Println("request", r.URL.Path) // the test asserts none arrive
			io.WriteString(w, forgedFind)
		})))
	case "status":
		// A plain HTTP client, not ours, which would refuse the socket.
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", SocketPath(arg))
			}}}
		resp, err := hc.Get("http://netget/v1/status")
		if err == nil {
			resp.Body.Close()
		}
		fmt.Println("status", err == nil, err)
		return 0
	}
	return 2
}

func exitOf(err error) int {
	if err != nil {
		return 1
	}
	return 0
}

// asOtherUser starts this test binary as otherUID running helper cmd arg,
// and returns its stdout lines. Only root may; CI runs the tests as root.
func asOtherUser(t *testing.T, cmd, arg string) (*exec.Cmd, <-chan string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The build dir is private to root: copy the binary where the other user may run it.
	bin := privateTempDir(t, 0o755)
	exe := filepath.Join(bin, "helper")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(exe)
	c.Env = append(os.Environ(), helperEnv+"="+cmd+" "+arg)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatalf("start helper as uid %d (the tests run as root): %v", otherUID, err)
	}
	lines := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	go func() { c.Wait(); close(done) }()
	t.Cleanup(func() {
		c.Process.Kill() // by PID: only the helper this test started
		<-done
	})
	return c, lines
}

// privateTempDir is a short temp dir with mode perm, removed at cleanup.
func privateTempDir(t *testing.T, perm os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ngt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

func nextLine(t *testing.T, lines <-chan string, what string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("waiting for %s: helper exited", what)
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("waiting for %s: timed out", what)
	}
	return ""
}

// TestClientRefusesForeignDaemon: another user's process on the control
// socket - planted there, or with the file chowned to look like ours - is
// refused before a request is sent, so nothing it says is printed; the
// same goes for a socket others may write to or a symlink.
func TestClientRefusesForeignDaemon(t *testing.T) {
	bindDir := privateTempDir(t, 0o700)
	if err := os.Chown(bindDir, otherUID, otherUID); err != nil {
		t.Fatalf("chown (the tests run as root): %v", err)
	}
	fake, lines := asOtherUser(t, "serve", filepath.Join(bindDir, "s"))
	if l := nextLine(t, lines, "fake daemon ready"); l != "ready" {
		t.Fatalf("fake daemon: %s", l)
	}
	dir := shortDir(t)
	sock := SocketPath(dir)
	if err := os.Rename(filepath.Join(bindDir, "s"), sock); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, also error, msg string) {
		t.Helper()
		_, err := Dial(ctxT(t), dir)
		if !errors.Is(err, ErrUntrustedSocket) || !errors.Is(err, also) || errors.Is(err, ErrNoDaemon) ||
			!strings.Contains(err.Error(), msg) {
			t.Fatalf("Dial: got %v, want ErrUntrustedSocket and %v saying %q", err, also, msg)
		}
		if _, err := NewClient(dir).Status(ctxT(t)); !errors.Is(err, ErrUntrustedSocket) {
			t.Fatalf("Status: got %v, want ErrUntrustedSocket", err)
		}
		if n, err := drain(NewClient(dir).Find(ctxT(t), FindRequest{Name: "DatabaseService"})); n != 0 || !errors.Is(err, ErrUntrustedSocket) {
			t.Fatalf("Find: %d results, %v; want none and ErrUntrustedSocket", n, err)
		}
	}
	t.Run("socket owned by another user", func(t *testing.T) {
		refused(t, p2p.ErrNotOwner, "chown")
	})
	t.Run("served by another user", func(t *testing.T) {
		if err := os.Lchown(sock, os.Geteuid(), os.Getegid()); err != nil {
			t.Fatal(err)
		}
		refused(t, ErrUntrustedSocket, fmt.Sprintf("served by uid %d", otherUID))
	})
	fake.Process.Kill()
	for l := range lines {
		if strings.HasPrefix(l, "request") {
			t.Errorf("the fake daemon got a request: %s", l)
		}
	}
	os.Remove(sock)

	// Our own server, but a socket others may write to, or a link to it.
	ln, err := net.Listen("unix", filepath.Join(bindDir, "own"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, forgedFind) }))
	if err := os.Symlink(filepath.Join(bindDir, "own"), sock); err != nil {
		t.Fatal(err)
	}
	t.Run("symlink", func(t *testing.T) { refused(t, syscall.ENOTSOCK, sock) })
	os.Remove(sock)
	if err := os.Rename(filepath.Join(bindDir, "own"), sock); err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o660)
	t.Run("group writable", func(t *testing.T) { refused(t, p2p.ErrPermissions, "chmod 640") })
}

// TestServerRefusesOtherUsers: if the socket's mode is loosened, another
// user connects but gets no answer; its owner still does.
func TestServerRefusesOtherUsers(t *testing.T) {
	dir := shortDir(t)
	os.Chmod(dir, 0o711)
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"peer":"me"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	os.Chmod(SocketPath(dir), 0o666)
	_, lines := asOtherUser(t, "status", dir)
	if l := nextLine(t, lines, "the other user's status"); !strings.HasPrefix(l, "status false") {
		t.Fatalf("another user asked for the status: %s; want no answer", l)
	}
	// The owner's client refuses the loosened socket; restore its mode.
	os.Chmod(SocketPath(dir), 0o600)
	if st, err := NewClient(dir).Status(ctxT(t)); err != nil || st.Peer != "me" {
		t.Fatalf("owner's status: %+v, %v", st, err)
	}
}

// TestServicesFileTrust: a services.json another user could have planted
// or changed is refused, and the daemon provides nothing from it.
func TestServicesFileTrust(t *testing.T) {
	node := daemonNode(t, nil, nil)
	good := []byte(`{"version":1,"services":[{"name":"Planted","ttl":"1h"}]}`)
	tests := []struct {
		name  string
		plant func(t *testing.T, path string)
		want  error
		fix   string
	}{
		{"group writable", func(t *testing.T, p string) { write(t, p, good, 0o664) }, p2p.ErrPermissions, "chmod 644"},
		{"world writable", func(t *testing.T, p string) { write(t, p, good, 0o666) }, p2p.ErrPermissions, "chmod 644"},
		{"another user's", func(t *testing.T, p string) {
			write(t, p, good, 0o644)
			if err := os.Chown(p, otherUID, otherUID); err != nil {
				t.Fatalf("chown (the tests run as root): %v", err)
			}
		}, p2p.ErrNotOwner, "chown"},
		{"symlink", func(t *testing.T, p string) {
			write(t, p+".real", good, 0o600)
			if err := os.Symlink(p+".real", p); err != nil {
				t.Fatal(err)
			}
		}, p2p.ErrSymlink, "rm "},
		{"fifo", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, p2p.ErrNotRegular, "named pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ServicesName)
			tt.plant(t, path)
			_, err := NewServer(node, DefaultConfig(dir))
			if !errors.Is(err, ErrServicesFile) || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.fix) {
				t.Fatalf("got %v, want ErrServicesFile and %v saying %q", err, tt.want, tt.fix)
			}
		})
	}
}

func write(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
