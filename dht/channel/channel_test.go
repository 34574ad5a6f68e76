package channel_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

const network_ = "test"

// logBuf is a concurrency-safe log sink for asserting log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// provider is a host serving channels and a connected opener host.
type provider struct {
	srv    *channel.Server
	h, cli host.Host
	log    *logBuf
}

func newProvider(t *testing.T, cfg channel.Config) *provider {
	t.Helper()
	p := &provider{h: p2ptest.NewHost(t), cli: p2ptest.NewHost(t), log: &logBuf{}}
	cfg.Logger = slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := channel.NewServer(p.h, network_, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = srv
	t.Cleanup(func() { srv.Close() })
	p2ptest.Connect(t, p.cli, p.h)
	return p
}

func (p *provider) handle(t *testing.T, service string, h channel.Handler) {
	t.Helper()
	if err := p.srv.Handle(service, h); err != nil {
		t.Fatal(err)
	}
}

func (p *provider) open(ctx context.Context, cl channel.Claims) (*channel.Conn, error) {
	return channel.Open(ctx, p.cli, network_, p.h.ID(), cl, channel.Config{})
}

func (p *provider) mustOpen(t *testing.T, ctx context.Context, service string) *channel.Conn {
	t.Helper()
	c, err := p.open(ctx, channel.Claims{Service: service})
	if err != nil {
		t.Fatalf("open %s: %v", service, err)
	}
	t.Cleanup(func() { c.Close(channel.CloseNormal, "") })
	return c
}

// echoServe sends every message back until the channel ends.
func echoServe(ctx context.Context, c *channel.Conn) {
	for {
		m, err := c.Receive(ctx)
		if errors.Is(err, io.EOF) {
			c.CloseWrite(ctx)
			continue
		}
		if err != nil {
			return
		}
		if c.Send(ctx, m) != nil {
			return
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip sends m on c and checks that the same comes back.
func roundTrip(t *testing.T, ctx context.Context, c *channel.Conn, m channel.Message) {
	t.Helper()
	if err := c.Send(ctx, m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got, err := c.Receive(ctx)
	if err != nil || got.Type != m.Type || !bytes.Equal(got.Data, m.Data) {
		t.Fatalf("echo = %v %.32q, %v; want %v %.32q", got.Type, got.Data, err, m.Type, m.Data)
	}
}

func TestEchoAndEnd(t *testing.T) {
	p := newProvider(t, channel.Config{})
	p.handle(t, "Echo", channel.Accept(echoServe))
	ctx := testCtx(t)
	c := p.mustOpen(t, ctx, "Echo")
	roundTrip(t, ctx, c, channel.Message{Type: channel.Text, Data: []byte("héllo")})
	roundTrip(t, ctx, c, channel.Message{Type: channel.Binary, Data: bytes.Repeat([]byte{0, 255}, 100_000)})
	roundTrip(t, ctx, c, channel.Message{Type: channel.Binary})
	if err := c.CloseWrite(ctx); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if _, err := c.Receive(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive after both ends = %v, want io.EOF", err)
	}
	if err := c.Send(ctx, channel.Message{Type: channel.Text, Data: []byte("late")}); !errors.Is(err, channel.ErrClosed) {
		t.Errorf("Send after CloseWrite = %v, want ErrClosed", err)
	}
	if err := c.Send(ctx, channel.Message{Type: channel.Text, Data: []byte{0xff}}); !errors.Is(err, channel.ErrBadMessage) {
		t.Errorf("Send of text that is not UTF-8 = %v, want ErrBadMessage", err)
	}
}

func TestRefusals(t *testing.T) {
	p := newProvider(t, channel.Config{MaxChannelsPerPeer: 2})
	p.handle(t, "Echo", channel.Accept(echoServe))
	p.handle(t, "Web", channel.Filter{Origins: []string{"https://app.example"}}.Wrap(channel.Accept(echoServe)))
	p.handle(t, "Mine", channel.Filter{Peers: []peer.ID{p.h.ID()}}.Wrap(channel.Accept(echoServe)))
	p.handle(t, "Broken", func(context.Context, channel.Claims) (channel.ServeFunc, error) {
		return nil, errors.New("database down at 10.0.0.7")
	})
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		cl   channel.Claims
		code string
	}{
		{"no handler", channel.Claims{Service: "Nope"}, channel.CodeNotFound},
		{"origin not allowed", channel.Claims{Service: "Web", Origin: "https://evil.example"}, channel.CodeForbidden},
		{"no origin", channel.Claims{Service: "Web"}, channel.CodeForbidden},
		{"peer not allowed", channel.Claims{Service: "Mine"}, channel.CodeForbidden},
		{"handler failed", channel.Claims{Service: "Broken"}, channel.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.open(ctx, tc.cl)
			var re *channel.RefusedError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("open = %v, want a refusal %q", err, tc.code)
			}
			if strings.Contains(re.Reason, "10.0.0.7") {
				t.Errorf("refusal %q leaks the handler's error", re.Reason)
			}
		})
	}
	t.Run("origin allowed", func(t *testing.T) {
		c, err := p.open(ctx, channel.Claims{Service: "Web", Origin: "HTTPS://app.example"})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		c.Close(channel.CloseNormal, "")
	})
	t.Run("busy", func(t *testing.T) {
		waitFor(t, "the earlier channels to close", func() bool { return p.srv.Open() == 0 })
		a, b := p.mustOpen(t, ctx, "Echo"), p.mustOpen(t, ctx, "Echo")
		_, err := p.open(ctx, channel.Claims{Service: "Echo"})
		var re *channel.RefusedError
		if !errors.As(err, &re) || re.Code != channel.CodeBusy {
			t.Fatalf("third open with MaxChannelsPerPeer 2 = %v, want %q", err, channel.CodeBusy)
		}
		roundTrip(t, ctx, a, channel.Message{Type: channel.Text, Data: []byte("still here")})
		b.Close(channel.CloseNormal, "")
		waitFor(t, "the slot to free", func() bool { return p.srv.Open() == 1 })
		c := p.mustOpen(t, ctx, "Echo")
		roundTrip(t, ctx, c, channel.Message{Type: channel.Text, Data: []byte("now")})
	})
}

// waitFor waits up to 10 seconds for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestCloseCodes(t *testing.T) {
	closed := make(chan error, 1)
	p := newProvider(t, channel.Config{})
	p.handle(t, "Echo", channel.Accept(func(ctx context.Context, c *channel.Conn) {
		_, err := c.Receive(ctx)
		closed <- err
	}))
	p.handle(t, "Quit", channel.Accept(func(ctx context.Context, c *channel.Conn) {
		c.Close(4004, strings.Repeat("é", 100)) // cut to 123 bytes on a rune boundary
	}))
	ctx := testCtx(t)
	c := p.mustOpen(t, ctx, "Echo")
	if err := c.Close(999, ""); !errors.Is(err, channel.ErrBadCloseCode) {
		t.Fatalf("Close(999) = %v, want ErrBadCloseCode", err)
	}
	c.Close(4000, "bye")
	var ce *channel.CloseError
	if err := <-closed; !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
		t.Fatalf("provider's Receive = %v, want close 4000 bye", err)
	}
	q := p.mustOpen(t, ctx, "Quit")
	_, err := q.Receive(ctx)
	if !errors.As(err, &ce) || ce.Code != 4004 || ce.Reason != strings.Repeat("é", 61) {
		t.Fatalf("Receive = %v, want close 4004 with the reason cut to 122 bytes", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	p := newProvider(t, channel.Config{IdleTimeout: time.Second})
	p.handle(t, "Echo", channel.Accept(echoServe))
	ctx := testCtx(t)
	c := p.mustOpen(t, ctx, "Echo")
	roundTrip(t, ctx, c, channel.Message{Type: channel.Text, Data: []byte("x")})
	_, err := c.Receive(ctx)
	var ce *channel.CloseError
	if !errors.As(err, &ce) || ce.Code != channel.CloseGoingAway || !strings.Contains(ce.Reason, "idle") {
		t.Fatalf("Receive on an idle channel = %v, want close %d idle", err, channel.CloseGoingAway)
	}
}

func TestServerCloseAndProviderGone(t *testing.T) {
	p := newProvider(t, channel.Config{})
	p.handle(t, "Echo", channel.Accept(echoServe))
	ctx := testCtx(t)
	c := p.mustOpen(t, ctx, "Echo")
	p.srv.Close()
	var ce *channel.CloseError
	if _, err := c.Receive(ctx); !errors.As(err, &ce) || ce.Code != channel.CloseGoingAway {
		t.Fatalf("Receive after the provider's Close = %v, want close %d", err, channel.CloseGoingAway)
	}

	p = newProvider(t, channel.Config{})
	p.handle(t, "Echo", channel.Accept(echoServe))
	c = p.mustOpen(t, ctx, "Echo")
	p.h.Close() // the whole host goes, without a close frame
	start := time.Now()
	if _, err := c.Receive(ctx); !errors.Is(err, channel.ErrBroken) {
		t.Fatalf("Receive after the provider's host died = %v, want ErrBroken", err)
	}
	t.Logf("broken channel noticed in %s", time.Since(start))
}

// rawOpen opens a channel stream by hand: the attacker's side.
func rawOpen(t *testing.T, ctx context.Context, p *provider, service string) network.Stream {
	t.Helper()
	s, err := p.cli.NewStream(ctx, p.h.ID(), channel.Protocol(network_))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	b, _ := json.Marshal(map[string]any{"v": 1, "service": service, "max_message": 1 << 20})
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
	// The answer: a uvarint length and JSON.
	var n [1]byte
	if _, err := io.ReadFull(s, n[:]); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, n[0])
	if _, err := io.ReadFull(s, resp); err != nil || !strings.Contains(string(resp), `"ok":true`) {
		t.Fatalf("raw open answered %q, %v", resp, err)
	}
	return s
}

// readCloseFrame reads frames from s until a close frame, and returns its
// code and reason.
func readCloseFrame(t *testing.T, s network.Stream) (int, string) {
	t.Helper()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, _ := io.ReadAll(s)
	i := bytes.LastIndexByte(all, 8)
	for ; i >= 0; i = bytes.LastIndexByte(all[:i], 8) {
		n, k := binary.Uvarint(all[i+1:])
		if k > 0 && i+1+k+int(n) == len(all) && n >= 2 {
			b := all[i+1+k:]
			return int(binary.BigEndian.Uint16(b)), string(b[2:])
		}
	}
	t.Fatalf("no close frame in %q", all)
	return 0, ""
}

func TestHostileInput(t *testing.T) {
	p := newProvider(t, channel.Config{MaxMessageSize: 64 << 10})
	p.handle(t, "Echo", channel.Accept(echoServe))
	ctx := testCtx(t)
	bystander := p.mustOpen(t, ctx, "Echo")

	t.Run("garbage open request", func(t *testing.T) {
		s, err := p.cli.NewStream(ctx, p.h.ID(), channel.Protocol(network_))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Reset()
		s.Write([]byte("\x10GET / HTTP/1.1\r\n\r\n"))
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(s); err == nil {
			t.Fatal("the provider answered garbage instead of resetting the stream")
		}
		waitFor(t, "the log line", func() bool { return strings.Contains(p.log.String(), "bad open request") })
	})
	t.Run("oversized open request", func(t *testing.T) {
		s, err := p.cli.NewStream(ctx, p.h.ID(), channel.Protocol(network_))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Reset()
		s.Write(binary.AppendUvarint(nil, 1<<30))
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(s); err == nil {
			t.Fatal("the provider read on after a 1 GiB open request header")
		}
	})
	t.Run("oversized message", func(t *testing.T) {
		s := rawOpen(t, ctx, p, "Echo")
		// A header saying 1 GiB, then a little: only the header is read.
		s.Write(append([]byte{2}, binary.AppendUvarint(nil, 1<<30)...))
		s.Write(make([]byte, 1000))
		code, reason := readCloseFrame(t, s)
		if code != channel.CloseTooLarge || !strings.Contains(reason, "too large") {
			t.Fatalf("close %d %q, want %d too large", code, reason, channel.CloseTooLarge)
		}
	})
	t.Run("unknown frame type", func(t *testing.T) {
		s := rawOpen(t, ctx, p, "Echo")
		s.Write([]byte{7, 0})
		if code, _ := readCloseFrame(t, s); code != channel.CloseProtocolError {
			t.Fatalf("close %d, want %d", code, channel.CloseProtocolError)
		}
	})
	t.Run("text that is not UTF-8", func(t *testing.T) {
		s := rawOpen(t, ctx, p, "Echo")
		s.Write([]byte{1, 2, 0xc3, 0x28})
		if code, _ := readCloseFrame(t, s); code != channel.CloseInvalidData {
			t.Fatalf("close %d, want %d", code, channel.CloseInvalidData)
		}
	})
	t.Run("send over the other side's limit", func(t *testing.T) {
		c := p.mustOpen(t, ctx, "Echo")
		if c.SendLimit() != 64<<10 {
			t.Fatalf("SendLimit = %d, want the provider's 64 KiB", c.SendLimit())
		}
		err := c.Send(ctx, channel.Message{Type: channel.Binary, Data: make([]byte, 64<<10+1)})
		if !errors.Is(err, channel.ErrTooLarge) {
			t.Fatalf("Send over the limit = %v, want ErrTooLarge", err)
		}
		roundTrip(t, ctx, c, channel.Message{Type: channel.Binary, Data: make([]byte, 64<<10)})
	})
	// Nothing else was affected.
	roundTrip(t, ctx, bystander, channel.Message{Type: channel.Text, Data: []byte("unaffected")})
}

// TestOpenFlood: one peer opening far more channels than it may at once
// gets busy refusals (or resets from go-libp2p's own limits), never more
// than MaxChannelsPerPeer channels, and another peer is served meanwhile.
func TestOpenFlood(t *testing.T) {
	const per, flood = 8, 400
	p := newProvider(t, channel.Config{MaxChannelsPerPeer: per})
	p.handle(t, "Echo", channel.Accept(echoServe))
	ctx := testCtx(t)
	var (
		mu     sync.Mutex
		opened []*channel.Conn
		busy   int
		wg     sync.WaitGroup
	)
	for range flood {
		wg.Go(func() {
			c, err := p.open(ctx, channel.Claims{Service: "Echo"})
			var re *channel.RefusedError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				opened = append(opened, c)
			case errors.As(err, &re) && re.Code == channel.CodeBusy:
				busy++
			}
		})
	}
	wg.Wait()
	if len(opened) != per || busy == 0 {
		t.Fatalf("%d opens from one peer: %d opened, %d busy; want exactly %d opened and the rest refused", flood, len(opened), busy, per)
	}
	other := p2ptest.NewHost(t)
	p2ptest.Connect(t, other, p.h)
	c, err := channel.Open(ctx, other, network_, p.h.ID(), channel.Claims{Service: "Echo"}, channel.Config{})
	if err != nil {
		t.Fatalf("another peer during the flood: %v", err)
	}
	roundTrip(t, ctx, c, channel.Message{Type: channel.Text, Data: []byte("served")})
	c.Close(channel.CloseNormal, "")
	for _, c := range opened {
		c.Close(channel.CloseNormal, "")
	}
	waitFor(t, "every slot to free", func() bool { return p.srv.Open() == 0 })
}

func TestOpenRate(t *testing.T) {
	p := newProvider(t, channel.Config{OpenRate: 0.01, OpenBurst: 2})
	p.handle(t, "Echo", channel.Accept(echoServe))
	ctx := testCtx(t)
	for i := range 3 {
		c, err := p.open(ctx, channel.Claims{Service: "Echo"})
		var re *channel.RefusedError
		switch {
		case i < 2 && err != nil:
			t.Fatalf("open %d within the burst: %v", i, err)
		case i < 2:
			c.Close(channel.CloseNormal, "")
		case !errors.As(err, &re) || re.Code != channel.CodeRateLimited:
			t.Fatalf("open past the burst = %v, want %q", err, channel.CodeRateLimited)
		}
	}
}
