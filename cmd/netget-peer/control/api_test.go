package control

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControlBadRequests(t *testing.T) {
	node := daemonNode(t, nil, nil)
	dir := shortDir(t)
	c, _ := serve(t, node, dir, nil)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode, wantMsg        string
	}{
		{"not json", "POST", "/v1/provide", "{", 400, CodeBadRequest, "request body"},
		{"empty body", "POST", "/v1/provide", "", 400, CodeBadRequest, "want a JSON object"},
		{"unknown field", "POST", "/v1/provide", `{"name":"X","bogus":1}`, 400, CodeBadRequest, "bogus"},
		{"trailing data", "POST", "/v1/provide", `{"name":"X"} {"name":"Y"}`, 400, CodeBadRequest, "trailing data"},
		{"ttl as a number", "POST", "/v1/provide", `{"name":"X","ttl":3600}`, 400, CodeBadRequest, "duration"},
		{"bad name", "POST", "/v1/provide", `{"name":"Database Service"}`, 400, CodeInvalidName, "invalid service name"},
		{"ttl too long", "POST", "/v1/provide", `{"name":"X","ttl":"48h"}`, 400, CodeInvalidTTL, "ttl 48h0m0s"},
		{"empty meta key", "POST", "/v1/provide", `{"name":"X","meta":{"":"v"}}`, 400, CodeInvalidMeta, "metadata"},
		{"too large", "POST", "/v1/provide", `{"name":"` + strings.Repeat("x", MaxBodySize) + `"}`, 413, CodeTooLarge, "bytes"},
		{"wrong network", "POST", "/v1/provide", `{"name":"X","network":"production"}`, 409, CodeWrongNetwork, `"production"`},
		{"unprovide bad name", "POST", "/v1/unprovide", `{"name":""}`, 400, CodeInvalidName, "invalid service name"},
		{"find negative limit", "POST", "/v1/find", `{"name":"X","limit":-1}`, 400, CodeBadRequest, "limit"},
		{"find long timeout", "POST", "/v1/find", `{"name":"X","timeout":"2h"}`, 400, CodeBadRequest, "timeout"},
		{"find wrong network", "POST", "/v1/find", `{"name":"X","network":"production"}`, 409, CodeWrongNetwork, "production"},
		{"get provide", "GET", "/v1/provide", "", 405, CodeMethodNotAllowed, "want POST"},
		{"post status", "POST", "/v1/status", "{}", 405, CodeMethodNotAllowed, "want GET"},
		{"unknown route", "GET", "/v2/status", "", 404, CodeNotFound, "/v2/status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctxT(t), tt.method, "http://netget"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("%s %s: got %d %+v, want %d %s containing %q", tt.method, tt.path, resp.StatusCode, e, tt.wantStatus, tt.wantCode, tt.wantMsg)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q", ct)
			}
		})
	}
	// Nothing above changed the service set.
	if _, err := os.Stat(filepath.Join(dir, ServicesName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("services.json after bad requests: %v, want none written", err)
	}
	// The client turns error responses into *Error.
	_, err := c.Provide(ctxT(t), ProvideRequest{Name: "X", Network: "production"})
	var e *Error
	if !errors.As(err, &e) || e.Status != 409 || e.Code != CodeWrongNetwork {
		t.Fatalf("Client.Provide: got %v, want *Error 409 wrong_network", err)
	}
}

func TestListenSocket(t *testing.T) {
	dir := shortDir(t)
	os.Chmod(dir, 0o755) // a lax data dir still gets a private socket
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SocketPath(dir))
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, mode %v; want a socket, 0600", err, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %v, want the socket only", entries)
	}
	if _, err := Listen(dir); !errors.Is(err, ErrSocketInUse) {
		t.Fatalf("second Listen: got %v, want ErrSocketInUse", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(SocketPath(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket after Close: %v, want removed", err)
	}
}

// TestListenStale: a socket left by a killed daemon refuses connections;
// clients see no daemon, and the next daemon replaces it.
func TestListenStale(t *testing.T) {
	dir := shortDir(t)
	stale, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(SocketPath(dir)); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if _, err := Dial(ctxT(t), dir); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Dial on a stale socket: got %v, want ErrNoDaemon", err)
	}
	if _, err := NewClient(dir).Status(ctxT(t)); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Status on a stale socket: got %v, want ErrNoDaemon", err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	if c, err := Dial(ctxT(t), dir); err != nil {
		t.Fatalf("Dial after Listen: %v", err)
	} else {
		c.Close()
	}
}

func TestNoDaemon(t *testing.T) {
	tests := map[string]string{
		"absent dir":    filepath.Join(t.TempDir(), "nope"),
		"empty dir":     t.TempDir(),
		"path too long": filepath.Join(t.TempDir(), strings.Repeat("d", 120)),
	}
	for name, dir := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Dial(ctxT(t), dir); !errors.Is(err, ErrNoDaemon) {
				t.Fatalf("Dial: got %v, want ErrNoDaemon", err)
			}
			if n, err := drain(NewClient(dir).Find(ctxT(t), FindRequest{Name: "X"})); n != 0 || !errors.Is(err, ErrNoDaemon) {
				t.Fatalf("Find: got %d results, %v; want ErrNoDaemon", n, err)
			}
		})
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if _, err := Listen(long); !errors.Is(err, ErrSocketPath) || !strings.Contains(err.Error(), long) {
		t.Fatalf("Listen on a long path: got %v, want ErrSocketPath naming it", err)
	}
}

func TestDurationJSON(t *testing.T) {
	b, _ := json.Marshal(Duration(90 * 60e9))
	if string(b) != `"1h30m0s"` {
		t.Fatalf("marshal: got %s", b)
	}
	for in, ok := range map[string]bool{`"10m"`: true, `"1h2m3s"`: true, `600`: false, `"ten"`: false, `null`: false} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); (err == nil) != ok {
			t.Errorf("unmarshal %s: err %v, want ok=%v", in, err, ok)
		}
	}
}
