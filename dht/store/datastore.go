package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pebbleds "github.com/ipfs/go-ds-pebble"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	lprecord "github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/record"
)

// Open opens (creating it if need be) the on-disk datastore in dir that a
// persistent node gives its Config.Datastore: a Pebble database
// whose writes are synced to disk before they return. Pebble over LevelDB
// because it is maintained (CockroachDB's storage engine; goleveldb is
// not), recovers its write-ahead log after a crash or SIGKILL, and commits
// concurrent writes with one fsync. The caller
// closes it after the Node and the host. A directory that is not a
// datastore, or one another process has open, fails with ErrDatastore and
// the path.
func Open(dir string) (ds.Batching, error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%w %s: not a directory", ErrDatastore, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrDatastore, dir, err)
	}
	d, err := openPebble(dir)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrDatastore, dir, err)
	}
	return d, nil
}

// openPebble opens a Pebble datastore, turning a panic inside Pebble on a
// damaged directory into an error.
func openPebble(dir string) (d ds.Batching, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt: %v", r)
		}
	}()
	// Sync: a record is acknowledged only once its write-ahead log entry
	// is on disk, so a registry killed right after a put still has it.
	// Concurrent puts share one fsync (Pebble's group commit).
	return pebbleds.NewDatastore(dir, pebbleds.WithPebbleWriteOptions(pebble.Sync))
}

// Load indexes the records the datastore holds, as at start-up after a
// restart, by as many workers as there are CPUs: each is read without its
// signature check (peekStored), so a registry of 100,000 records starts in
// seconds, and is marked unverified; VerifyAll checks the signatures in the
// background, and list verifies an unverified record before it serves it.
// Expired, malformed, misfiled and over-quota records are deleted. Only the
// index stays in memory. It returns how many it kept.
func (s *Store) Load(ctx context.Context, now time.Time) (int, error) {
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: "/" + record.Namespace})
	if err != nil {
		return 0, fmt.Errorf("read datastore: %w", err)
	}
	defer res.Close()
	work := make(chan dsq.Entry, 256)
	var mu sync.Mutex
	var drop []ds.Key
	kept := 0
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for e := range work {
				k := ds.NewKey(e.Key)
				svc, c, env, err := peekStored(s.v.Network, k, e.Value, now)
				if err == nil {
					err = s.index(c, svc, env)
				}
				mu.Lock()
				if err != nil {
					drop = append(drop, k)
				} else {
					kept++
				}
				mu.Unlock()
			}
		})
	}
	for e := range res.Next() {
		if e.Error != nil {
			err = fmt.Errorf("read datastore: %w", e.Error)
			break
		}
		work <- e.Entry
	}
	close(work)
	wg.Wait()
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

// peekStored reads a datastore entry without checking the envelope's
// signature (VerifyAll and List do that): a kad record protobuf whose key
// is the one it is filed under, holding an unexpired record of network
// for that key's service and peer. It returns the record, its service and
// the envelope.
func peekStored(network string, k ds.Key, b []byte, now time.Time) (*record.Service, cid.Cid, []byte, error) {
	key, ok := dhtKey(k)
	var rec recpb.Record
	if !ok || proto.Unmarshal(b, &rec) != nil || string(rec.GetKey()) != key {
		return nil, cid.Undef, nil, record.ErrMalformed
	}
	c, p, err := record.ParseKey(key)
	if err != nil {
		return nil, cid.Undef, nil, err
	}
	svc, err := payloadOf(rec.GetValue())
	if err != nil {
		return nil, cid.Undef, nil, err
	}
	want, err := record.ServiceCID(svc.Network, svc.Name)
	switch {
	case err != nil || svc.Network != network || svc.Peer != p || !want.Equals(c):
		return nil, cid.Undef, nil, record.ErrMalformed
	case !now.Before(svc.ExpiresAt):
		return nil, cid.Undef, nil, record.ErrExpired
	}
	return svc, c, rec.GetValue(), nil
}

