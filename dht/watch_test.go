package dht_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// watchTimeout bounds waiting for one watch event.
const watchTimeout = 15 * time.Second

// nextEvent returns the watch's next event, failing the test if none comes
// within watchTimeout or the channel closes.
func nextEvent(t *testing.T, ch <-chan dht.Event, what string) dht.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("waiting for %s: watch channel closed", what)
		}
		return ev
	case <-time.After(watchTimeout):
		t.Fatalf("waiting for %s: no event within %s", what, watchTimeout)
	}
	return dht.Event{}
}

// wantEvent waits for the next event and checks its kind, peer and reason.
func wantEvent(t *testing.T, ch <-chan dht.Event, kind dht.EventKind, p peer.ID, reason string) dht.Event {
	t.Helper()
	ev := nextEvent(t, ch, string(kind)+" "+p.ShortString())
	if ev.Kind != kind || ev.Peer != p || ev.Reason != reason {
		t.Fatalf("got event %s %s %q, want %s %s %q", ev.Kind, ev.Peer.ShortString(), ev.Reason, kind, p.ShortString(), reason)
	}
	if kind == dht.EventUpsert && (ev.Result.Record == nil || ev.Result.Record.Peer != p || ev.Result.Source != dht.SourceWatch) {
		t.Fatalf("upsert of %s carries %+v", p.ShortString(), ev.Result)
	}
	return ev
}

// noEvent checks that no event is waiting: what came before was all.
// It is called after an event that was sent after any duplicate would
// have been, so it does not wait.
func noEvent(t *testing.T, ch <-chan dht.Event) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %s %s %q", ev.Kind, ev.Peer.ShortString(), ev.Reason)
	default:
	}
}

func watch(t *testing.T, n *dht.Node, name string) <-chan dht.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := n.Watch(ctx, name)
	if err != nil {
		t.Fatalf("watch %s: %v", name, err)
	}
	return ch
}

// TestWatch: against one registry, a watcher gets the snapshot (a provider
// there before), a new provider (upsert) and a withdrawal (remove,
// withdrawn) pushed by the registry, with no polling; a Find on the
// watching node answers from the watched set first.
func TestWatch(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 3})
	p1, p2, watcher := net.Nodes[0], net.Nodes[1], net.Nodes[2]
	if _, err := p1.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ch := watch(t, watcher, "DatabaseService")
	wantEvent(t, ch, dht.EventUpsert, p1.Host().ID(), "")

	if _, err := p2.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, p2.Host().ID(), "")

	rs, err := watcher.FindAll(ctx, "DatabaseService", dht.FindOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Source != dht.SourceWatch || rs[1].Source != dht.SourceWatch {
		t.Fatalf("find on the watching node: %d results %v, want 2 from the watched set", len(rs), sources(rs))
	}

	if _, err := p1.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventRemove, p1.Host().ID(), dht.ReasonWithdrawn)
	noEvent(t, ch)
}

func sources(rs []dht.Result) []dht.Source {
	out := make([]dht.Source, len(rs))
	for i, r := range rs {
		out[i] = r.Source
	}
	return out
}

// TestWatchHealthAndExpiry: a provider that stops answering is removed
// (unhealthy) once the registry's health checks give up on it, and a record
// that is not republished is removed (expired) when it expires, by the
// registry's own timer, not at the next sweep.
func TestWatchHealthAndExpiry(t *testing.T) {
	ctx := testCtx(t)
	reg := registryOn(t, mustKey(t), openStore(t, t.TempDir()), dht.Health{Interval: 50 * time.Millisecond, Failures: 2,
		DeregisterAfter: 500 * time.Millisecond, Timeout: 200 * time.Millisecond})
	watcher := joined(t, nil, reg, dht.ModeClient)
	ch := watch(t, watcher, "DatabaseService")

	p := joined(t, nil, reg, dht.ModeClient)
	if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, p.Host().ID(), "")
	p.Close()
	p.Host().Close() // as a SIGKILL: no withdrawal, pings fail
	wantEvent(t, ch, dht.EventRemove, p.Host().ID(), dht.ReasonUnhealthy)

	short := joined(t, nil, reg, dht.ModeClient)
	if _, err := short.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, short.Host().ID(), "")
	wantEvent(t, ch, dht.EventRemove, short.Host().ID(), dht.ReasonExpired)
	noEvent(t, ch)
}

