package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/netget/netget-peer/record"
)

// Start-up. A restarted node reads every record it holds in key order
// (sequential reads; straight from Pebble's iterator when the datastore is
// Pebble, no per-entry channel), in batches of loadBatch, which as many
// workers as CPUs peek at and index, each batch under one lock. Peeking
// reads only what the index needs, without the signature check: the two
// protobuf layers by hand (protowire), the payload's scalar fields
// (payloadPeek; addresses and metadata are skipped, not built), the peer
// ID once, from the key (base58), the service CID once per run of records
// of one service (keys sort by service). Why serving before verifying is
// safe: only this node writes its datastore, and only records it verified
// (every write goes through Store.Add); the index keeps what it read
// unverified, and nothing unverified is served: List verifies a record
// before it returns it, GET_VALUE hides it (View.Get), and VerifyAll
// checks every one in the background, deleting any that fails. A record
// altered on disk is therefore never served, and is gone once VerifyAll
// passes over it.

// loadBatch is how many datastore entries Load hands a worker at once.
const loadBatch = 512

// rawEntry is one datastore entry as read: its key and value, in a batch's
// own copy of the bytes.
type rawEntry struct{ key, value []byte }

// scan calls fn with every entry under the netget namespace, in key
// order, batched, until fn returns false. fn owns each batch.
func (s *Store) scan(ctx context.Context, fn func([]rawEntry) bool) error {
	prefix := "/" + record.Namespace + "/"
	if pd, ok := s.ds.(*pebbleds.Datastore); ok {
		return scanPebble(ctx, pd.DB, prefix, fn)
	}
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: prefix})
	if err != nil {
		return fmt.Errorf("read datastore: %w", err)
	}
	defer res.Close()
	batch := make([]rawEntry, 0, loadBatch)
	for e := range res.Next() {
		if e.Error != nil {
			return fmt.Errorf("read datastore: %w", e.Error)
		}
		batch = append(batch, rawEntry{[]byte(e.Key), e.Value})
		if len(batch) == loadBatch {
			if !fn(batch) {
				return ctx.Err()
			}
			batch = make([]rawEntry, 0, loadBatch)
		}
	}
	if len(batch) > 0 && !fn(batch) {
		return ctx.Err()
	}
	return nil
}

// scanPebble is scan over a Pebble database: one iterator over the
// prefix, keys and values copied into one buffer a batch.
func scanPebble(ctx context.Context, db *pebble.DB, prefix string, fn func([]rawEntry) bool) error {
	upper := []byte(prefix)
	upper[len(upper)-1]++ // "/netget/" → "/netget0"
	it, err := db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: upper})
	if err != nil {
		return fmt.Errorf("read datastore: %w", err)
	}
	defer it.Close()
	const arenaSize = 512 << 10
	batch := make([]rawEntry, 0, loadBatch)
	arena := make([]byte, 0, arenaSize)
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("read datastore: %w", err)
		}
		k := it.Key()
		if len(arena)+len(k)+len(v) > cap(arena) {
			arena = make([]byte, 0, max(arenaSize, len(k)+len(v)))
		}
		at := len(arena)
		arena = append(append(arena, k...), v...)
		batch = append(batch, rawEntry{arena[at : at+len(k) : at+len(k)], arena[at+len(k) : len(arena) : len(arena)]})
		if len(batch) == loadBatch {
			if !fn(batch) {
				return ctx.Err()
			}
			batch = make([]rawEntry, 0, loadBatch)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("read datastore: %w", err)
	}
	if len(batch) > 0 && !fn(batch) {
		return ctx.Err()
	}
	return nil
}

