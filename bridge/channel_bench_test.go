package bridge_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/netget/netget-peer/bridge"
)

// BenchmarkBinaryVsBase64 measures the choice of PROTOCOL.md: a binary
// channel message as a binary WebSocket frame (AppendBinaryFrame, then
// ParseBinaryFrame on the other end) against base64 inside a JSON frame
// (marshal, then unmarshal and decode). Per size it reports both costs,
// their ratio and the bytes on the wire.
//
//	go test -run '^$' -bench BenchmarkBinaryVsBase64 ./bridge/
func BenchmarkBinaryVsBase64(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 16 << 10, 64 << 10} {
		data := bytes.Repeat([]byte{0xa5, 0x00, 0x7f, 0xff}, size/4)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			var binBytes, b64Bytes int
			binNS := perOp(b, func() {
				w := bridge.AppendBinaryFrame(make([]byte, 0, size+8), bridge.BinaryFrame{ID: "c1", Data: data})
				f, err := bridge.ParseBinaryFrame(w)
				if err != nil || len(f.Data) != size {
					b.Fatal(err)
				}
				binBytes = len(w)
			})
			b64NS := perOp(b, func() {
				w, _ := json.Marshal(&bridge.MessageFrame{Type: bridge.TypeMessage, ID: "c1",
					Data: base64.StdEncoding.EncodeToString(data)})
				var f bridge.MessageFrame
				if err := json.Unmarshal(w, &f); err != nil {
					b.Fatal(err)
				}
				got, err := base64.StdEncoding.DecodeString(f.Data)
				if err != nil || len(got) != size {
					b.Fatal(err)
				}
				b64Bytes = len(w)
			})
			b.ReportMetric(binNS, "binary-ns")
			b.ReportMetric(b64NS, "base64-ns")
			b.ReportMetric(b64NS/binNS, "base64/binary")
			b.ReportMetric(float64(binBytes), "binary-wire-B")
			b.ReportMetric(float64(b64Bytes), "base64-wire-B")
		})
	}
}

// perOp runs f b.N times and returns its mean cost in ns.
func perOp(b *testing.B, f func()) float64 {
	start := time.Now()
	for range b.N {
		f()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(b.N)
}

// BenchmarkChannelHop: the bridge's own cost on a channel. A WebSocket
// client talks through the bridge to an in-process echo provider (a fake
// Opener: no libp2p), against the same client talking to a WebSocket echo
// server directly. Reports round trip p50/p99 for both and the ratio,
// aggregate messages/s with 1, 100 and 1,000 channels (100 per session)
// and the ratio to direct, and heap+stack per open channel on the bridge
// (both ends live in this process; the sessions' WebSockets are shared by
// 100 channels each). The root package's BenchmarkChannelBridge measures
// the whole path through libp2p to a provider node.
//
//	go test -run '^$' -bench BenchmarkChannelHop -benchtime 2000x ./bridge/
func BenchmarkChannelHop(b *testing.B) {
	op := newFakeOpener(b)
	cfg := channelConfig(op)
	cfg.MaxChannels, cfg.MaxChannelsTotal = 100, 2000
	cfg.ChannelBytesPerSecond = 1 << 30
	cfg.FramesPerSecond, cfg.FrameBurst = 1e6, 1e6 // opens count as frames
	cfg.MaxConns, cfg.MaxSessionsPerAddr = 100, 100
	s := startServer(b, newFakeFinder(b), cfg)
	echo := startEchoServer(b)
	msg := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") // 64 bytes

	b.Run("rtt", func(b *testing.B) {
		direct := roundTrips(b, dialEcho(b, echo, 1)[0], nil, msg, b.N)
		sess := openSessions(b, s, 1)
		viaBridge := roundTrips(b, sess[0].conn, openBenchChannels(b, sess[0], 1), msg, b.N)
		b.ReportMetric(ms(direct[len(direct)/2]), "direct-p50-ms")
		b.ReportMetric(ms(direct[len(direct)*99/100]), "direct-p99-ms")
		b.ReportMetric(ms(viaBridge[len(viaBridge)/2]), "bridge-p50-ms")
		b.ReportMetric(ms(viaBridge[len(viaBridge)*99/100]), "bridge-p99-ms")
		b.ReportMetric(float64(viaBridge[len(viaBridge)/2])/float64(direct[len(direct)/2]), "p50-ratio")
	})
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			perChan := max(b.N/n, 20)
			conns := dialEcho(b, echo, n)
			directRate := throughput(b, n, perChan, func(i int) (*websocket.Conn, []string) { return conns[i], nil }, msg)
			sess := openSessions(b, s, (n+99)/100)
			ids := make([][]string, len(sess))
			for i, c := range sess {
				ids[i] = openBenchChannels(b, c, min(100, n-100*i))
			}
			bridgeRate := throughput(b, n, perChan, func(i int) (*websocket.Conn, []string) {
				return sess[i/100].conn, ids[i/100][i%100 : i%100+1]
			}, msg)
			b.ReportMetric(directRate, "direct-msgs/s")
			b.ReportMetric(bridgeRate, "bridge-msgs/s")
			b.ReportMetric(bridgeRate/directRate, "bridge/direct")
		})
	}
	b.Run("memory", func(b *testing.B) {
		const n = 1000
		before := memInUse()
		sess := openSessions(b, s, n/100)
		for _, c := range sess {
			openBenchChannels(b, c, 100)
		}
		b.ReportMetric(float64(memInUse()-before)/n/1024, "KiB/channel")
	})
}