// TestWatchTwoRegistries: a watcher of two registries, which both hold
// every record, reports each change once.
func TestWatchTwoRegistries(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 2, Nodes: 3})
	p1, p2, watcher := net.Nodes[0], net.Nodes[1], net.Nodes[2]
	if _, err := p1.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ch := watch(t, watcher, "DatabaseService")
	wantEvent(t, ch, dht.EventUpsert, p1.Host().ID(), "")
	if _, err := p2.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, p2.Host().ID(), "")
	if _, err := p1.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour, Meta: map[string]string{"v": "2"}}); err != nil {
		t.Fatal(err)
	}
	if ev := wantEvent(t, ch, dht.EventUpsert, p1.Host().ID(), ""); ev.Result.Record.Meta["v"] != "2" {
		t.Fatalf("upsert of the new record carries %v", ev.Result.Record.Meta)
	}
	if _, err := p2.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventRemove, p2.Host().ID(), dht.ReasonWithdrawn)
	if _, err := p1.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventRemove, p1.Host().ID(), dht.ReasonWithdrawn)
	// A marker change: each registry sends its copies of the changes
	// above before it, so a duplicate would be waiting by now.
	if _, err := p2.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, p2.Host().ID(), "")
	noEvent(t, ch)
}

// TestWatchRegistryRestart: a registry restarted under a watcher (same
// identity, address and datastore; health checks on, so what it loads is
// pending until checked) is watched again with a fresh snapshot: the
// provider it held is neither removed nor reported twice, and a change
// made once it is back is reported once.
func TestWatchRegistryRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "datastore")
	regKey := mustKey(t)
	start := func(listen string) (*dht.Node, func()) {
		d, err := dht.OpenDatastore(dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg := p2ptest.Config()
		cfg.Identity = regKey
		if listen != "" {
			cfg.ListenAddrs = []string{listen}
		}
		h, err := p2p.NewHost(cfg)
		if err != nil {
			d.Close()
			t.Fatal(err)
		}
		c := dht.DefaultConfig("development")
		c.Datastore = d
		// Health checks on: after the restart every record is pending
		// until checked again, and must not flap in the watcher.
		c.Health = dht.Health{Interval: 100 * time.Millisecond, Failures: 2, Timeout: time.Second}
		reg, err := dht.New(h, c)
		if err != nil {
			h.Close()
			d.Close()
			t.Fatal(err)
		}
		stop := sync.OnceFunc(func() { reg.Close(); h.Close(); d.Close() })
		t.Cleanup(stop)
		return reg, stop
	}
	reg, stop := start("")
	listen := reg.Host().Addrs()[0].String()
	p1, p2 := joined(t, nil, reg, dht.ModeClient), joined(t, nil, reg, dht.ModeClient)
	watcher := joined(t, nil, reg, dht.ModeClient)
	if _, err := p1.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ch := watch(t, watcher, "DatabaseService")
	wantEvent(t, ch, dht.EventUpsert, p1.Host().ID(), "")

	stop()
	reg, _ = start(listen)
	for _, p := range []*dht.Node{p1, p2} { // past the swarm's backoff from their own redials
		// A dial of their own to the new registry can cross this one and
		// reset its handshake: dial again until one holds.
		eventually(t, "a provider connected to the restarted registry", func() bool {
			return p.Host().Connect(network.WithForceDirectDial(ctx, "test"), p2ptest.AddrInfo(reg.Host())) == nil
		})
	}
	if _, err := p2.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, p2.Host().ID(), "")
	eventually(t, "the watcher watches the restarted registry", func() bool { return dht.Watchers(reg) == 1 })
	if _, err := p1.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventRemove, p1.Host().ID(), dht.ReasonWithdrawn)
	noEvent(t, ch)
}

