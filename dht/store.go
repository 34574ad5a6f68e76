package dht

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/record"
)

// Store bounds: a put beyond them is refused with ErrStoreFull.
const (
	// MaxRecordsPerService is the most providers one service is indexed for.
	MaxRecordsPerService = 1024
	// MaxStoredRecords is the most records one node holds.
	MaxStoredRecords = 1 << 17
)

// store is a node's record store: the verified netget records it holds,
// kept in the datastore kad-dht's value store uses, under the same keys, so
// a DHT GET_VALUE and a registry-protocol list serve the same bytes and a
// persistent datastore keeps both across restarts. Beside it, in memory, an
// index per service and peer: kad-dht's value store cannot list one
// service's records. Every write, whatever path brought the record
// (registry put, DHT PUT_VALUE, this node's own publish), goes through put,
// which decides by seq under one lock; only verified records enter.
type store struct {
	ds ds.Datastore // the backing datastore, not the kad-facing view

	health *verdicts // whose records are served, in what order (health.go)

	mu     sync.Mutex
	bySvc  map[cid.Cid]map[peer.ID]held
	count  int             // records held, all services
	byPeer map[peer.ID]int // records held per provider
}

// held is one record in the store: as sealed, and the few fields the
// store decides by (the rest stays in the envelope, to keep a big
// registry's memory down).
type held struct {
	env       []byte
	seq       uint64
	expires   time.Time
	withdrawn bool
	addrs     []string
}

func heldOf(svc *record.Service, env []byte) held {
	return held{env: env, seq: svc.Seq, expires: svc.ExpiresAt, withdrawn: svc.Withdrawn, addrs: svc.Addrs}
}

// newer returns nil when svc may replace h (record.Newer).
func (h held) newer(svc *record.Service) error { return record.Newer(h.seq, svc.Seq) }

func newStore(d ds.Datastore, v *verdicts) *store {
	return &store{
		ds:     d,
		health: v,
		bySvc:  make(map[cid.Cid]map[peer.ID]held),
		byPeer: make(map[peer.ID]int),
	}
}

// dsKey is where kad-dht's value store files the record under DHT key k:
// "/<namespace>/" + base32 of the whole key (go-libp2p-kad-dht/records).
func dsKey(k string) ds.Key {
	return ds.NewKey("/" + record.Namespace + "/" + base32.RawStdEncoding.EncodeToString([]byte(k)))
}

// dhtKey is the DHT key a datastore key files, if it is a netget record's.
func dhtKey(k ds.Key) (string, bool) {
	rest, ok := strings.CutPrefix(k.String(), "/"+record.Namespace+"/")
	if !ok || strings.Contains(rest, "/") {
		return "", false
	}
	b, err := base32.RawStdEncoding.DecodeString(rest)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// load indexes the records the datastore holds, as at start-up after a
// restart: each is verified again; expired, invalid and misfiled ones are
// deleted. It returns how many it kept.
func (s *store) load(ctx context.Context, v record.Validator) (int, error) {
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: "/" + record.Namespace})
	if err != nil {
		return 0, fmt.Errorf("read datastore: %w", err)
	}
	defer res.Close()
	var drop []ds.Key
	kept := 0
	for e := range res.Next() {
		if e.Error != nil {
			return kept, fmt.Errorf("read datastore: %w", e.Error)
		}
		k := ds.NewKey(e.Key)
		svc, c, err := openStored(v, k, e.Value)
		if err == nil {
			err = s.index(c, svc, envOf(e.Value))
		}
		if err != nil {
			drop = append(drop, k)
			continue
		}
		kept++
	}
	for _, k := range drop {
		if err := s.ds.Delete(ctx, k); err != nil {
			return kept, fmt.Errorf("delete stale record: %w", err)
		}
	}
	return kept, nil
}

// openStored verifies a datastore entry: a kad record protobuf whose key
// is the one it is filed under and whose value is a valid envelope for it.
func openStored(v record.Validator, k ds.Key, b []byte) (*record.Service, cid.Cid, error) {
	key, ok := dhtKey(k)
	var rec recpb.Record
	if !ok || proto.Unmarshal(b, &rec) != nil || string(rec.GetKey()) != key {
		return nil, cid.Undef, record.ErrMalformed
	}
	svc, err := v.OpenKey(key, rec.GetValue())
	if err != nil {
		return nil, cid.Undef, err
	}
	c, _, err := record.ParseKey(key)
	return svc, c, err
}

// envOf returns the envelope inside a stored kad record.
func envOf(b []byte) []byte {
	var rec recpb.Record
	if proto.Unmarshal(b, &rec) != nil {
		return nil
	}
	return rec.GetValue()
}

