package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/record"
)

// MaxPerService is the default of Limits.PerService: the most
// providers one service is indexed for.
const MaxPerService = 1024

// Store is a node's record store: the verified netget records it holds,
// kept in the datastore kad-dht's value store uses, under the same keys, so
// a DHT GET_VALUE and a registry-protocol list serve the same bytes and a
// persistent datastore keeps both across restarts. The envelopes live only
// in the datastore (on disk when it is persistent); in memory sits an index
// per service and peer, with the few fields the store decides by, since
// kad-dht's value store cannot list one service's records. Every write,
// whatever path brought the record (registry put, DHT PUT_VALUE, this
// node's own publish), goes through put, which decides by seq and checks
// the quotas (Limits) under one lock; only verified records enter.
// The lock is not held across the datastore write: concurrent puts share
// one synced commit.
type Store struct {
	ds     ds.Datastore     // the backing datastore, not the kad-facing view
	v      record.Validator // checks records loaded unverified
	limits Limits
	health Verdicts // whose records are served, in what order, and which are expendable
	// changed, if set, is told of every change to p's record for c: after
	// a write, and as a record leaves the index (with s.mu held). See
	// OnChange.
	changed func(c cid.Cid, p peer.ID)

	keysMu  sync.Mutex
	writing map[victim]*keyLock // records being written, so puts of one record take turns

	mu        sync.Mutex
	bySvc     map[cid.Cid]map[peer.ID]held
	count     int                   // records held, all services
	unchecked int                   // records held loaded unverified (Unverified)
	bytes     int64                 // what the records held cost (charge)
	byPeer    map[peer.ID][]cid.Cid // the services each provider has a record for
	bySource  map[Source]int        // records held per Source
	lists     map[cid.Cid]*listed   // answers of List kept (lists.go)
	walks     map[cid.Cid]*walk     // sorted copies Page reads (pages.go)
	walkBytes int                   // envelope bytes of the walks kept
	gen       uint64                // counts changes to the index (Generation)
}

// held is one record in the index: the few fields the store decides by.
// The envelope stays in the datastore, to keep a big registry's memory
// down.
type held struct {
	sum       [32]byte // SHA-256 of the envelope: the very same record is a no-op
	size      int32    // the envelope's length
	seq       uint64
	expires   time.Time
	withdrawn bool
	src       Source // who delivered it, if anyone
	verified  bool   // its signature was checked (false: loaded at start-up, not yet)
}

// heldOf returns the index entry of a verified record.
func heldOf(svc *record.Service, env []byte, src Source) held {
	return held{sum: sha256.Sum256(env), size: int32(len(env)), seq: svc.Seq, expires: svc.ExpiresAt,
		withdrawn: svc.Withdrawn, src: src, verified: true}
}

// cost is what h costs in the bytes budget.
func (h held) cost() int64 { return charge(int(h.size)) }

// New returns a store on d, whose records v checks, bounded by limits;
// health says whose records it serves and, when the node's health checks
// run, whose it may evict for a newcomer (Verdicts.Expendable).
func New(d ds.Datastore, v record.Validator, limits Limits, health Verdicts) *Store {
	return &Store{
		ds:       d,
		v:        v,
		limits:   limits.withDefaults(),
		health:   health,
		bySvc:    make(map[cid.Cid]map[peer.ID]held),
		byPeer:   make(map[peer.ID][]cid.Cid),
		bySource: make(map[Source]int),
		lists:    make(map[cid.Cid]*listed),
		walks:    make(map[cid.Cid]*walk),
		writing:  make(map[victim]*keyLock),
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

// keyLock serialises the writes of one record; writes of different
// records never wait for each other.
type keyLock struct {
	mu   sync.Mutex
	refs int // holders and waiters
}

// lockKey takes the write lock of p's record for c and returns its release.
func (s *Store) lockKey(c cid.Cid, p peer.ID) (unlock func()) {
	k := victim{c, p}
	s.keysMu.Lock()
	l := s.writing[k]
	if l == nil {
		l = &keyLock{}
		s.writing[k] = l
	}
	l.refs++
	s.keysMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.keysMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.writing, k)
		}
		s.keysMu.Unlock()
	}
}

