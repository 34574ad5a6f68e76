package bridge_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netget/netget-peer/bridge"
)

// TestScript: the handshaker is served with its type, caching headers and
// CORS, revalidates with its ETag, and only for GET/HEAD.
func TestScript(t *testing.T) {
	s := startServer(t, newFakeFinder(t), testConfig())
	for _, path := range []string{bridge.PathScript, bridge.PathModule} {
		t.Run(path, func(t *testing.T) {
			resp := get(t, s.httpURL()+path, nil)
			body, _ := io.ReadAll(resp.Body)
			h := resp.Header
			etag := h.Get("ETag")
			if resp.StatusCode != 200 || h.Get("Content-Type") != "application/javascript; charset=utf-8" ||
				h.Get("Cache-Control") != "public, max-age=300" || h.Get("Access-Control-Allow-Origin") != "*" ||
				h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(etag, `"`) {
				t.Fatalf("GET %s: %d %v", path, resp.StatusCode, h)
			}
			if !strings.Contains(string(body), "netget handshaker") {
				t.Fatalf("GET %s: body does not look like the handshaker: %.80q", path, body)
			}
			again := get(t, s.httpURL()+path, http.Header{"If-None-Match": {etag}})
			if again.StatusCode != http.StatusNotModified {
				t.Fatalf("revalidation: %d, want 304", again.StatusCode)
			}
			req, _ := http.NewRequest(http.MethodPost, s.httpURL()+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("POST: %d, want 405", resp.StatusCode)
			}
		})
	}
	if string(bridge.HandshakerScript()) == "" {
		t.Fatal("HandshakerScript is empty")
	}
}

// TestHealthAndExtra: /healthz reports, Extra serves the other paths,
// and without Extra they are 404.
func TestHealthAndExtra(t *testing.T) {
	cfg := testConfig()
	cfg.Extra = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "page at "+r.URL.Path)
	})
	s := startServer(t, newFakeFinder(t), cfg)
	resp := get(t, s.httpURL()+bridge.PathHealth, nil)
	var h struct {
		Status   string
		Version  int
		Network  string
		Sessions int
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 ||
		h.Status != "ok" || h.Version != bridge.Version || h.Network != "development" {
		t.Fatalf("healthz: %d %+v (%v)", resp.StatusCode, h, err)
	}
	resp = get(t, s.httpURL()+"/", nil)
	if b, _ := io.ReadAll(resp.Body); string(b) != "page at /" {
		t.Fatalf("extra: %q", b)
	}
	plain := startServer(t, newFakeFinder(t), testConfig())
	if resp := get(t, plain.httpURL()+"/", nil); resp.StatusCode != 404 {
		t.Fatalf("/ without Extra: %d, want 404", resp.StatusCode)
	}
	if resp := get(t, plain.httpURL()+bridge.PathWS, nil); resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET /ws: %d, want 426", resp.StatusCode)
	}
}

// TestTLS: with a certificate the bridge speaks wss://, and over TLS a
// name Host is allowed without a Hosts list (the certificate pins it).
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cfg := testConfig()
	cfg.CertFile, cfg.KeyFile = certFile, keyFile
	f := newFakeFinder(t)
	f.add(t, "DatabaseService", 2)
	s := startServer(t, f, cfg)
	if !s.TLS() {
		t.Fatal("TLS() = false with a certificate")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(hc.CloseIdleConnections)
	for _, host := range []string{"", "bridge.example"} {
		t.Run("host "+host, func(t *testing.T) {
			c := dial(t, s, dialOpts{endpoint: "wss://" + s.addr + bridge.PathWS, client: hc, host: host})
			c.hello("")
			c.send(&bridge.FindFrame{ID: "tls", Service: "DatabaseService"})
			if results, _ := c.collect("tls"); len(results) != 2 {
				t.Fatalf("got %d results over wss, want 2", len(results))
			}
		})
	}
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(h2.CloseIdleConnections)
	resp, err := h2.Get("https://" + s.addr + bridge.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
		t.Fatalf("GET /healthz over TLS, offering h2: %d %s; want 200 over HTTP/1.1", resp.StatusCode, resp.Proto)
	}
	if _, err := bridge.New(f, func() bridge.Config { c := cfg; c.KeyFile = certFile; return c }()); !errors.Is(err, bridge.ErrBadConfig) {
		t.Fatalf("New with a cert as key: %v, want ErrBadConfig", err)
	}
}

// TestJSProtocolVersion keeps the handshaker's protocol constants and
// error codes equal to Go's.
func TestJSProtocolVersion(t *testing.T) {
	js := string(bridge.HandshakerScript())
	m := regexp.MustCompile(`var PROTOCOL_VERSION = (\d+);`).FindStringSubmatch(js)
	if m == nil {
		t.Fatal("netget-handshaker.js declares no PROTOCOL_VERSION")
	}
	if v, _ := strconv.Atoi(m[1]); v != bridge.Version {
		t.Fatalf("netget-handshaker.js speaks version %d, Go speaks %d", v, bridge.Version)
	}
	if !strings.Contains(js, `var SUBPROTOCOL = "`+bridge.Subprotocol+`";`) {
		t.Fatalf("netget-handshaker.js does not use subprotocol %s", bridge.Subprotocol)
	}
	if !strings.Contains(js, `var WS_PATH = "`+bridge.PathWS+`";`) {
		t.Fatalf("netget-handshaker.js does not connect to %s", bridge.PathWS)
	}
	known := map[string]bool{}
	for _, c := range bridge.Codes() {
		known[string(c)] = true
	}
	fatal := regexp.MustCompile(`var FATAL = \{([^}]*)\}`).FindStringSubmatch(js)
	if fatal == nil {
		t.Fatal("netget-handshaker.js has no FATAL code list")
	}
	for _, kv := range strings.Split(fatal[1], ",") {
		code := strings.TrimSpace(strings.Split(kv, ":")[0])
		if !known[code] {
			t.Errorf("netget-handshaker.js treats unknown code %q as fatal", code)
		}
	}
}

func get(t *testing.T, url string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// selfSigned writes a certificate for 127.0.0.1 and bridge.example and its
// key under a temp dir, and returns their paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netget bridge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"bridge.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
