package dht_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// rawExchange writes frame (already length-prefixed) to n's registry
// protocol from h and returns the decoded response, or the stream's error.
func rawExchange(t *testing.T, h host.Host, n *dht.Node, frame []byte) (map[string]json.RawMessage, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, n.Host().ID(), registry.Protocol(n.Network()))
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer s.Close()
	if _, err := s.Write(frame); err != nil {
		return nil, err
	}
	s.CloseWrite()
	r := bufio.NewReader(s)
	size, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	return resp, nil
}

func frame(body []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(body))), body...) }

func jsonFrame(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return frame(b)
}

// TestPutRefusesLikeTheDHT: every record the DHT refuses on write is refused
// over the registry protocol's put with the same error, and counted.
func TestPutRefusesLikeTheDHT(t *testing.T) {
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 1})
	sender, reg := net.Nodes[0], net.Registries[0]
	key := sender.Host().Peerstore().PrivKey(sender.Host().ID())
	dhtKey := recordtest.Key(t, "development", recordtest.Service, sender.Host().ID())
	for _, tc := range recordtest.Bad(t, key, time.Now()) {
		if tc.Want == record.ErrPeerMismatch || tc.Want == record.ErrWrongCID {
			continue // key-binding checks: a put carries no key
		}
		t.Run(tc.Name, func(t *testing.T) {
			dhtErr := sender.Kad().PutValue(context.Background(), dhtKey, tc.Data)
			before := reg.Rejections()[tc.Want]
			resp, err := rawExchange(t, sender.Host(), reg, jsonFrame(t, map[string]any{"type": "put", "record": tc.Data}))
			if err != nil {
				t.Fatalf("put: stream error %v, want an error response", err)
			}
			var msg string
			json.Unmarshal(resp["error"], &msg)
			if !errors.Is(dhtErr, tc.Want) || !strings.Contains(msg, tc.Want.Error()) {
				t.Fatalf("put error %q, DHT error %v; want both to be %q", msg, dhtErr, tc.Want)
			}
			if reg.Rejections()[tc.Want] != before+1 {
				t.Fatalf("rejection %v not counted", tc.Want)
			}
		})
	}
	t.Run("replayed older record", func(t *testing.T) {
		ctx := testCtx(t)
		old, err := sender.Publish(ctx, dht.Spec{Name: "ReplayService", Meta: map[string]string{"v": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		oldEnv := sealAs(t, sender, old)
		if _, err := sender.Publish(ctx, dht.Spec{Name: "ReplayService", Meta: map[string]string{"v": "2"}}); err != nil {
			t.Fatal(err)
		}
		settle(t, sender)
		c, _ := record.ServiceCID("development", "ReplayService")
		dhtErr := sender.Kad().PutValue(ctx, record.Key(c, sender.Host().ID()), oldEnv)
		resp, err := rawExchange(t, sender.Host(), reg, jsonFrame(t, map[string]any{"type": "put", "record": oldEnv}))
		if err != nil {
			t.Fatalf("put: stream error %v, want an error response", err)
		}
		var msg string
		json.Unmarshal(resp["error"], &msg)
		if dhtErr == nil || !strings.Contains(msg, record.ErrOlderSeq.Error()) {
			t.Fatalf("replay over put: %q, over the DHT: %v; want both refused as %q", msg, dhtErr, record.ErrOlderSeq)
		}
	})
}

// logBuffer collects log lines, safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRegistryProtocolBadMessages: garbage, oversized and unknown requests
// reset the stream with a log line saying why, and the node's records are
// unchanged.
func TestRegistryProtocolBadMessages(t *testing.T) {
	ctx := testCtx(t)
	logs := &logBuffer{}
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 2, Configure: func(c *dht.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}})
	prov, client, reg := net.Nodes[0], net.Nodes[1], net.Registries[0]
	if _, err := prov.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatal(err)
	}
	c, _ := record.ServiceCID("development", "DatabaseService")
	list := jsonFrame(t, map[string]any{"type": "list", "cid": c.String()})
	held := func() int {
		resp, err := rawExchange(t, client.Host(), reg, list)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		var recs [][]byte
		json.Unmarshal(resp["records"], &recs)
		return len(recs)
	}
	if got := held(); got != 1 {
		t.Fatalf("registry holds %d records for the service, want 1 (pushed by provide)", got)
	}
	tests := []struct {
		name    string
		frame   []byte
		wantLog string
	}{
		{"garbage", frame([]byte("\x00\xffnot json")), "invalid character"},
		{"oversized", binary.AppendUvarint(nil, registry.MaxMessageSize+1), "message too large"},
		{"unknown type", jsonFrame(t, map[string]any{"type": "delete", "cid": c.String()}), `unknown type \"delete\"`},
		{"unknown field", jsonFrame(t, map[string]any{"type": "list", "cid": c.String(), "all": true}), `unknown field \"all\"`},
		{"bad cid", jsonFrame(t, map[string]any{"type": "list", "cid": "bafy-nope"}), "cid:"},
		{"put without record", jsonFrame(t, map[string]any{"type": "put"}), "put takes exactly one record"},
		{"truncated", frame([]byte(`{"type":"li`))[:5], "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, err := rawExchange(t, client.Host(), reg, tt.frame); err == nil {
				t.Fatalf("got a response %v, want the stream reset", resp)
			}
			if got := held(); got != 1 {
				t.Fatalf("after %s the registry holds %d records, want 1", tt.name, got)
			}
			eventually(t, "a log line saying why the stream was reset", func() bool {
				for _, l := range strings.Split(logs.String(), "\n") {
					if strings.Contains(l, "registry stream reset") && strings.Contains(l, client.Host().ID().String()) &&
						strings.Contains(l, tt.wantLog) {
						return true
					}
				}
				return false
			})
		})
	}
}

