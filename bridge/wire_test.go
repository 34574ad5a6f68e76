package bridge_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netget/netget-peer/bridge"
)

var update = flag.Bool("update", false, "rewrite testdata/frames from the Go values")

// exampleFrames are the golden frames of PROTOCOL.md, one file each under
// testdata/frames.
func exampleFrames() []struct {
	name  string
	frame any
} {
	issued := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return append([]struct {
		name  string
		frame any
	}{
		{"hello", &bridge.HelloFrame{Type: "hello", Version: 1, Token: "9f2c4e1a7b3d5f60", Network: "development", Client: "netget-handshaker/1"}},
		{"welcome", &bridge.WelcomeFrame{Type: "welcome", Version: 1, Peer: "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK",
			Network: "development", Limits: bridge.Limits{FrameBytes: 8192, InFlight: 8, MaxResults: 32,
				FramesPerSecond: 20, FindTimeoutMS: 10000, MaxFindTimeoutMS: 30000, Watches: 8},
			Features: []string{"find", "watch"}}},
		{"find", &bridge.FindFrame{Type: "find", ID: "f1", Service: "DatabaseService", Limit: 5, TimeoutMS: 3000}},
		{"result", &bridge.ResultFrame{Type: "result", ID: "f1", Source: "registry", ElapsedMS: 0.42,
			Record: bridge.Record{Peer: "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp", Service: "DatabaseService",
				Network: "development", Addrs: []string{"/ip4/10.0.0.7/tcp/4001", "/ip4/10.0.0.7/udp/4001/quic-v1"},
				Meta: map[string]string{"engine": "postgres", "region": "eu-west"}, Seq: 1777636800000000,
				IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}}},
		{"done", &bridge.DoneFrame{Type: "done", ID: "f1", Count: 1}},
		{"done-cancelled", &bridge.DoneFrame{Type: "done", ID: "f2", Count: 0, Cancelled: true}},
		{"cancel", &bridge.CancelFrame{Type: "cancel", ID: "f2"}},
		{"ping", &bridge.PingFrame{Type: "ping", ID: "p1"}},
		{"pong", &bridge.PongFrame{Type: "pong", ID: "p1"}},
		{"error-find", &bridge.ErrorFrame{Type: "error", ID: "f3", Code: bridge.CodeNotFound, Message: "no provider of CacheService found"}},
		{"error-session", &bridge.ErrorFrame{Type: "error", Code: bridge.CodeForbidden, Message: "origin not allowed"}},
		{"watch", &bridge.WatchFrame{Type: "watch", ID: "w1", Service: "DatabaseService", Where: map[string]string{"region": "eu-west"}}},
		{"removed", &bridge.RemovedFrame{Type: "removed", ID: "w1", Peer: "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
			Reason: bridge.RemovedWithdrawn}},
	}, channelFrames(issued)...)
}

// channelFrames are the golden channel frames of PROTOCOL.md.
func channelFrames(issued time.Time) []struct {
	name  string
	frame any
} {
	provider := "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
	return []struct {
		name  string
		frame any
	}{
		{"welcome-channels", &bridge.WelcomeFrame{Type: "welcome", Version: 1, Peer: "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK",
			Network: "development", Limits: bridge.Limits{FrameBytes: 8192, InFlight: 8, MaxResults: 32,
				FramesPerSecond: 20, FindTimeoutMS: 10000, MaxFindTimeoutMS: 30000, MessageBytes: 65536, Channels: 16,
				ChannelBytesPerSecond: 1048576}, Features: []string{"find", "channel"}}},
		{"open", &bridge.OpenFrame{Type: "open", ID: "c1", Service: "ChatService", Where: map[string]string{"room": "lobby"},
			Token: "s3cret-chat-token"}},
		{"opened", &bridge.OpenedFrame{Type: "opened", ID: "c1", Peer: provider, Record: bridge.Record{Peer: provider,
			Service: "ChatService", Network: "development", Addrs: []string{"/ip4/10.0.0.7/tcp/4001"},
			Meta: map[string]string{"netget.channel": "1", "room": "lobby"}, Seq: 1777636800000000,
			IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}}},
		{"send", &bridge.SendFrame{Type: "send", ID: "c1", Data: "hello, lobby"}},
		{"message", &bridge.MessageFrame{Type: "message", ID: "c1", Data: "alice: hello, lobby"}},
		{"close", &bridge.CloseFrame{Type: "close", ID: "c1", Code: 1000, Reason: "bye"}},
		{"close-lost", &bridge.CloseFrame{Type: "close", ID: "c2", Code: 1006, Reason: "connection to the provider lost"}},
		{"error-open", &bridge.ErrorFrame{Type: "error", ID: "c3", Code: bridge.CodeForbidden, Message: "refused by the provider: origin not allowed"}},
	}
}