// parallel runs scan, handing each batch to one of as many workers as
// CPUs, which runs work on it; it returns once every batch is done.
func (s *Store) parallel(ctx context.Context, work func([]rawEntry)) error {
	batches := make(chan []rawEntry, 2*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for b := range batches {
				work(b)
			}
		})
	}
	err := s.scan(ctx, func(b []rawEntry) bool {
		select {
		case batches <- b:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(batches)
	wg.Wait()
	return err
}

// peeked is one datastore entry as Load indexes it.
type peeked struct {
	key []byte // the datastore key
	c   cid.Cid
	p   peer.ID
	h   held
}

// Load indexes the records the datastore holds, as at start-up after a
// restart (see the comment at the top of this file): unverified, so a
// registry serves at once; VerifyAll checks the signatures in the
// background, and List verifies an unverified record before it serves it.
// Expired, malformed, misfiled and over-quota records are deleted. Only
// the index stays in memory. It returns how many it kept.
func (s *Store) Load(ctx context.Context, now time.Time) (int, error) {
	var mu sync.Mutex
	var drop []ds.Key
	kept := 0
	err := s.parallel(ctx, func(batch []rawEntry) {
		pk := peeker{network: s.v.Network, now: now}
		ok := make([]peeked, 0, len(batch))
		var bad []ds.Key
		for _, e := range batch {
			if r, err := pk.peek(e.key, e.value); err == nil {
				r.key = e.key
				ok = append(ok, r)
			} else {
				bad = append(bad, ds.RawKey(string(e.key)))
			}
		}
		n := 0
		s.mu.Lock()
		for _, r := range ok {
			if s.indexLoadedLocked(r.c, r.p, r.h) == nil {
				n++
			} else {
				bad = append(bad, ds.RawKey(string(r.key)))
			}
		}
		s.mu.Unlock()
		mu.Lock()
		kept += n
		drop = append(drop, bad...)
		mu.Unlock()
	})
	if err != nil {
		return kept, err
	}
	for _, k := range drop {
		if err := s.ds.Delete(ctx, k); err != nil {
			return kept, fmt.Errorf("delete stale record: %w", err)
		}
	}
	return kept, nil
}

// indexLoadedLocked adds h, a record read from the datastore unverified,
// to the index under the same quotas as Add, evicting nothing. s.mu must
// be held.
func (s *Store) indexLoadedLocked(c cid.Cid, p peer.ID, h held) error {
	vs, err := s.admitLocked(c, p, h.seq, h.cost(), Source{})
	if err == nil && len(vs) > 0 {
		err = fmt.Errorf("%w: no room at start-up", ErrStoreFull)
	}
	if err != nil {
		return err
	}
	s.indexLocked(c, p, h)
	return nil
}

// peeker reads datastore entries for Load, remembering the last service
// it decoded: keys sort by service, so a run of records shares it.
type peeker struct {
	network string
	now     time.Time
	key     []byte // scratch: the DHT key decoded from base32
	lastCID string
	c       cid.Cid
	name    string // the service name last checked against c
}

// peek reads datastore entry k, v without checking the envelope's
// signature (VerifyAll and List do that): a kad record protobuf whose key
// is the one it is filed under, holding an unexpired record of the
// network for that key's service and peer. It returns its index entry,
// unverified.
func (pk *peeker) peek(k, v []byte) (peeked, error) {
	dk, env, err := pk.filed(k, v)
	if err != nil {
		return peeked{}, err
	}
	cs, ps, ok := strings.Cut(dk[len(record.Namespace)+2:], "/")
	if !ok {
		return peeked{}, record.ErrMalformed
	}
	if cs != pk.lastCID {
		c, err := cid.Decode(cs)
		if err != nil {
			return peeked{}, record.ErrMalformed
		}
		pk.lastCID, pk.c, pk.name = cs, c, ""
	}
	p, err := peer.Decode(ps)
	if err != nil {
		return peeked{}, record.ErrMalformed
	}
	payload, ok := envelopePayload(env)
	var svc payloadPeek
	if !ok || decodePeek(payload, &svc) != nil {
		return peeked{}, record.ErrMalformed
	}
	if svc.Network != pk.network || svc.Peer != ps || !pk.named(svc.Name) {
		return peeked{}, record.ErrMalformed
	}
	if !pk.now.Before(svc.ExpiresAt) {
		return peeked{}, record.ErrExpired
	}
	return peeked{c: pk.c, p: p, h: held{sum: sha256.Sum256(env), size: int32(len(env)), seq: svc.Seq,
		expires: svc.ExpiresAt, withdrawn: svc.Withdrawn}}, nil
}

// filed returns the DHT key datastore key k files and the envelope its
// kad record v holds, if v is a kad record for that very key.
func (pk *peeker) filed(k, v []byte) (string, []byte, error) {
	rest, ok := bytes.CutPrefix(k, []byte("/"+record.Namespace+"/"))
	if !ok || bytes.IndexByte(rest, '/') >= 0 {
		return "", nil, record.ErrMalformed
	}
	if need := base32.RawStdEncoding.DecodedLen(len(rest)); cap(pk.key) < need {
		pk.key = make([]byte, need)
	}
	pk.key = pk.key[:cap(pk.key)]
	n, err := base32.RawStdEncoding.Decode(pk.key, rest)
	if err != nil {
		return "", nil, record.ErrMalformed
	}
	key, env, ok := kadRecord(v)
	if !ok || string(key) != string(pk.key[:n]) || !strings.HasPrefix(string(key), "/"+record.Namespace+"/") {
		return "", nil, record.ErrMalformed
	}
	return string(key), env, nil
}

// named reports whether name is a valid service name whose CID is the
// current service's.
func (pk *peeker) named(name string) bool {
	if name == pk.name {
		return true
	}
	c, err := record.ServiceCID(pk.network, name)
	if err != nil || !c.Equals(pk.c) {
		return false
	}
	pk.name = name
	return true
}

// kadRecord reads a kad record protobuf (go-libp2p-record's pb.Record)
// by hand: its key (field 1) and value (field 2).
func kadRecord(b []byte) (key, value []byte, ok bool) {
	return twoFields(b, 1, 2)
}

// envelopePayload reads a signed envelope's payload (field 3 of
// go-libp2p's pb.Envelope) by hand, unchecked.
func envelopePayload(b []byte) ([]byte, bool) {
	_, payload, ok := twoFields(b, 0, 3)
	return payload, ok && payload != nil
}

// twoFields returns the last occurrences of bytes fields a and b of the
// protobuf message m (0: none wanted), as proto.Unmarshal would keep them,
// and false if m is not a well-formed message.
func twoFields(m []byte, a, b protowire.Number) (fa, fb []byte, ok bool) {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return nil, nil, false
		}
		m = m[n:]
		if (num == a || num == b) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return nil, nil, false
			}
			if num == a {
				fa = v
			} else {
				fb = v
			}
			m = m[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, m)
		if n < 0 {
			return nil, nil, false
		}
		m = m[n:]
	}
	return fa, fb, true
}