// Add stores a verified record for service c, delivered from src (the zero
// source: none): in the index, then the datastore. It refuses one whose seq
// is not above the record held for the same peer (record.ErrOlderSeq),
// unless it is the very same envelope (a no-op), and one over a quota
// (ErrKeyQuota, ErrSourceQuota, ErrStoreFull). Adds of different records
// write at once, so a synced datastore commits them together.
func (s *Store) Add(ctx context.Context, c cid.Cid, svc *record.Service, env []byte, src Source) error {
	if err := s.health.Admit(svc); err != nil {
		return err
	}
	key := record.Key(c, svc.Peer)
	b, err := proto.Marshal(&recpb.Record{Key: []byte(key), Value: env,
		TimeReceived: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return fmt.Errorf("store record: %w", err)
	}
	defer s.lockKey(c, svc.Peer)()
	h := heldOf(svc, env, src)
	s.mu.Lock()
	prev, had := s.bySvc[c][svc.Peer]
	if had && prev.sum == h.sum {
		if !prev.verified { // loaded at start-up; the caller verified these bytes
			prev.verified = true
			s.unchecked--
			s.bySvc[c][svc.Peer] = prev
		}
		s.mu.Unlock()
		return nil
	}
	victims, err := s.admitLocked(c, svc.Peer, svc.Seq, h.cost(), src)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	// Evicted records leave the index now and the datastore with this
	// write; if it fails they stay on disk, and come back at a restart.
	for _, v := range victims {
		s.unindexLocked(v.c, v.p)
	}
	s.indexLocked(c, svc.Peer, h)
	s.mu.Unlock()
	if err := s.write(ctx, dsKey(key), b, victims); err != nil {
		s.mu.Lock()
		if cur, ok := s.bySvc[c][svc.Peer]; ok && cur.sum == h.sum {
			if had {
				s.indexLocked(c, svc.Peer, prev)
			} else {
				s.unindexLocked(c, svc.Peer)
			}
		}
		s.mu.Unlock()
		s.notify(c, svc.Peer)
		return fmt.Errorf("store record: %w", err)
	}
	s.mu.Lock()
	s.forgetLocked(c) // a list read while it was written missed it
	s.mu.Unlock()
	s.notify(c, svc.Peer)
	return nil
}

// OnChange sets the one change hook: fn is told of every change to p's
// record for c, after a write lands and as a record leaves the index
// (expired, evicted, deregistered, failed verification), so watchers need
// no polling. fn runs with the store's lock held: it must not block nor
// call back into the store. Set it before the store is used.
func (s *Store) OnChange(fn func(c cid.Cid, p peer.ID)) { s.changed = fn }

// notify tells the change hook, if any, that p's record for c changed.
func (s *Store) notify(c cid.Cid, p peer.ID) {
	if s.changed != nil {
		s.changed(c, p)
	}
}

// Entry is what the store's index holds of one record.
type Entry struct {
	Seq       uint64
	Expires   time.Time
	Withdrawn bool
	Sum       [32]byte // SHA-256 of the envelope
}

// Entry returns the index entry of p's record for service c.
func (s *Store) Entry(c cid.Cid, p peer.ID) (Entry, bool) {
	h, ok := s.get(c, p)
	return Entry{Seq: h.seq, Expires: h.expires, Withdrawn: h.withdrawn, Sum: h.sum}, ok
}

// Peers returns the providers the store holds a record for service c of.
func (s *Store) Peers(c cid.Cid) []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer.ID, 0, len(s.bySvc[c]))
	for p := range s.bySvc[c] {
		out = append(out, p)
	}
	return out
}

// indexLocked files h as p's record for c, replacing the one held. s.mu
// must be held.
func (s *Store) indexLocked(c cid.Cid, p peer.ID, h held) {
	s.detachLocked(c, p)
	s.forgetLocked(c)
	peers := s.bySvc[c]
	if peers == nil {
		peers = make(map[peer.ID]held)
		s.bySvc[c] = peers
	}
	peers[p] = h
	s.gen++
	s.count++
	if !h.verified {
		s.unchecked++
	}
	s.bytes += h.cost()
	s.byPeer[p] = append(s.byPeer[p], c)
	if h.src.valid() {
		s.bySource[h.src]++
	}
	s.health.Arrived(p)
}