// firstResult runs a Find with Limit 1 and returns its result.
func firstResult(t *testing.T, finder *dht.Node, name string, opts dht.FindOptions) dht.Result {
	t.Helper()
	opts.Limit = 1
	var r dht.Result
	ok := false
	err := finder.Find(testCtx(t), name, opts, func(got dht.Result) bool {
		r, ok = got, true
		return false
	})
	if err != nil && !errors.Is(err, dht.ErrFindTimeout) {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("finder %s found no %s", finder.Host().ID(), name)
	}
	return r
}

// TestFindFastPath: with registries connected, a find's first result comes
// by the registry path, which the provider pushed to.
func TestFindFastPath(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 2, Nodes: 12})
	prov := net.Nodes[0]
	if _, err := prov.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatal(err)
	}
	// Clients that joined after the publish: they hold nothing themselves.
	for range 3 {
		finder := dhttest.NewNode(t, "development", dht.ModeClient, nil)
		for _, reg := range net.Registries {
			p2ptest.Connect(t, finder.Host(), reg.Host())
			finder.AddRegistry(reg.Host().ID())
		}
		if got := len(finder.Registries()); got != 2 {
			t.Fatalf("finder %s has %d registries, want 2", finder.Host().ID(), got)
		}
		r := firstResult(t, finder, "DatabaseService", dht.FindOptions{})
		if r.Source != dht.SourceRegistry || r.Record.Peer != prov.Host().ID() {
			t.Fatalf("first result: %s by %q, want %s by %q", r.Record.Peer, r.Source, prov.Host().ID(), dht.SourceRegistry)
		}
	}
}

// TestFindDHTPathWithoutDialling: on the DHT path alone, the first result
// comes from a connected peer near the service, a peer the walk met or this
// node's own index, not by dialling the provider.
func TestFindDHTPathWithoutDialling(t *testing.T) {
	net, prov := publishedNetwork(t, dhttest.Options{Registries: 2, Nodes: 12}, "DatabaseService")
	for _, finder := range net.Nodes[1:6] {
		r := firstResult(t, finder, "DatabaseService", dht.FindOptions{DHTOnly: true})
		if want := []dht.Source{dht.SourceNear, dht.SourceWalk, dht.SourceLocal}; !slices.Contains(want, r.Source) {
			t.Fatalf("first result came by %q, want one of %q", r.Source, want)
		}
		if r.Record.Peer != prov.Host().ID() {
			t.Fatalf("found %s, want %s", r.Record.Peer, prov.Host().ID())
		}
	}
}