// payloadOf decodes the record inside a signed envelope without checking
// the signature: for what the store verified when it took the record, or
// verifies later (peekStored).
func payloadOf(env []byte) (*record.Service, error) {
	e, err := lprecord.UnmarshalEnvelope(env)
	var svc record.Service
	if err != nil || svc.UnmarshalRecord(e.RawPayload) != nil {
		return nil, record.ErrMalformed
	}
	return &svc, nil
}

// VerifyAll checks the signature of every record Load indexed unverified,
// by as many workers as there are CPUs, and deletes those that fail. It
// returns how many it deleted.
func (s *Store) VerifyAll(ctx context.Context) (int, error) {
	var todo []victim
	s.mu.Lock()
	for c, peers := range s.bySvc {
		for p, h := range peers {
			if !h.verified {
				todo = append(todo, victim{c, p})
			}
		}
	}
	s.mu.Unlock()
	work := make(chan victim)
	var mu sync.Mutex
	var firstErr error
	deleted := 0
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for v := range work {
				bad, err := s.verifyOne(ctx, v)
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
	}
	for _, v := range todo {
		if ctx.Err() != nil {
			break
		}
		work <- v
	}
	close(work)
	wg.Wait()
	return deleted, firstErr
}

// verifyOne checks v's record if it is still unverified, and deletes it
// if it fails. It reports whether it deleted it.
func (s *Store) verifyOne(ctx context.Context, v victim) (bool, error) {
	defer s.lockKey(v.c, v.p)()
	if h, ok := s.get(v.c, v.p); !ok || h.verified {
		return false, nil
	}
	k := dsKey(record.Key(v.c, v.p))
	b, err := s.ds.Get(ctx, k)
	if err != nil {
		return false, nil // gone since
	}
	if s.verified(v.c, v.p, envOf(b)) {
		return false, nil
	}
	s.mu.Lock()
	s.unindexLocked(v.c, v.p)
	s.mu.Unlock()
	if err := s.ds.Delete(ctx, k); err != nil {
		return true, fmt.Errorf("delete invalid record: %w", err)
	}
	return true, nil
}

// envOf returns the envelope inside a stored kad record.
func envOf(b []byte) []byte {
	var rec recpb.Record
	if proto.Unmarshal(b, &rec) != nil {
		return nil
	}
	return rec.GetValue()
}

// write puts b under k and deletes the evicted records, in one commit when
// the datastore batches.
func (s *Store) write(ctx context.Context, k ds.Key, b []byte, evicted []victim) error {
	bd, ok := s.ds.(ds.Batching)
	if !ok || len(evicted) == 0 {
		for _, v := range evicted {
			if err := s.ds.Delete(ctx, dsKey(record.Key(v.c, v.p))); err != nil {
				return err
			}
		}
		return s.ds.Put(ctx, k, b)
	}
	batch, err := bd.Batch(ctx)
	if err != nil {
		return err
	}
	for _, v := range evicted {
		if err := batch.Delete(ctx, dsKey(record.Key(v.c, v.p))); err != nil {
			return err
		}
	}
	if err := batch.Put(ctx, k, b); err != nil {
		return err
	}
	return batch.Commit(ctx)
}

