package bridge_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/bridge"
)

// Attackers and victims dial from different loopback addresses: the
// per-address limits count 127.0.0.1 and 127.0.0.2 apart.
const (
	attacker  = "127.0.0.1"
	victim    = "127.0.0.2"
	bystander = "127.0.0.3"
)

// findOne runs a find for DatabaseService on c and checks it found one.
func findOne(t *testing.T, c *client, id string) {
	t.Helper()
	c.send(&bridge.FindFrame{ID: id, Service: "DatabaseService"})
	if res, end := c.collect(id); len(res) != 1 {
		t.Fatalf("find %s: %d results, end %#v; want 1 result", id, len(res), end)
	}
}

// TestSessionsPerAddr: one address that opens sessions and idles holds at
// most MaxSessionsPerAddr; beyond, it gets HTTP 429, and another address
// still gets a session and its finds answered.
func TestSessionsPerAddr(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "DatabaseService", 1)
	cfg := testConfig()
	cfg.MaxSessionsPerAddr = 4
	s := startServer(t, f, cfg)
	var held []*client
	const tries = 50 // the attacker's bounded flood
	for range tries {
		conn, resp, err := tryDial(s, dialOpts{from: attacker})
		if err != nil {
			if resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("attacker dial: %v (%v); want HTTP 429 with Retry-After", err, resp)
			}
			continue
		}
		t.Cleanup(func() { conn.CloseNow() })
		c := &client{t: t, conn: conn}
		c.hello("")
		held = append(held, c)
	}
	if len(held) != cfg.MaxSessionsPerAddr {
		t.Fatalf("one address holds %d sessions, want %d", len(held), cfg.MaxSessionsPerAddr)
	}
	if got := s.Stats().Refusals[bridge.ReasonAddrSessions]; got != tries-uint64(cfg.MaxSessionsPerAddr) {
		t.Fatalf("addr_sessions refusals: %d, want %d", got, tries-cfg.MaxSessionsPerAddr)
	}
	v := dial(t, s, dialOpts{from: victim})
	v.hello("")
	findOne(t, v, "v1")
	// A freed slot admits the attacker's address again.
	held[0].conn.Close(websocket.StatusNormalClosure, "bye")
	eventually(t, "the closed session to end", func() bool { return s.Stats().Sessions == cfg.MaxSessionsPerAddr })
	dial(t, s, dialOpts{from: attacker}).hello("")
}

// TestIdleSessions: a session without frames or finds is closed after
// IdleTimeout with an idle error; one whose find runs longer than that is
// not, until its find has ended.
func TestIdleSessions(t *testing.T) {
	f := newFakeFinder(t)
	f.hold["slowservice"] = true
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	s := startServer(t, f, cfg)

	idler := dial(t, s, dialOpts{})
	idler.hello("")
	busy := dial(t, s, dialOpts{})
	// The find goes with the hello, so that it is in flight as soon as
	// the session is open.
	busy.send(&bridge.HelloFrame{Version: bridge.Version})
	busy.send(&bridge.FindFrame{ID: "long", Service: "SlowService", TimeoutMS: 3 * cfg.IdleTimeout.Milliseconds()})
	if w, ok := busy.next().(*bridge.WelcomeFrame); !ok {
		t.Fatalf("got %#v, want welcome", w)
	}

	idler.expectError("", bridge.CodeIdle)
	idler.expectClosed(websocket.StatusNormalClosure)
	// The busy session's find ends first, then the session idles out.
	busy.expectError("long", bridge.CodeTimeout)
	busy.expectError("", bridge.CodeIdle)
	busy.expectClosed(websocket.StatusNormalClosure)
	if got := s.Stats().Refusals[bridge.ReasonIdle]; got != 2 {
		t.Fatalf("idle refusals: %d, want 2", got)
	}
	eventually(t, "the sessions to end", func() bool { return s.Stats().Sessions == 0 })
}

