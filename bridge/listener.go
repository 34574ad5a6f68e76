package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// addrKey is the client address every per-address limit counts by: the
// IPv4 address, or the /64 of an IPv6 address (one host's usual share).
// It is the one place that rule lives. An address that does not parse is
// its own key.
func addrKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// openConnsCap is how many connections Serve may hold: MaxOpenConns, or
// fewer when the process's descriptor limit minus ReserveFDs is lower.
func openConnsCap(c *Config) (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return c.MaxOpenConns, nil // no limit to keep a reserve under
	}
	room := int64(lim.Cur) - int64(c.ReserveFDs)
	if room < 1 {
		return 0, fmt.Errorf("%w: the process may open %d files; keeping %d for the node leaves none for the bridge "+
			"(lower the reserve or raise ulimit -n)", ErrBadConfig, lim.Cur, c.ReserveFDs)
	}
	return int(min(room, int64(c.MaxOpenConns))), nil
}

// limitListener caps the connections Serve holds, in all and per address,
// before any byte is read: one over either cap is closed as soon as it is
// accepted and counted.
type limitListener struct {
	net.Listener
	max, perAddr int
	stats        *counters

	mu     sync.Mutex
	open   int
	byAddr map[string]int
}

func newLimitListener(l net.Listener, max, perAddr int, stats *counters) *limitListener {
	return &limitListener{Listener: l, max: max, perAddr: perAddr, stats: stats, byAddr: make(map[string]int)}
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr().String())
		if reason := l.acquire(key); reason != "" {
			l.stats.refuse(reason)
			c.Close()
			continue
		}
		l.stats.conns.Add(1)
		return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

// acquire takes a slot for key; it returns the refusal reason when full.
func (l *limitListener) acquire(key string) Reason {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.byAddr[key] >= l.perAddr:
		return ReasonAddrConns
	case l.open >= l.max:
		return ReasonOpenConns
	}
	l.open++
	l.byAddr[key]++
	return ""
}

func (l *limitListener) release(key string) {
	l.stats.conns.Add(-1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
}

// limitedConn gives its slot back when closed, once. It notes whether a
// read timed out before its first request, so that the server can count
// clients too slow to send their headers.
type limitedConn struct {
	net.Conn
	release  func()
	closed   atomic.Bool
	served   atomic.Bool // a request reached the handler
	timedOut atomic.Bool // a read timed out before that
	cork     cork        // holds writes to send them as one (cork.go)
}

// Write writes p, or keeps it while the connection is corked.
func (c *limitedConn) Write(p []byte) (int, error) {
	if c.cork.keep(p) {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Read reads from the connection, noting a timeout before any request.
func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !c.served.Load() && isTimeout(err) {
		c.timedOut.Store(true)
	}
	return n, err
}

// isTimeout reports whether err is a net.Error that timed out. It is a
// function of its own so that the net.Error errors.As needs is only
// allocated on a failed read: declared in Read, it escaped to the heap on
// every read (a find's largest allocation in BenchmarkBridgeServer's
// profile).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connKey is the context key under which ConnContext stores a
// connection's *limitedConn.
type connKey struct{}

// connContext is the http.Server's ConnContext hook: it lets handlers
// find their connection's *limitedConn.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc := asLimited(c); lc != nil {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// markServed wraps the bridge's handler: a request that reached it was
// read in time.
func markServed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lc, ok := r.Context().Value(connKey{}).(*limitedConn); ok {
			lc.served.Store(true)
		}
		h.ServeHTTP(w, r)
	})
}

// connState is the http.Server's ConnState hook: it counts a connection
// closed because its first request's headers (or TLS handshake) did not
// arrive within HeaderTimeout.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	if lc := asLimited(c); lc != nil && st == http.StateClosed && !lc.served.Load() && lc.timedOut.Load() {
		s.stats.refuse(ReasonHeaderTimeout)
	}
}

// asLimited returns the *limitedConn under c (c itself, or under TLS), or nil.
func asLimited(c net.Conn) *limitedConn {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

// Close closes the connection and frees its slot.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.release()
	}
	return err
}