// put stores a verified record for service c: in the datastore, then the
// index. It refuses one whose seq is not above the record held for the same
// peer (record.ErrOlderSeq), unless it is the very same envelope (a no-op).
func (s *store) put(ctx context.Context, c cid.Cid, svc *record.Service, env []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.bySvc[c][svc.Peer]; ok && bytes.Equal(cur.env, env) {
		return nil
	}
	if err := s.admitLocked(c, svc); err != nil {
		return err
	}
	if err := s.health.admit(svc); err != nil {
		return err
	}
	key := record.Key(c, svc.Peer)
	b, err := proto.Marshal(&recpb.Record{Key: []byte(key), Value: env,
		TimeReceived: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return fmt.Errorf("store record: %w", err)
	}
	if err := s.ds.Put(ctx, dsKey(key), b); err != nil {
		return fmt.Errorf("store record: %w", err)
	}
	s.indexLocked(c, svc, env)
	return nil
}

// admitLocked reports whether svc may enter the store as the record of its
// peer for c: a higher seq than the one held (record.ErrOlderSeq), or room
// for a new one (ErrStoreFull). s.mu must be held.
func (s *store) admitLocked(c cid.Cid, svc *record.Service) error {
	if cur, ok := s.bySvc[c][svc.Peer]; ok {
		return cur.newer(svc)
	}
	if len(s.bySvc[c]) >= MaxRecordsPerService || s.count >= MaxStoredRecords {
		return ErrStoreFull
	}
	return nil
}

// index adds a record already in the datastore to the index.
func (s *store) index(c cid.Cid, svc *record.Service, env []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.admitLocked(c, svc); err != nil {
		return err
	}
	s.indexLocked(c, svc, env)
	return nil
}

// indexLocked files svc in the index. s.mu must be held.
func (s *store) indexLocked(c cid.Cid, svc *record.Service, env []byte) {
	peers := s.bySvc[c]
	if peers == nil {
		peers = make(map[peer.ID]held)
		s.bySvc[c] = peers
	}
	if _, ok := peers[svc.Peer]; !ok {
		s.count++
		s.byPeer[svc.Peer]++
	}
	peers[svc.Peer] = heldOf(svc, env)
	s.health.arrived(svc.Peer)
}

// get returns p's record for service c.
func (s *store) get(c cid.Cid, p peer.ID) (held, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.bySvc[c][p]
	return h, ok
}

// hidden reports whether DHT key k files a record the store does not serve
// now: one of a provider not healthy (verdicts.serves).
func (s *store) hidden(k ds.Key) bool {
	key, ok := dhtKey(k)
	if !ok {
		return false
	}
	_, p, err := record.ParseKey(key)
	if err != nil {
		return false
	}
	return !s.health.serves(p)
}

// listOpts selects what list returns.
type listOpts struct {
	limit      int
	tombstones bool // include withdrawn records (a finder's own index)
	unhealthy  bool // include records of providers not healthy
}

// list returns up to o.limit unexpired records for service c, healthy
// providers first, longest known first (verdicts.rank). Withdrawn records
// and those of providers not healthy are left out unless o asks for them.
func (s *store) list(c cid.Cid, now time.Time, o listOpts) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []peer.ID
	for p, h := range s.bySvc[c] {
		switch {
		case !now.Before(h.expires): // the sweep deletes it
		case h.withdrawn && !o.tombstones:
		case !o.unhealthy && !s.health.serves(p):
		default:
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, s.health.rank)
	out := make([][]byte, 0, min(len(ps), o.limit))
	for _, p := range ps[:min(len(ps), o.limit)] {
		out = append(out, s.bySvc[c][p].env)
	}
	return out
}

// unindexLocked removes p's record for c from the index. s.mu must be held.
func (s *store) unindexLocked(c cid.Cid, p peer.ID) {
	peers := s.bySvc[c]
	if _, ok := peers[p]; !ok {
		return
	}
	delete(peers, p)
	if len(peers) == 0 {
		delete(s.bySvc, c)
	}
	s.count--
	if s.byPeer[p]--; s.byPeer[p] <= 0 {
		delete(s.byPeer, p)
		s.health.left(p)
	}
}

// drop removes the record filed under datastore key k from the index, as
// kad-dht deletes it from the datastore.
func (s *store) drop(k ds.Key) {
	key, ok := dhtKey(k)
	if !ok {
		return
	}
	c, p, err := record.ParseKey(key)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.unindexLocked(c, p)
	s.mu.Unlock()
}

// sweep deletes expired records, and every record of the providers in
// gone, from the datastore and the index. It returns how many it deleted.
func (s *store) sweep(ctx context.Context, now time.Time, gone map[peer.ID]bool) (int, error) {
	type victim struct {
		c cid.Cid
		p peer.ID
	}
	var vs []victim
	s.mu.Lock()
	for c, peers := range s.bySvc {
		for p, h := range peers {
			if gone[p] || !now.Before(h.expires) {
				vs = append(vs, victim{c, p})
			}
		}
	}
	s.mu.Unlock()
	n := 0
	for _, v := range vs {
		s.mu.Lock()
		h, ok := s.bySvc[v.c][v.p]
		if ok && (gone[v.p] || !now.Before(h.expires)) {
			if err := s.ds.Delete(ctx, dsKey(record.Key(v.c, v.p))); err != nil {
				s.mu.Unlock()
				return n, fmt.Errorf("delete record: %w", err)
			}
			s.unindexLocked(v.c, v.p)
			n++
		}
		s.mu.Unlock()
	}
	return n, nil
}

// providers returns every provider the store holds a live (unexpired, not
// withdrawn) record for, with the addresses of its newest one, except self.
func (s *store) providers(self peer.ID, now time.Time) map[peer.ID][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[peer.ID][]string)
	seq := make(map[peer.ID]uint64)
	for _, peers := range s.bySvc {
		for p, h := range peers {
			if p == self || h.withdrawn || !now.Before(h.expires) || h.seq < seq[p] {
				continue
			}
			out[p], seq[p] = h.addrs, h.seq
		}
	}
	return out
}

// providerStates returns the state of every provider the store holds a
// live (unexpired, not withdrawn) record for, except self.
func (s *store) providerStates(self peer.ID, now time.Time) []ProviderState {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := make(map[peer.ID]int)
	for _, peers := range s.bySvc {
		for p, h := range peers {
			if p != self && !h.withdrawn && now.Before(h.expires) {
				live[p]++
			}
		}
	}
	out := make([]ProviderState, 0, len(live))
	for p, n := range live {
		out = append(out, ProviderState{Peer: p, Records: n})
	}
	return out
}

// size returns how many records the store holds.
func (s *store) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}