// rawConn opens a TCP connection to s from the loopback IP from and, if
// partial is set, sends the start of a request and never finishes it.
func rawConn(t *testing.T, s *server, from, partial string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: wait}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	if partial != "" {
		c.Write([]byte(partial))
	}
	return c
}

// closedByServer reports whether the server closed c (a read ends with
// EOF or a reset, not a timeout) within wait.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.ReadAll(c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestListenerCaps: the listener holds at most MaxOpenConnsPerAddr
// connections from one address and MaxOpenConns in all, closing any
// beyond at accept, so that slow clients cannot take every descriptor;
// another client still gets served once a slot frees.
func TestListenerCaps(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "DatabaseService", 1)
	cfg := testConfig()
	cfg.MaxOpenConns, cfg.MaxOpenConnsPerAddr = 6, 3
	s := startServer(t, f, cfg)
	slow := "GET /ws HTTP/1.1\r\nHost: x\r\n" // headers never end
	var held []net.Conn
	for _, from := range []string{attacker, victim} {
		for range cfg.MaxOpenConnsPerAddr {
			held = append(held, rawConn(t, s, from, slow))
		}
	}
	eventually(t, "the listener to hold 6 connections", func() bool { return s.Stats().Conns == cfg.MaxOpenConns })
	for _, from := range []string{attacker, bystander} {
		for i := range 5 { // bounded flood beyond the caps
			if c := rawConn(t, s, from, slow); !closedByServer(c) {
				t.Fatalf("connection %d from %s over the caps was not closed", i, from)
			}
		}
	}
	st := s.Stats()
	if st.Conns != cfg.MaxOpenConns || st.Refusals[bridge.ReasonAddrConns] != 5 || st.Refusals[bridge.ReasonOpenConns] != 5 {
		t.Fatalf("conns %d, refusals %v; want %d conns, addr_conns 5, open_conns 5",
			st.Conns, st.Refusals, cfg.MaxOpenConns)
	}
	held[len(held)-1].Close()
	eventually(t, "a slot to free", func() bool { return s.Stats().Conns < cfg.MaxOpenConns })
	c := dial(t, s, dialOpts{from: bystander})
	c.hello("")
	findOne(t, c, "b1")
}

// TestHeaderTimeout: a client that never finishes its request headers is
// disconnected after HeaderTimeout, and its slot is freed.
func TestHeaderTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.HeaderTimeout = 100 * time.Millisecond
	s := startServer(t, newFakeFinder(t), cfg)
	for _, partial := range []string{"", "GET /ws HTTP/1.1\r\nHost: x\r\n"} {
		if c := rawConn(t, s, attacker, partial); !closedByServer(c) {
			t.Fatalf("a client sending %q was not disconnected", partial)
		}
	}
	eventually(t, "the slots to free", func() bool { return s.Stats().Conns == 0 })
	if got := s.Stats().Refusals[bridge.ReasonHeaderTimeout]; got != 2 {
		t.Fatalf("header_timeout refusals: %d, want 2", got)
	}
	// A client that sends its request in time is not counted.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(s.httpURL() + bridge.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, "the health check's connection to close", func() bool { return s.Stats().Conns == 0 })
	if got := s.Stats().Refusals[bridge.ReasonHeaderTimeout]; got != 2 {
		t.Fatalf("header_timeout refusals after a served request: %d, want 2", got)
	}
}

// TestReserveFDs: the listener keeps ReserveFDs of the process's
// descriptors free: it holds at most RLIMIT_NOFILE - ReserveFDs; a reserve
// that leaves nothing fails New.
func TestReserveFDs(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ReserveFDs = int(lim.Cur)
	if _, err := bridge.New(newFakeFinder(t), cfg); !errors.Is(err, bridge.ErrBadConfig) {
		t.Fatalf("New with every descriptor reserved: %v, want ErrBadConfig", err)
	}
	cfg.ReserveFDs = int(lim.Cur) - 2 // room for two connections
	s := startServer(t, newFakeFinder(t), cfg)
	for _, from := range []string{attacker, victim} {
		rawConn(t, s, from, "GET / HTTP/1.1\r\n")
	}
	eventually(t, "the listener to hold 2 connections", func() bool { return s.Stats().Conns == 2 })
	if c := rawConn(t, s, bystander, ""); !closedByServer(c) {
		t.Fatal("a connection beyond the descriptor budget was not closed")
	}
	if got := s.Stats().Refusals[bridge.ReasonOpenConns]; got != 1 {
		t.Fatalf("open_conns refusals: %d, want 1", got)
	}
}

