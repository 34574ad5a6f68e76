package channel_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/record"
)

// wsTarget serves a WebSocket on 127.0.0.1 with serve, and returns its
// ws:// URL.
func wsTarget(t *testing.T, serve func(ctx context.Context, ws *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		serve(r.Context(), ws)
	}))
	srv.Listener.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "ws://" + l.Addr().String() + "/chat"
}

// wsEcho echoes every message until the client closes; a message "quit"
// closes with 4001.
func wsEcho(ctx context.Context, ws *websocket.Conn) {
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if string(b) == "quit" {
			ws.Close(4001, "asked to quit")
			return
		}
		if ws.Write(ctx, typ, b) != nil {
			return
		}
	}
}

// tcpEcho echoes bytes on 127.0.0.1 until the client half-closes.
func tcpEcho(t *testing.T) string {
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
				io.Copy(c, c)
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}

func target(t *testing.T, raw string) *channel.Target {
	t.Helper()
	tg, err := channel.ParseTarget(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		remote bool
		mode   string // "" = refused
	}{
		{"ws://127.0.0.1:8080/chat", false, record.ChannelMessages},
		{"ws://localhost:8080", false, record.ChannelMessages},
		{"wss://[::1]:8443/x", false, record.ChannelMessages},
		{"tcp://127.0.0.1:5432", false, record.ChannelStream},
		{"tcp://db.internal:5432", true, record.ChannelStream},
		{"tcp://db.internal:5432", false, ""},
		{"ws://10.0.0.7:80/", false, ""},
		{"tcp://127.0.0.1:5432/path", false, ""},
		{"http://127.0.0.1:80/", false, ""},
		{"ws://127.0.0.1/chat", false, ""},
		{"ws://user@127.0.0.1:80/", false, ""},
		{"127.0.0.1:80", false, ""},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			tg, err := channel.ParseTarget(tc.raw, tc.remote)
			switch {
			case tc.mode == "" && !errors.Is(err, channel.ErrBadTarget):
				t.Fatalf("ParseTarget = %v, want ErrBadTarget", err)
			case tc.mode != "" && err != nil:
				t.Fatalf("ParseTarget: %v", err)
			case tc.mode != "" && tg.Mode() != tc.mode:
				t.Fatalf("Mode = %q, want %q", tg.Mode(), tc.mode)
			}
		})
	}
}

func TestTargetWebSocket(t *testing.T) {
	p := newProvider(t, channel.Config{})
	p.handle(t, "Chat", target(t, wsTarget(t, wsEcho)).Handler(channel.Filter{}, nil))
	ctx := testCtx(t)
	c := p.mustOpen(t, ctx, "Chat")
	roundTrip(t, ctx, c, channel.Message{Type: channel.Text, Data: []byte("hi")})
	roundTrip(t, ctx, c, channel.Message{Type: channel.Binary, Data: []byte{0, 1, 2}})
	if err := c.Send(ctx, channel.Message{Type: channel.Text, Data: []byte("quit")}); err != nil {
		t.Fatal(err)
	}
	var ce *channel.CloseError
	if _, err := c.Receive(ctx); !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "asked to quit" {
		t.Fatalf("Receive after the target closed = %v, want close 4001 asked to quit", err)
	}

	// The opener's close reaches the target with its code.
	closed := make(chan error, 1)
	p.handle(t, "Watch", target(t, wsTarget(t, func(ctx context.Context, ws *websocket.Conn) {
		_, _, err := ws.Read(ctx)
		closed <- err
	})).Handler(channel.Filter{}, nil))
	w := p.mustOpen(t, ctx, "Watch")
	w.Close(4002, "done here")
	var wce websocket.CloseError
	if err := <-closed; !errors.As(err, &wce) || wce.Code != 4002 || wce.Reason != "done here" {
		t.Fatalf("the target's Read after the opener closed = %v, want close 4002 done here", err)
	}
}

func TestTargetTCP(t *testing.T) {
	p := newProvider(t, channel.Config{})
	p.handle(t, "Echo", target(t, tcpEcho(t)).Handler(channel.Filter{}, nil))
	ctx := testCtx(t)
	c := p.mustOpen(t, ctx, "Echo")
	want := strings.Repeat("0123456789", 10_000)
	if err := c.Send(ctx, channel.Message{Type: channel.Binary, Data: []byte(want)}); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(ctx); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		m, err := c.Receive(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Receive: %v after %d bytes", err, len(got))
		}
		got = append(got, m.Data...)
	}
	if string(got) != want {
		t.Fatalf("echoed %d bytes, want the %d sent", len(got), len(want))
	}
}

func TestTargetDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	p := newProvider(t, channel.Config{})
	p.handle(t, "WS", target(t, "ws://"+addr+"/").Handler(channel.Filter{}, nil))
	p.handle(t, "TCP", target(t, "tcp://"+addr).Handler(channel.Filter{}, nil))
	ctx := testCtx(t)
	for _, svc := range []string{"WS", "TCP"} {
		_, err := p.open(ctx, channel.Claims{Service: svc})
		var re *channel.RefusedError
		if !errors.As(err, &re) || re.Code != channel.CodeUnavailable {
			t.Fatalf("open %s with its target down = %v, want %q", svc, err, channel.CodeUnavailable)
		}
	}
}

// TestSlowTargetMemoryFlat: a target that stops reading pauses the opener
// (Send blocks) instead of letting anything queue: the bytes the opener
// gets rid of, and the heap, stay bounded while it offers far more.
func TestSlowTargetMemoryFlat(t *testing.T) {
	stalled := make(chan struct{})
	p := newProvider(t, channel.Config{})
	p.handle(t, "Slow", target(t, wsTarget(t, func(ctx context.Context, ws *websocket.Conn) {
		<-stalled // never reads
	})).Handler(channel.Filter{}, nil))
	defer close(stalled)
	ctx := testCtx(t)
	c := p.mustOpen(t, ctx, "Slow")

	heapBefore := heapInUse()
	const msg, offer = 16 << 10, 512 << 20 // offers 512 MiB
	var sent atomic.Int64
	sendCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		data := make([]byte, msg)
		for sent.Load() < offer {
			if err := c.Send(sendCtx, channel.Message{Type: channel.Binary, Data: data}); err != nil {
				done <- err
				return
			}
			sent.Add(msg)
		}
		done <- nil
	}()
	// Wait until Send has been blocked for a second: backpressure holds.
	last, since := int64(-1), time.Now()
	waitFor(t, "Send to block", func() bool {
		if n := sent.Load(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > time.Second
	})
	heapBlocked := heapInUse()
	stop()
	if err := <-done; err == nil {
		t.Fatalf("the opener sent all %d MiB to a target that reads nothing", offer>>20)
	}
	growth := int64(heapBlocked) - int64(heapBefore)
	t.Logf("blocked after %.1f MiB sent of %d MiB offered; heap grew %.1f MiB", float64(last)/(1<<20), offer>>20, float64(growth)/(1<<20))
	if last > 64<<20 {
		t.Errorf("%.1f MiB went out before Send blocked; want at most 64 MiB in flight", float64(last)/(1<<20))
	}
	if growth > 48<<20 {
		t.Errorf("heap grew %.1f MiB with the target stalled; want at most 48 MiB", float64(growth)/(1<<20))
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