// TestGoldenFrames: every example frame marshals to its golden file and
// parses back to the same value.
func TestGoldenFrames(t *testing.T) {
	for _, ex := range exampleFrames() {
		t.Run(ex.name, func(t *testing.T) {
			path := filepath.Join("testdata", "frames", ex.name+".json")
			got, err := bridge.Marshal(ex.frame)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, bytes.TrimSpace(want)) {
				t.Fatalf("marshal:\n got %s\nwant %s", got, want)
			}
			var parsed any
			switch ex.frame.(type) {
			case *bridge.CloseFrame: // both ways; the bridge sends codes a page may not
				parsed, err = bridge.ParseServerFrame(want)
			case bridge.ClientFrame:
				parsed, err = bridge.ParseClientFrame(want)
			default:
				parsed, err = bridge.ParseServerFrame(want)
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(parsed, ex.frame) {
				t.Fatalf("parse:\n got %#v\nwant %#v", parsed, ex.frame)
			}
		})
	}
}

// TestParseClientFrameErrors: each malformed frame is refused with the
// right sentinel.
func TestParseClientFrameErrors(t *testing.T) {
	tests := []struct {
		name, frame string
		want        error
	}{
		{"empty", ``, bridge.ErrBadFrame},
		{"array", `[]`, bridge.ErrBadFrame},
		{"truncated", `{"type":"find"`, bridge.ErrBadFrame},
		{"trailing", `{"type":"ping"} {}`, bridge.ErrBadFrame},
		{"no type", `{"id":"x"}`, bridge.ErrBadFrame},
		{"type not a string", `{"type":5}`, bridge.ErrBadFrame},
		{"server frame", `{"type":"welcome"}`, bridge.ErrUnknownType},
		{"unknown", `{"type":"subscribe"}`, bridge.ErrUnknownType},
		{"hello v0", `{"type":"hello","version":0}`, bridge.ErrBadFrame},
		{"hello bad network", `{"type":"hello","version":1,"network":"Prod"}`, bridge.ErrBadFrame},
		{"find no id", `{"type":"find","service":"A"}`, bridge.ErrBadFrame},
		{"find long id", `{"type":"find","id":"` + string(bytes.Repeat([]byte("x"), 65)) + `","service":"A"}`, bridge.ErrBadFrame},
		{"find id with space", `{"type":"find","id":"a b","service":"A"}`, bridge.ErrBadFrame},
		{"find numeric id", `{"type":"find","id":7,"service":"A"}`, bridge.ErrBadFrame},
		{"find no service", `{"type":"find","id":"a"}`, bridge.ErrBadFrame},
		{"find bad service", `{"type":"find","id":"a","service":"a/b"}`, bridge.ErrBadFrame},
		{"find negative timeout", `{"type":"find","id":"a","service":"A","timeout_ms":-5}`, bridge.ErrBadFrame},
		{"cancel no id", `{"type":"cancel"}`, bridge.ErrBadFrame},
		{"ping bad id", `{"type":"ping","id":"\u0000"}`, bridge.ErrBadFrame},
		{"watch no id", `{"type":"watch","service":"A"}`, bridge.ErrBadFrame},
		{"watch bad service", `{"type":"watch","id":"w","service":"a b"}`, bridge.ErrBadFrame},
		{"watch negative limit", `{"type":"watch","id":"w","service":"A","limit":-1}`, bridge.ErrBadFrame},
		{"watch where not an object", `{"type":"watch","id":"w","service":"A","where":["a"]}`, bridge.ErrBadFrame},
		{"watch where value not a string", `{"type":"watch","id":"w","service":"A","where":{"a":1}}`, bridge.ErrBadFrame},
		{"watch where empty key", `{"type":"watch","id":"w","service":"A","where":{"":"x"}}`, bridge.ErrBadFrame},
		{"watch where long value", `{"type":"watch","id":"w","service":"A","where":{"k":"` + string(bytes.Repeat([]byte("v"), 513)) + `"}}`, bridge.ErrBadFrame},
		{"watch where too many pairs", `{"type":"watch","id":"w","service":"A","where":{` + manyPairs(33) + `}}`, bridge.ErrBadFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := bridge.ParseClientFrame([]byte(tt.frame))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseClientFrame(%s) = %#v, %v; want %v", tt.frame, f, err, tt.want)
			}
		})
	}
}

