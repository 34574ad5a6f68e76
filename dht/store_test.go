package dht_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// attacker is a client node of the attacker's own that pushes records it
// signs over the registry protocol, as any peer may.
type attacker struct {
	t    *testing.T
	node *dht.Node
	reg  peer.ID
}

// newAttacker starts an attacker on 127.0.0.1 connected to reg.
func newAttacker(t *testing.T, reg *dht.Node) *attacker {
	t.Helper()
	n := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, n.Host(), reg.Host())
	return &attacker{t: t, node: n, reg: reg.Host().ID()}
}

// seal signs a record of key for service name, whose addresses are addrs
// (the record's defaults when nil).
func seal(t *testing.T, key crypto.PrivKey, name string, addrs []string) []byte {
	t.Helper()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s := recordtest.Valid(id, time.Now())
	s.Name = name
	if addrs != nil {
		s.Addrs = addrs
	}
	return recordtest.SealRaw(t, s, key)
}

// push offers env to the registry and returns its refusal, if any.
func (a *attacker) push(env []byte) error {
	return dht.Push(testCtx(a.t), a.node, a.reg, env)
}

// pushAll pushes every envelope and returns how many were accepted and the
// refusals' texts.
func (a *attacker) pushAll(envs [][]byte) (accepted int, refusals map[string]int) {
	refusals = make(map[string]int)
	for _, env := range envs {
		if err := a.push(env); err != nil {
			refusals[refusalOf(err)]++
			continue
		}
		accepted++
	}
	return accepted, refusals
}

// refusalOf returns the store sentinel an error from a push names, or its text.
func refusalOf(err error) string {
	for _, e := range []error{dht.ErrKeyQuota, dht.ErrSourceQuota, dht.ErrStoreFull} {
		if strings.Contains(err.Error(), e.Error()) {
			return e.Error()
		}
	}
	return err.Error()
}

// TestKeyQuota: one signing key that puts records under 200 service names
// gets PerKey of them stored and the rest refused with ErrKeyQuota,
// counted by reason; an honest provider is still accepted and found.
func TestKeyQuota(t *testing.T) {
	ctx := testCtx(t)
	reg := registryOn(t, mustKey(t), openStore(t, t.TempDir()), dht.Health{})
	perKey := dht.DefaultStoreLimits().PerKey
	evil := newAttacker(t, reg)
	key, _ := recordtest.NewKey(t)
	var envs [][]byte
	for i := range 200 {
		envs = append(envs, seal(t, key, fmt.Sprintf("Flood%03d", i), nil))
	}
	accepted, refusals := evil.pushAll(envs)
	if accepted != perKey || refusals[dht.ErrKeyQuota.Error()] != 200-perKey {
		t.Fatalf("one key: %d accepted, refusals %v; want %d accepted, %d refused with %q",
			accepted, refusals, perKey, 200-perKey, dht.ErrKeyQuota)
	}
	if got := reg.Rejections()[dht.ErrKeyQuota]; got != uint64(200-perKey) {
		t.Fatalf("registry counted %d key-quota rejections, want %d", got, 200-perKey)
	}
	honest := joined(t, nil, reg, dht.ModeServer)
	if _, err := honest.Publish(ctx, dht.Spec{Name: "Flood000", TTL: time.Hour}); err != nil {
		t.Fatalf("honest provider refused: %v", err)
	}
	settle(t, honest)
	assertFound(t, joined(t, nil, reg, dht.ModeClient), "Flood000", honest.Host().ID())
}

// assertFound fails t unless a find for name from finder returns p.
func assertFound(t *testing.T, finder *dht.Node, name string, p peer.ID) {
	t.Helper()
	got, err := finder.FindAll(testCtx(t), name, dht.FindOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Record.Peer == p {
			return
		}
	}
	t.Fatalf("find %s: %d results, none from %s", name, len(got), p)
}