// TestFindAsksNearestFirst: on the DHT path, a find first asks the
// connected DHT servers nearest the service, which the provider gave its
// record to; when they hold nothing, the walk still finds it.
func TestFindAsksNearestFirst(t *testing.T) {
	net, prov := publishedNetwork(t, dhttest.Options{Registries: 1, Nodes: 6}, "QueueService")
	holder := net.Nodes[2]
	if holder.StoredRecords() == 0 {
		t.Fatalf("%s, one of the 7 servers, holds no record after the publish", holder.Host().ID())
	}
	// A client connected to the holder alone: the holder is its nearest.
	finder := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, finder.Host(), holder.Host())
	eventually(t, "the finder's routing table has the holder", func() bool { return finder.RoutingTableSize() >= 1 })
	r := firstResult(t, finder, "QueueService", dht.FindOptions{DHTOnly: true})
	if r.Source != dht.SourceNear || r.Record.Peer != prov.Host().ID() {
		t.Fatalf("first result: %s by %q, want %s by %q", r.Record.Peer, r.Source, prov.Host().ID(), dht.SourceNear)
	}

	// A server that joined after the publish holds nothing: a client
	// connected to it alone finds the record through the walk.
	blank := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	p2ptest.Connect(t, blank.Host(), net.Nodes[3].Host())
	eventually(t, "the blank server's routing table has a peer", func() bool { return blank.RoutingTableSize() >= 1 })
	if err := blank.Refresh(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	late := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, late.Host(), blank.Host())
	eventually(t, "the late client's routing table has the blank server", func() bool { return late.RoutingTableSize() >= 1 })
	r = firstResult(t, late, "QueueService", dht.FindOptions{DHTOnly: true})
	if want := []dht.Source{dht.SourceWalk, dht.SourceProvider, dht.SourceDHT}; !slices.Contains(want, r.Source) || r.Record.Peer != prov.Host().ID() {
		t.Fatalf("first result: %s by %q, want %s by one of %q", r.Record.Peer, r.Source, prov.Host().ID(), want)
	}
	if n := blank.StoredRecords(); n != 0 {
		t.Fatalf("the blank server holds %d records, want none", n)
	}
}

// TestFindRegistryNeverSawService: a finder whose only registry never saw
// the service still finds it, through the DHT path.
func TestFindRegistryNeverSawService(t *testing.T) {
	net, prov := publishedNetwork(t, dhttest.Options{Registries: 1, Nodes: 6}, "CacheService")
	// A registry only the finder knows: it joined after the publish.
	blank := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	finder := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, finder.Host(), blank.Host())
	p2ptest.Connect(t, finder.Host(), net.Nodes[3].Host())
	finder.AddRegistry(blank.Host().ID())
	eventually(t, "the finder's routing table has both peers", func() bool { return finder.RoutingTableSize() >= 2 })
	if err := finder.Refresh(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	r := firstResult(t, finder, "CacheService", dht.FindOptions{})
	if r.Source == dht.SourceRegistry || r.Record.Peer != prov.Host().ID() {
		t.Fatalf("first result: %s by %q, want %s by the DHT path", r.Record.Peer, r.Source, prov.Host().ID())
	}
	if n := blank.StoredRecords(); n != 0 {
		t.Fatalf("the blank registry holds %d records, want none", n)
	}
}

// publishedNetwork starts a network whose first node has published name
// and whose background placement of the record has settled.
func publishedNetwork(t *testing.T, o dhttest.Options, name string) (*dhttest.Network, *dht.Node) {
	t.Helper()
	net := dhttest.New(t, o)
	prov := net.Nodes[0]
	if _, err := prov.Publish(testCtx(t), dht.Spec{Name: name}); err != nil {
		t.Fatal(err)
	}
	settle(t, prov)
	return net, prov
}