// evilRegistry is a registry of the attacker's: it answers every watch
// with msgs, then holds the stream open.
func evilRegistry(t *testing.T, msgs ...registry.WatchMsg) host.Host {
	t.Helper()
	h := p2ptest.NewHost(t)
	h.SetStreamHandler(registry.WatchProtocol("development"), func(s network.Stream) {
		defer s.Reset()
		if _, err := registry.ReadWatchRequest(s); err != nil {
			return
		}
		for _, m := range msgs {
			b, err := registry.EncodeWatchMsg(m)
			if err != nil {
				t.Error(err)
				return
			}
			if registry.WriteFrame(s, b) != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, s) // until the watcher goes
	})
	return h
}

// TestWatchDropsForgedRecords: records a malicious registry pushes that
// fail verification (forged signatures, another peer's or network's
// records, a tombstone signed by someone else) are dropped and counted;
// the valid ones around them get through.
func TestWatchDropsForgedRecords(t *testing.T) {
	now := time.Now()
	honestKey, honestID := recordtest.NewKey(t)
	otherKey, otherID := recordtest.NewKey(t)
	valid := func(id peer.ID, key crypto.PrivKey, seq uint64) []byte {
		s := recordtest.Valid(id, now)
		s.Seq = seq
		return recordtest.SealRaw(t, s, key)
	}
	forgedTomb := recordtest.Valid(honestID, now)
	forgedTomb.Seq, forgedTomb.Withdrawn = 99, true
	msgs := []registry.WatchMsg{{Type: registry.WatchUpsert, Record: valid(honestID, honestKey, 7)}}
	bad := recordtest.Bad(t, otherKey, now)
	for _, c := range bad[:9] {
		if c.Want == record.ErrPeerMismatch {
			continue // a valid record of a third peer, when it comes alone
		}
		msgs = append(msgs, registry.WatchMsg{Type: registry.WatchUpsert, Record: c.Data})
	}
	msgs = append(msgs,
		registry.WatchMsg{Type: registry.WatchRemove, Peer: honestID.String(), Reason: registry.ReasonWithdrawn,
			Record: recordtest.SealRaw(t, forgedTomb, otherKey)},
		registry.WatchMsg{Type: registry.WatchSynced},
		registry.WatchMsg{Type: registry.WatchUpsert, Record: valid(otherID, otherKey, 8)},
	)
	evil := evilRegistry(t, msgs...)
	watcher := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, watcher.Host(), evil)
	watcher.AddRegistry(evil.ID())
	ch := watch(t, watcher, "DatabaseService")
	wantEvent(t, ch, dht.EventUpsert, honestID, "")
	wantEvent(t, ch, dht.EventUpsert, otherID, "") // sent after every forgery
	noEvent(t, ch)
	rejected := uint64(0)
	for _, n := range watcher.Rejections() {
		rejected += n
	}
	if rejected != 9 {
		t.Fatalf("watcher counted %d rejected records (%v), want 9", rejected, watcher.Rejections())
	}
}