// openSessions opens n sessions past their welcome.
func openSessions(b *testing.B, s *server, n int) []*client {
	out := make([]*client, n)
	for i := range out {
		out[i] = dial(b, s, dialOpts{})
		out[i].hello("")
	}
	return out
}

// openBenchChannels opens n echo channels on c and returns their ids.
func openBenchChannels(b *testing.B, c *client, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%d", i)
		c.send(&bridge.OpenFrame{ID: ids[i], Service: "Echo"})
	}
	for range ids {
		if _, ok := c.next().(*bridge.OpenedFrame); !ok {
			b.Fatal("open failed")
		}
	}
	return ids
}

// roundTrips sends msg and reads its echo n times; with ids, as a send
// frame on the channel ids[0] through the bridge. It returns the sorted
// round trip times.
func roundTrips(b *testing.B, c *websocket.Conn, ids []string, msg []byte, n int) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	frame := msg
	if ids != nil {
		frame, _ = bridge.Marshal(&bridge.SendFrame{ID: ids[0], Data: string(msg)})
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat
}

// throughput runs n ping-pong loops at once, perChan round trips each,
// and returns messages/s (each round trip is two messages). Channels that
// share a session share its reader: each session's frames are read by one
// goroutine and handed to the waiting loop by channel id.
func throughput(b *testing.B, n, perChan int, conn func(i int) (*websocket.Conn, []string), msg []byte) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type waiter = chan struct{}
	readers := map[*websocket.Conn]map[string]waiter{}
	for i := range n {
		c, ids := conn(i)
		if readers[c] == nil {
			readers[c] = map[string]waiter{}
		}
		key := ""
		if ids != nil {
			key = ids[0]
		}
		readers[c][key] = make(waiter, 1)
	}
	var g errgroup.Group
	for c, ws := range readers {
		g.Go(func() error {
			for done := 0; done < perChan*len(ws); done++ {
				_, raw, err := c.Read(ctx)
				if err != nil {
					return err
				}
				key := ""
				if _, single := ws[""]; !single {
					var f struct{ ID string }
					json.Unmarshal(raw, &f)
					key = f.ID
				}
				ws[key] <- struct{}{}
			}
			return nil
		})
	}
	start := time.Now()
	for i := range n {
		c, ids := conn(i)
		frame, key := msg, ""
		if ids != nil {
			frame, _ = bridge.Marshal(&bridge.SendFrame{ID: ids[0], Data: string(msg)})
			key = ids[0]
		}
		w := readers[c][key]
		g.Go(func() error {
			for range perChan {
				if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
					return err
				}
				select {
				case <-w:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return float64(2*n*perChan) / time.Since(start).Seconds()
}

// startEchoServer serves a WebSocket echo on 127.0.0.1.
func startEchoServer(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, m, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, m) != nil {
				return
			}
		}
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "ws://" + l.Addr().String()
}

// dialEcho opens n WebSockets to the echo server.
func dialEcho(b *testing.B, url string, n int) []*websocket.Conn {
	out := make([]*websocket.Conn, n)
	for i := range out {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		c, _, err := websocket.Dial(ctx, url, nil)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.CloseNow() })
		out[i] = c
	}
	return out
}