// VerifyAll checks the signature of every record Load indexed unverified,
// reading the datastore in key order (sequential reads, not a lookup a
// record), by as many workers as there are CPUs, and deletes those that
// fail. It returns how many it deleted.
func (s *Store) VerifyAll(ctx context.Context) (int, error) {
	if s.Unverified() == 0 {
		return 0, nil
	}
	var mu sync.Mutex
	var firstErr error
	deleted := 0
	err := s.parallel(ctx, func(batch []rawEntry) {
		for _, e := range batch {
			if ctx.Err() != nil || s.Unverified() == 0 {
				return
			}
			bad, err := s.verifyEntry(ctx, e)
			mu.Lock()
			if bad {
				deleted++
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	if firstErr == nil {
		firstErr = err
	}
	return deleted, firstErr
}

// verifyEntry checks the record of datastore entry e if the index holds
// it unverified, and deletes it if it fails. It reports whether it
// deleted it.
func (s *Store) verifyEntry(ctx context.Context, e rawEntry) (bool, error) {
	k := ds.RawKey(string(e.key))
	dk, ok := dhtKey(k)
	if !ok {
		return false, nil
	}
	c, p, err := record.ParseKey(dk)
	if err != nil {
		return false, nil // Load dropped it
	}
	env := envOf(e.value)
	if h, ok := s.get(c, p); !ok || h.verified || env == nil || h.sum != sha256.Sum256(env) {
		return false, nil // verified, replaced or gone since
	}
	if s.verified(c, p, env) {
		return false, nil
	}
	defer s.lockKey(c, p)()
	s.mu.Lock()
	h, ok := s.bySvc[c][p]
	ok = ok && !h.verified && h.sum == sha256.Sum256(env)
	if ok {
		s.unindexLocked(c, p)
	}
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := s.ds.Delete(ctx, k); err != nil {
		return true, fmt.Errorf("delete invalid record: %w", err)
	}
	return true, nil
}