// TestWatchBounds: a registry serves at most WatchLimits.PerPeer watches to
// one peer (the next is dropped saying why), and drops a watcher that does
// not read once its queue is full, keeping none of its messages.
func TestWatchBounds(t *testing.T) {
	ctx := testCtx(t)
	metrics := prometheus.NewRegistry()
	reg := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.Watch = dht.WatchLimits{PerPeer: 2, Max: 8, Queue: 4}
		c.Registerer = metrics
	})
	attacker := p2ptest.NewHost(t)
	p2ptest.Connect(t, attacker, reg.Host())
	c, _ := record.ServiceCID("development", "DatabaseService")
	proto := registry.WatchProtocol("development")
	var open []*registry.WatchStream
	for range 2 {
		ws, err := registry.OpenWatch(ctx, attacker, proto, reg.Host().ID(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ws.Close)
		if m, _, err := ws.Next(); err != nil || m.Type != registry.WatchSynced {
			t.Fatalf("watch: %+v %v, want the empty snapshot", m, err)
		}
		open = append(open, ws)
	}
	ws, err := registry.OpenWatch(ctx, attacker, proto, reg.Host().ID(), c)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Next(); !errors.Is(err, registry.ErrWatchDropped) || !strings.Contains(err.Error(), dht.ErrWatcherQuota.Error()) {
		t.Fatalf("third watch from one peer: %v, want a drop saying %q", err, dht.ErrWatcherQuota)
	}

	// The attacker reads neither watch any more; a provider republishes
	// big records until the registry drops them (bounded: 400 records).
	provKey, provID := recordtest.NewKey(t)
	pusher := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, pusher.Host(), reg.Host())
	now := time.Now()
	for i := 0; dht.Watchers(reg) > 0; i++ {
		if i == 400 {
			t.Fatalf("registry still serves %d watchers that read nothing after %d changes", dht.Watchers(reg), i)
		}
		s := recordtest.Valid(provID, now)
		s.Seq = uint64(i + 1)
		for k := range 6 {
			s.Meta[fmt.Sprint("pad", k)] = strings.Repeat("x", 500)
		}
		if err := dht.Push(ctx, pusher, reg.Host().ID(), recordtest.SealRaw(t, s, provKey)); err != nil {
			t.Fatal(err)
		}
	}
	_ = open
	for reason, want := range map[string]float64{"peer_quota": 1, "slow": 2} {
		if got := counter(t, metrics, "netget_watch_drops_total", reason); got != want {
			t.Errorf("netget_watch_drops_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

// counter returns the value of metric name whose label reason is reason.
func counter(t *testing.T, g prometheus.Gatherer, name, reason string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWatchWithoutRegistries: a node without registries learns changes
// from finds on the DHT path, every WatchPollInterval; two callers of one
// watch each get every change, and a caller that does not read holds up
// neither the other nor the watch.
func TestWatchWithoutRegistries(t *testing.T) {
	ctx := testCtx(t)
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 2})
	p := net.Nodes[0]
	watcher := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.DisableFastPath, c.WatchPollInterval = true, 100*time.Millisecond
	})
	for _, n := range net.All() {
		p2ptest.Connect(t, watcher.Host(), n.Host())
	}
	if err := watcher.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	settle(t, p)
	idle := watch(t, watcher, "DatabaseService") // never read
	ch := watch(t, watcher, "DatabaseService")
	wantEvent(t, ch, dht.EventUpsert, p.Host().ID(), "")
	if _, err := p.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	settle(t, p)
	wantEvent(t, ch, dht.EventRemove, p.Host().ID(), dht.ReasonDeregistered)
	noEvent(t, ch)
	// The caller that did not read has the same two events waiting.
	wantEvent(t, idle, dht.EventUpsert, p.Host().ID(), "")
	wantEvent(t, idle, dht.EventRemove, p.Host().ID(), dht.ReasonDeregistered)
}

// TestWatchOnRegistry: a registry (its health monitor runs) that watches a
// service reads its own store's changes, with no stream and no DHT poll.
func TestWatchOnRegistry(t *testing.T) {
	ctx := testCtx(t)
	reg := registryOn(t, mustKey(t), openStore(t, t.TempDir()), dht.Health{Interval: 100 * time.Millisecond, Failures: 2, Timeout: time.Second})
	ch := watch(t, reg, "DatabaseService")
	p := joined(t, nil, reg, dht.ModeClient)
	if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventUpsert, p.Host().ID(), "")
	if _, err := p.Withdraw(ctx, "DatabaseService"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, dht.EventRemove, p.Host().ID(), dht.ReasonWithdrawn)
	noEvent(t, ch)
	if n := dht.Watchers(reg); n != 1 {
		t.Fatalf("registry serves %d watches, want its own one", n)
	}
}