// get returns p's record for service c.
func (s *Store) get(c cid.Cid, p peer.ID) (held, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.bySvc[c][p]
	return h, ok
}

// Holds reports whether the store holds env itself as p's record for c
// (not an older or newer one): a write of env would change nothing.
func (s *Store) Holds(c cid.Cid, p peer.ID, env []byte) bool {
	h, ok := s.get(c, p)
	return ok && h.sum == sha256.Sum256(env)
}

// Seq returns the seq of p's record for c and whether it is a tombstone,
// if the store holds one.
func (s *Store) Seq(c cid.Cid, p peer.ID) (seq uint64, withdrawn, ok bool) {
	h, ok := s.get(c, p)
	return h.seq, h.withdrawn, ok
}

// Expires returns when p's record for service c expires, if the store
// holds one.
func (s *Store) Expires(c cid.Cid, p peer.ID) (time.Time, bool) {
	h, ok := s.get(c, p)
	return h.expires, ok
}

// hidden reports whether DHT key k files a record the store does not serve
// now: one of a provider not healthy (Verdicts.Serves), or one not
// verified yet.
func (s *Store) hidden(k ds.Key) bool {
	key, ok := dhtKey(k)
	if !ok {
		return false
	}
	c, p, err := record.ParseKey(key)
	if err != nil {
		return false
	}
	if !s.health.Serves(p) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.bySvc[c][p].verified
}

// ListOpts selects what List returns.
type ListOpts struct {
	// Limit is the most records returned.
	Limit int
	// Tombstones includes withdrawn records (a finder's own index).
	Tombstones bool
	// Unhealthy includes records of providers not healthy.
	Unhealthy bool
}

// List returns up to o.Limit unexpired records for service c, read from
// the datastore, healthy providers first, longest known first
// (Verdicts.Rank). Withdrawn records and those of providers not healthy
// are left out unless o asks for them; one loaded unverified is verified
// first.
func (s *Store) List(ctx context.Context, c cid.Cid, now time.Time, o ListOpts) [][]byte {
	cached, epoch, ok := s.cachedList(c, now, o)
	if ok {
		return cached
	}
	var ps []peer.ID
	until := now.Add(time.Hour) // a kept answer is recomputed at least hourly
	s.mu.Lock()
	for p, h := range s.bySvc[c] {
		switch {
		case !now.Before(h.expires): // the sweep deletes it
		case h.withdrawn && !o.Tombstones:
		case !o.Unhealthy && !s.health.Serves(p):
		default:
			ps = append(ps, p)
			if h.expires.Before(until) {
				until = h.expires
			}
		}
	}
	ps = firstK(ps, o.Limit, s.health.Rank)
	keys := make([]ds.Key, len(ps))
	unverified := make([]peer.ID, len(ps)) // "" when verified
	for i, p := range ps {
		keys[i] = dsKey(record.Key(c, p))
		if !s.bySvc[c][p].verified {
			unverified[i] = p
		}
	}
	kept := s.keepListLocked(c, o, epoch, now, until)
	s.mu.Unlock()
	out := make([][]byte, 0, len(keys))
	for i, k := range keys {
		b, err := s.ds.Get(ctx, k)
		if err != nil {
			continue // deleted since: gone
		}
		env := envOf(b)
		if env != nil && (unverified[i] == "" || s.verified(c, unverified[i], env)) {
			out = append(out, env)
		}
	}
	s.fillList(c, kept, out)
	return out
}

// ServicesOf returns the services p has a record for in the store.
func (s *Store) ServicesOf(p peer.ID) []cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.byPeer[p])
}

// Envelope returns the signed envelope of p's record for c as the
// datastore holds it, or false when there is none (or it went since).
func (s *Store) Envelope(ctx context.Context, c cid.Cid, p peer.ID) ([]byte, bool) {
	b, err := s.ds.Get(ctx, dsKey(record.Key(c, p)))
	if err != nil {
		return nil, false
	}
	env := envOf(b)
	return env, env != nil
}