// TestSourceQuota: records of 60 Sybil keys pushed from one source
// (127.0.0.1) stop at PerSource; an honest provider connected from another
// loopback address (127.0.0.2, its own source) is still accepted.
func TestSourceQuota(t *testing.T) {
	const perSource, sybils = 20, 60
	cfg := p2ptest.Config()
	reg := dhttest.NewNodeOn(t, p2ptest.NewHostFrom(t, cfg), "development", dht.ModeServer, func(c *dht.Config) {
		c.Store.PerSource = perSource
	})
	evil := newAttacker(t, reg)
	var envs [][]byte
	for range sybils {
		key, _ := recordtest.NewKey(t)
		envs = append(envs, seal(t, key, "DatabaseService", nil))
	}
	accepted, refusals := evil.pushAll(envs)
	if accepted != perSource || refusals[dht.ErrSourceQuota.Error()] != sybils-perSource {
		t.Fatalf("one source: %d accepted, refusals %v; want %d accepted, %d refused with %q",
			accepted, refusals, perSource, sybils-perSource, dht.ErrSourceQuota)
	}
	// The honest provider listens on 127.0.0.2, and the registry dials
	// it: the connection's remote address is 127.0.0.2.
	hcfg := p2ptest.Config()
	hcfg.ListenAddrs = []string{"/ip4/127.0.0.2/tcp/0"}
	honest := dhttest.NewNodeOn(t, p2ptest.NewHostFrom(t, hcfg), "development", dht.ModeServer, nil)
	p2ptest.Connect(t, reg.Host(), honest.Host())
	key, _ := recordtest.NewKey(t)
	if err := dht.Push(testCtx(t), honest, reg.Host().ID(), seal(t, key, "DatabaseService", nil)); err != nil {
		t.Fatalf("a record from another source refused: %v", err)
	}
	if err := evil.push(seal(t, key, "OtherService", nil)); refusalOf(err) != dht.ErrSourceQuota.Error() {
		t.Fatalf("the full source pushed again: %v, want %v", err, dht.ErrSourceQuota)
	}
}

// TestBytesBudget: records of distinct keys fill the bytes budget and no
// more: the store never holds more than its budget, and a record over it
// is refused with ErrStoreFull.
func TestBytesBudget(t *testing.T) {
	const budget = 20 << 10
	reg := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) { c.Store.Bytes = budget })
	evil := newAttacker(t, reg)
	var envs [][]byte
	big := strings.Repeat("x", 400)
	for i := range 100 {
		key, id := recordtest.NewKey(t)
		s := recordtest.Valid(id, time.Now())
		s.Name = fmt.Sprintf("Svc%d", i)
		s.Meta = map[string]string{"pad": big}
		envs = append(envs, recordtest.SealRaw(t, s, key))
	}
	accepted, refusals := evil.pushAll(envs)
	per := int64(len(envs[0]) + dht.RecordOverhead)
	if want := int(budget / per); accepted < want-1 || accepted > want+1 {
		t.Fatalf("%d records of ~%d bytes accepted under a %d-byte budget, want about %d", accepted, per, budget, want)
	}
	if refusals[dht.ErrStoreFull.Error()] != 100-accepted {
		t.Fatalf("refusals %v, want %d with %q", refusals, 100-accepted, dht.ErrStoreFull)
	}
	if got := reg.StoredBytes(); got > budget {
		t.Fatalf("store holds %d bytes, budget %d", got, budget)
	}
}

// evictingRegistry starts a registry whose services hold perService
// providers, with health checks as h.
func evictingRegistry(t *testing.T, perService int, h dht.Health) *dht.Node {
	t.Helper()
	return dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.Store.PerService, c.Health = perService, h
	})
}