// TestTokenBackoff: a wrong token bars its address; guesses from it are
// refused before the token is compared (HTTP 429 at the upgrade, or
// rate_limited at hello on a session opened before), even the right token,
// while another address is served.
func TestTokenBackoff(t *testing.T) {
	f := newFakeFinder(t)
	f.add(t, "DatabaseService", 1)
	cfg := testConfig()
	cfg.Token = "right-token-0123456789"
	cfg.TokenBackoff, cfg.MaxTokenBackoff = time.Minute, time.Hour
	s := startServer(t, f, cfg)

	early := dial(t, s, dialOpts{from: attacker}) // opened before the first guess
	first := dial(t, s, dialOpts{from: attacker})
	first.send(&bridge.HelloFrame{Version: 1, Token: "guess-0000000000000000"})
	first.expectError("", bridge.CodeForbidden)
	first.expectClosed(websocket.StatusPolicyViolation)

	const guesses = 100 // the attacker's bounded guessing loop
	for i := range guesses {
		_, resp, err := tryDial(s, dialOpts{from: attacker})
		if err == nil || resp == nil || resp.StatusCode != 429 {
			t.Fatalf("guess %d: %v (%v); want HTTP 429", i, err, resp)
		}
		if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %q, want 1..60 s", resp.Header.Get("Retry-After"))
		}
	}
	early.send(&bridge.HelloFrame{Version: 1, Token: cfg.Token})
	e := early.expectError("", bridge.CodeRateLimited)
	t.Logf("barred hello: %s", e.Message)

	st := s.Stats().Refusals
	if st[bridge.ReasonToken] != 1 || st[bridge.ReasonTokenBackoff] != guesses+1 {
		t.Fatalf("refusals %v: want token 1 (one guess compared), token_backoff %d", st, guesses+1)
	}
	v := dial(t, s, dialOpts{from: victim})
	v.hello(cfg.Token)
	findOne(t, v, "v1")
}

// TestMaxFinds: the bridge runs at most MaxFinds finds at once across all
// sessions; beyond, a find gets busy, and a freed slot serves again.
func TestMaxFinds(t *testing.T) {
	f := newFakeFinder(t)
	f.started = make(chan string, 4)
	f.hold["slowservice"] = true
	f.add(t, "DatabaseService", 1)
	cfg := testConfig()
	cfg.MaxFinds = 2
	s := startServer(t, f, cfg)
	var hogs []*client
	for i := range cfg.MaxFinds {
		c := dial(t, s, dialOpts{from: attacker})
		c.hello("")
		c.send(&bridge.FindFrame{ID: fmt.Sprint("h", i), Service: "SlowService"})
		<-f.started
		hogs = append(hogs, c)
	}
	v := dial(t, s, dialOpts{from: victim})
	v.hello("")
	v.send(&bridge.FindFrame{ID: "v1", Service: "DatabaseService"})
	v.expectError("v1", bridge.CodeBusy)
	if st := s.Stats(); st.FindsRunning != 2 || st.Refusals[bridge.ReasonFinds] != 1 {
		t.Fatalf("finds running %d, refusals %v; want 2 and finds 1", st.FindsRunning, st.Refusals)
	}
	hogs[0].send(&bridge.CancelFrame{ID: "h0"})
	if _, end := hogs[0].collect("h0"); !end.(*bridge.DoneFrame).Cancelled {
		t.Fatalf("after cancel: %#v", end)
	}
	findOne(t, v, "v2")
}