// Sweep deletes expired records, and every record of the providers in
// gone, from the index and the datastore. It returns how many it deleted.
// It holds each record's put lock, not the index lock, across the delete.
func (s *Store) Sweep(ctx context.Context, now time.Time, gone map[peer.ID]bool) (int, error) {
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
		ok, err := s.sweepOne(ctx, v, now, gone)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// sweepOne deletes v's record if it is still expired or its provider gone.
func (s *Store) sweepOne(ctx context.Context, v victim, now time.Time, gone map[peer.ID]bool) (bool, error) {
	defer s.lockKey(v.c, v.p)()
	s.mu.Lock()
	h, ok := s.bySvc[v.c][v.p]
	ok = ok && (gone[v.p] || !now.Before(h.expires))
	if ok {
		s.unindexLocked(v.c, v.p)
	}
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := s.ds.Delete(ctx, dsKey(record.Key(v.c, v.p))); err != nil {
		return false, fmt.Errorf("delete record: %w", err)
	}
	return true, nil
}

// View is the datastore kad-dht is given: the node's datastore, with
// netget records routed through the store, so every write, a DHT
// PUT_VALUE included, is indexed and decided by seq in one place, and an
// unhealthy provider's records are not served by GET_VALUE either.
// Provider records and anything else pass through untouched.
type View struct {
	ds.Batching
	s     *Store
	v     record.Validator
	count func(error)  // told the outcome of every netget record put (metrics)
	added func([]byte) // told every netget record put that is new here; nil: nobody
}

var _ ds.Batching = View{}

// NewView returns the view of d, the store's own datastore, that kad-dht
// writes through: netget records go to s once v verifies them, and count
// is told the outcome of each (nil on success).
func NewView(d ds.Batching, s *Store, v record.Validator, count func(error)) View {
	return View{Batching: d, s: s, v: v, count: count}
}

// OnAdded returns the view that also hands fn every record a put stores
// that the store did not hold (a registry forwards it to its peers).
func (k View) OnAdded(fn func(env []byte)) View {
	k.added = fn
	return k
}

// Put implements ds.Write. kad-dht has already validated a netget record
// it puts; the store verifies it again unless it holds these very bytes.
func (k View) Put(ctx context.Context, key ds.Key, value []byte) error {
	dk, ok := dhtKey(key)
	if !ok {
		return k.Batching.Put(ctx, key, value)
	}
	var rec recpb.Record
	if proto.Unmarshal(value, &rec) != nil || string(rec.GetKey()) != dk {
		return fmt.Errorf("store record: %w", record.ErrMalformed)
	}
	c, p, err := record.ParseKey(dk)
	if err != nil {
		return err
	}
	if h, ok := k.s.get(c, p); ok && h.sum == sha256.Sum256(rec.GetValue()) {
		return nil
	}
	svc, err := k.v.OpenKey(dk, rec.GetValue())
	if err == nil {
		// kad-dht does not say who sent a PUT_VALUE: no source.
		err = k.s.Add(ctx, c, svc, rec.GetValue(), Source{})
	}
	k.count(err)
	if err == nil && k.added != nil {
		k.added(rec.GetValue())
	}
	return err
}

// Delete implements ds.Write.
func (k View) Delete(ctx context.Context, key ds.Key) error {
	if err := k.Batching.Delete(ctx, key); err != nil {
		return err
	}
	k.s.drop(key)
	return nil
}

// Get implements ds.Read, hiding unhealthy providers' records.
func (k View) Get(ctx context.Context, key ds.Key) ([]byte, error) {
	if k.s.hidden(key) {
		return nil, ds.ErrNotFound
	}
	return k.Batching.Get(ctx, key)
}

// Has implements ds.Read, hiding unhealthy providers' records.
func (k View) Has(ctx context.Context, key ds.Key) (bool, error) {
	if k.s.hidden(key) {
		return false, nil
	}
	return k.Batching.Has(ctx, key)
}

// Batch implements ds.Batching: netget records in a batch are written
// through the store at once; the rest is batched as usual.
func (k View) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := k.Batching.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return kadBatch{Batch: b, view: k}, nil
}

type kadBatch struct {
	ds.Batch
	view View
}

func (b kadBatch) Put(ctx context.Context, key ds.Key, value []byte) error {
	if _, ok := dhtKey(key); ok {
		return b.view.Put(ctx, key, value)
	}
	return b.Batch.Put(ctx, key, value)
}

func (b kadBatch) Delete(ctx context.Context, key ds.Key) error {
	if _, ok := dhtKey(key); ok {
		return b.view.Delete(ctx, key)
	}
	return b.Batch.Delete(ctx, key)
}