// FuzzParseClientFrame: the decoder of untrusted client frames never
// panics, and what it accepts is within the protocol's limits and
// survives a round trip.
func FuzzParseClientFrame(f *testing.F) {
	for _, ex := range exampleFrames() {
		if _, ok := ex.frame.(bridge.ClientFrame); ok {
			b, err := bridge.Marshal(ex.frame)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"type":"find","id":"a","service":"bad name!"}`))
	f.Add([]byte(`{"type":"find","id":"x","service":"A","limit":-1,"timeout_ms":1e99}`))
	f.Add([]byte(`{"type":"hello","version":1,"extra":{"nested":[1,2,3]}}`))
	f.Add([]byte(` {"type":"ping"} `))
	f.Add([]byte(`{"type":"watch","id":"w","service":"A","where":{"a":"1","a":"2"},"limit":3}`))
	f.Add([]byte(`{"type":"watch","id":"w","service":"A","where":{}}`))
	f.Add([]byte(`{"type":"open","id":"c","service":"A","where":{"k":"v","":"x"},"peer":7}`))
	f.Add([]byte(`{"type":"close","id":"c","code":1006,"reason":"x"}`))
	f.Add([]byte(`{"type":"send","id":"c","data":"\ud800"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := bridge.ParseClientFrame(b)
		if err != nil {
			if !errors.Is(err, bridge.ErrBadFrame) && !errors.Is(err, bridge.ErrUnknownType) {
				t.Fatalf("error %v wraps neither ErrBadFrame nor ErrUnknownType", err)
			}
			return
		}
		switch fr := fr.(type) {
		case *bridge.HelloFrame:
			if fr.Version < 1 {
				t.Fatalf("accepted hello version %d", fr.Version)
			}
		case *bridge.FindFrame:
			if fr.ID == "" || len(fr.ID) > bridge.MaxIDLen || fr.Service == "" || fr.Limit < 0 || fr.TimeoutMS < 0 {
				t.Fatalf("accepted find %+v", fr)
			}
		case *bridge.CancelFrame:
			if fr.ID == "" {
				t.Fatal("accepted cancel without id")
			}
		case *bridge.PingFrame:
		case *bridge.WatchFrame:
			if fr.ID == "" || len(fr.ID) > bridge.MaxIDLen || fr.Service == "" || fr.Limit < 0 || len(fr.Where) > 32 {
				t.Fatalf("accepted watch %+v", fr)
			}
		case *bridge.OpenFrame:
			if fr.ID == "" || fr.Service == "" || len(fr.Where) > 32 {
				t.Fatalf("accepted open %+v", fr)
			}
		case *bridge.SendFrame:
			if fr.ID == "" {
				t.Fatal("accepted send without id")
			}
		case *bridge.CloseFrame:
			if fr.ID == "" || len(fr.Reason) > bridge.MaxCloseReason || (fr.Code != 0 && fr.Code != 1000 && fr.Code < 3000) {
				t.Fatalf("accepted close %+v", fr)
			}
		default:
			t.Fatalf("accepted %T", fr)
		}
		again, err := bridge.Marshal(fr)
		if err != nil {
			t.Fatalf("re-marshal %#v: %v", fr, err)
		}
		back, err := bridge.ParseClientFrame(again)
		if err != nil || !reflect.DeepEqual(back, fr) {
			t.Fatalf("round trip of %s: %#v, %v; want %#v", again, back, err, fr)
		}
	})
}

// manyPairs returns n distinct JSON object members "kI":"v".
func manyPairs(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	return b.String()
}

// FuzzParseBinaryFrame: the decoder of binary channel messages never
// panics, and what it accepts has a valid id and survives a round trip.
func FuzzParseBinaryFrame(f *testing.F) {
	f.Add(bridge.AppendBinaryFrame(nil, bridge.BinaryFrame{ID: "c1", Data: []byte{0, 1, 2, 255}}))
	f.Add(bridge.AppendBinaryFrame(nil, bridge.BinaryFrame{ID: "c1"}))
	f.Add([]byte{1, 64, 'a'})
	f.Add([]byte{1, 0})
	f.Add([]byte{2, 1, 'a', 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := bridge.ParseBinaryFrame(b)
		if err != nil {
			if !errors.Is(err, bridge.ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if fr.ID == "" || len(fr.ID) > bridge.MaxIDLen {
			t.Fatalf("accepted id %q", fr.ID)
		}
		if again := bridge.AppendBinaryFrame(nil, fr); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x, want %x", again, b)
		}
	})
}