// TestFullServiceEvicts: on a registry that checks health, a service full
// of Sybil records whose addresses answer nothing takes honest newcomers
// by evicting unhealthy and never-checked records, and never evicts a
// provider that passed its check; without health checks a full service
// refuses newcomers.
func TestFullServiceEvicts(t *testing.T) {
	const perService = 4
	dead := []string{"/ip4/127.0.0.1/tcp/1"} // nothing listens there
	sybil := func(t *testing.T) ([]byte, peer.ID) {
		key, id := recordtest.NewKey(t)
		return seal(t, key, "DatabaseService", dead), id
	}
	t.Run("health checks on", func(t *testing.T) {
		ctx := testCtx(t)
		reg := evictingRegistry(t, perService, dht.Health{Interval: 20 * time.Millisecond, Failures: 1,
			DeregisterAfter: time.Hour, Timeout: 500 * time.Millisecond})
		honest := joined(t, nil, reg, dht.ModeServer)
		if _, err := honest.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the honest provider passed a check", func() bool { return dht.Proven(reg, honest.Host().ID()) })
		evil := newAttacker(t, reg)
		sybils := map[peer.ID]bool{}
		for range perService - 1 {
			env, id := sybil(t)
			if err := evil.push(env); err != nil {
				t.Fatalf("sybil refused while the service had room: %v", err)
			}
			sybils[id] = true
		}
		eventually(t, "the sybils are unhealthy", func() bool {
			n := 0
			for _, p := range reg.Providers() {
				if sybils[p.Peer] && !p.Healthy {
					n++
				}
			}
			return n == len(sybils)
		})
		// The service is full: newcomers evict the unhealthy, then the
		// never-checked, and never the honest provider.
		for range 3 * perService {
			env, _ := sybil(t)
			if err := evil.push(env); err != nil {
				t.Fatalf("a newcomer to a full service of expendable records refused: %v", err)
			}
		}
		late := joined(t, nil, reg, dht.ModeServer)
		if _, err := late.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		held := listPeers(t, evil.node, reg, "DatabaseService")
		if !held[honest.Host().ID()] || !held[late.Host().ID()] {
			t.Fatalf("registry lists %v; want both honest providers %s and %s", held, honest.Host().ID(), late.Host().ID())
		}
		if got := reg.StoredRecords(); got != perService {
			t.Fatalf("registry holds %d records, want %d", got, perService)
		}
	})
	t.Run("health checks off", func(t *testing.T) {
		reg := evictingRegistry(t, perService, dht.Health{})
		evil := newAttacker(t, reg)
		envs := make([][]byte, perService+1)
		for i := range envs {
			envs[i], _ = sybil(t)
		}
		accepted, refusals := evil.pushAll(envs)
		if accepted != perService || refusals[dht.ErrStoreFull.Error()] != 1 {
			t.Fatalf("%d accepted, refusals %v; want %d and one %q", accepted, refusals, perService, dht.ErrStoreFull)
		}
	})
}

// listPeers returns the providers reg lists for service name, asked by n.
func listPeers(t *testing.T, n, reg *dht.Node, name string) map[peer.ID]bool {
	t.Helper()
	c, err := record.ServiceCID("development", name)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := dht.List(testCtx(t), n, reg.Host().ID(), c)
	if err != nil {
		t.Fatal(err)
	}
	v := record.Validator{Network: "development"}
	out := map[peer.ID]bool{}
	for _, env := range envs {
		svc, err := v.Open(env)
		if err != nil {
			t.Fatalf("registry listed a bad record: %v", err)
		}
		out[svc.Peer] = true
	}
	return out
}

// TestRestartManyRecords: a registry restarted on a datastore holding
// 3,000 records (filed as a registry files them) serves every one; a
// forged record planted beside them (signed by another key than its
// peer's) is never served and is deleted by the background verification;
// records over a quota at start-up are dropped.
func TestRestartManyRecords(t *testing.T) {
	const records = 3000
	dir := filepath.Join(t.TempDir(), "datastore")
	d := openStore(t, dir)
	fillDatastore(t, d, records)
	_, victim := recordtest.NewKey(t)
	forger, _ := recordtest.NewKey(t)
	s := recordtest.Valid(victim, time.Now())
	s.Name = "Svc007"
	forgedKey, forged := filed(t, s, forger)
	if err := d.Put(testCtx(t), forgedKey, forged); err != nil {
		t.Fatal(err)
	}
	reg := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) { c.Datastore = d })
	// fillDatastore spreads records over 1,000 services: Svc007 has 3.
	finder := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	p2ptest.Connect(t, finder.Host(), reg.Host())
	if got := listPeers(t, finder, reg, "Svc007"); len(got) != records/1000 || got[victim] {
		t.Fatalf("registry lists %v for Svc007 after restart, want %d providers, not the forged %s", got, records/1000, victim)
	}
	eventually(t, "the forged record is deleted", func() bool { return reg.StoredRecords() == records })
	if has, err := d.Has(testCtx(t), forgedKey); err != nil || has {
		t.Fatalf("forged record still in the datastore (%v)", err)
	}
	reg.Close()
	small := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) {
		c.Datastore, c.Store.PerService = d, 1
	})
	if got := small.StoredRecords(); got != 1000 {
		t.Fatalf("with one provider per service the registry loaded %d records, want 1000", got)
	}
}