// verified checks env, p's record for c loaded unverified, and marks it
// verified if it passes. A record that fails stays hidden until VerifyAll
// deletes it.
func (s *Store) verified(c cid.Cid, p peer.ID, env []byte) bool {
	if _, err := s.v.OpenKey(record.Key(c, p), env); err != nil {
		return false
	}
	sum := sha256.Sum256(env)
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.bySvc[c][p]; ok && h.sum == sum && !h.verified {
		h.verified = true
		s.unchecked--
		s.bySvc[c][p] = h
	}
	return true
}

// detachLocked removes p's record for c from the index and its accounts,
// and returns it. s.mu must be held.
func (s *Store) detachLocked(c cid.Cid, p peer.ID) (held, bool) {
	peers := s.bySvc[c]
	h, ok := peers[p]
	if !ok {
		return held{}, false
	}
	delete(peers, p)
	s.forgetLocked(c)
	if len(peers) == 0 {
		delete(s.bySvc, c)
	}
	s.gen++
	s.count--
	if !h.verified {
		s.unchecked--
	}
	s.bytes -= h.cost()
	if h.src.valid() {
		if s.bySource[h.src]--; s.bySource[h.src] <= 0 {
			delete(s.bySource, h.src)
		}
	}
	svcs := s.byPeer[p]
	for i, sc := range svcs {
		if sc == c {
			svcs[i] = svcs[len(svcs)-1]
			svcs = svcs[:len(svcs)-1]
			break
		}
	}
	s.byPeer[p] = svcs
	return h, true
}

// unindexLocked removes p's record for c from the index, and what the
// store knows of p once it holds none of its records. s.mu must be held.
func (s *Store) unindexLocked(c cid.Cid, p peer.ID) {
	s.detachLocked(c, p)
	s.notify(c, p)
	if len(s.byPeer[p]) == 0 {
		delete(s.byPeer, p)
		s.health.Left(p)
	}
}

// drop removes the record filed under datastore key k from the index, as
// kad-dht deletes it from the datastore.
func (s *Store) drop(k ds.Key) {
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

// Addrs returns, for each provider of ps the store holds a live
// (unexpired, not withdrawn) record of, except self, the addresses of its
// newest one, read from the datastore: the index keeps no addresses, so
// a big registry's memory stays down, and only the providers asked for
// (those whose health check is due) are read.
func (s *Store) Addrs(ctx context.Context, self peer.ID, ps []peer.ID, now time.Time) map[peer.ID][]string {
	out := make(map[peer.ID][]string, len(ps))
	for _, p := range ps {
		if p == self {
			continue
		}
		c, ok := s.newest(p, now)
		if !ok {
			continue
		}
		env, ok := s.Envelope(ctx, c, p)
		if !ok {
			continue // deleted since
		}
		if svc, err := payloadOf(env); err == nil {
			out[p] = svc.Addrs
		}
	}
	return out
}

// newest returns the service of p's live record of highest seq.
func (s *Store) newest(p peer.ID, now time.Time) (cid.Cid, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best cid.Cid
	var seq uint64
	found := false
	for _, c := range s.byPeer[p] {
		h := s.bySvc[c][p]
		if h.withdrawn || !now.Before(h.expires) || found && h.seq < seq {
			continue
		}
		best, seq, found = c, h.seq, true
	}
	return best, found
}

// Live returns how many live (unexpired, not withdrawn) records the store
// holds of each provider, except self.
func (s *Store) Live(self peer.ID, now time.Time) map[peer.ID]int {
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
	return live
}

// Len returns how many records the store holds.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Bytes returns what the records held cost in the bytes budget
// (Limits.Bytes): their envelopes plus RecordOverhead each.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Version names one record of the store: its service, provider and seq.
type Version struct {
	C   cid.Cid
	P   peer.ID
	Seq uint64
}

// Versions returns every unexpired record the store holds (tombstones and
// records of providers not healthy included): what registry sync compares.
func (s *Store) Versions(now time.Time) []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Version, 0, s.count)
	for c, peers := range s.bySvc {
		for p, h := range peers {
			if now.Before(h.expires) {
				out = append(out, Version{c, p, h.seq})
			}
		}
	}
	return out
}

// Generation returns a number that changes whenever the index does, so a
// summary of Versions can be kept until it changes.
func (s *Store) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Unverified returns how many records the store holds that were loaded
// at start-up and whose signature is not checked yet (VerifyAll).
func (s *Store) Unverified() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unchecked
}