// settle waits for n's background publishing to finish.
func settle(t *testing.T, n *dht.Node) {
	t.Helper()
	if err := n.Settle(testCtx(t)); err != nil {
		t.Fatalf("settle: %v", err)
	}
}

// TestWithdrawReachesHolders: after Withdraw, a list on the peers that got
// the tombstone omits the provider at once, they hold the tombstone in
// their store, and finds skip the provider.
func TestWithdrawReachesHolders(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 4})
	prov, reg := net.Nodes[0], net.Registries[0]
	if _, err := prov.Publish(ctx, dht.Spec{Name: "CacheService"}); err != nil {
		t.Fatal(err)
	}
	c, _ := record.ServiceCID("development", "CacheService")
	list := func() [][]byte {
		resp, err := rawExchange(t, net.Nodes[1].Host(), reg, jsonFrame(t, map[string]any{"type": "list", "cid": c.String()}))
		if err != nil {
			t.Fatal(err)
		}
		var recs [][]byte
		json.Unmarshal(resp["records"], &recs)
		return recs
	}
	if got := len(list()); got != 1 {
		t.Fatalf("before withdraw the registry lists %d records, want 1", got)
	}
	if _, err := prov.Withdraw(ctx, "CacheService"); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("after withdraw the registry lists %d records, want none", len(got))
	}
	// The tombstone is what the registry holds now, in its DHT value store too.
	rec, _, err := messenger(t, net.Nodes[1]).GetValue(ctx, reg.Host().ID(), record.Key(c, prov.Host().ID()))
	if err != nil || rec == nil {
		t.Fatalf("registry GET_VALUE: %v", err)
	}
	s, err := record.Validator{Network: "development"}.OpenFor(c, rec.GetValue())
	if err != nil || !s.Withdrawn || s.Peer != prov.Host().ID() {
		t.Fatalf("registry holds %+v (%v), want %s's tombstone", s, err, prov.Host().ID())
	}
	got, err := net.Nodes[2].FindAll(ctx, "CacheService", dht.FindOptions{})
	if err != nil || len(got) != 0 {
		t.Fatalf("find after withdraw: %d results, %v", len(got), err)
	}
}

// registryStreams counts a's open registry-protocol streams to b.
func registryStreams(a, b *dht.Node) int {
	n := 0
	for _, c := range a.Host().Network().ConnsToPeer(b.Host().ID()) {
		for _, s := range c.GetStreams() {
			if s.Protocol() == registry.Protocol(a.Network()) {
				n++
			}
		}
	}
	return n
}

// TestRegistryStreamReuse: requests to a peer reuse one stream, and a
// kept stream the peer has since dropped costs a retry, not an error.
func TestRegistryStreamReuse(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 2})
	prov, client, reg := net.Nodes[0], net.Nodes[1], net.Registries[0]
	if _, err := prov.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatal(err)
	}
	c, _ := record.ServiceCID("development", "DatabaseService")
	list := func() {
		t.Helper()
		envs, err := dht.List(ctx, client, reg.Host().ID(), c)
		if err != nil || len(envs) != 1 {
			t.Fatalf("list: %d records, %v", len(envs), err)
		}
	}
	for range 5 {
		list()
	}
	if got := registryStreams(client, reg); got != 1 {
		t.Fatalf("after 5 lists the client has %d registry streams to the registry, want 1 kept", got)
	}
	// The registry drops every stream (as its idle timeout would).
	for _, conn := range reg.Host().Network().ConnsToPeer(client.Host().ID()) {
		for _, s := range conn.GetStreams() {
			if s.Protocol() == registry.Protocol(reg.Network()) {
				s.Reset()
			}
		}
	}
	list()
	eventually(t, "one live stream again", func() bool { return registryStreams(client, reg) == 1 })
}
