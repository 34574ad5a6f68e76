package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	lprecord "github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/record"
)

// DefaultMemtableBytes is the default of Options.MemtableBytes: 32 MiB,
// eight times Pebble's own 4 MiB. A registry of a million records then
// writes about 1.9 KB of tables per synced write of an 860-byte record
// (flushes and compactions, settled) where Pebble's default wrote 6.3 KB,
// and spent 4-9% less CPU a write, flush and compactions included, in a
// pair of runs on a loaded machine (BenchmarkRegistryScale): a flush is
// merged into the loaded levels 8 times less often, and each merge
// rewrites the same overlapping tables for 8 times the records. Pebble
// grows its memtables from 256 KiB, doubling at each flush, up to this
// size, so a node that writes little never holds it; the block cache
// grows by the two memtables it reserves (72 MiB in all, filled only by
// reads).
const DefaultMemtableBytes = 32 << 20

// blockCacheBytes is the block cache Pebble gives reads by default, which
// OpenWith keeps beside the memtables it reserves from the same cache.
const blockCacheBytes = 8 << 20

// Bounds of Options.MemtableBytes.
const (
	MinMemtableBytes = 1 << 20
	MaxMemtableBytes = 1 << 30
)

// Options tunes the on-disk datastore OpenWith makes. The zero value is
// the defaults.
type Options struct {
	// MemtableBytes is the size of Pebble's in-memory write buffer (a
	// memtable; up to two are held while one is flushed, so this is also
	// half the most write-buffer memory the datastore holds). 0 means
	// DefaultMemtableBytes; else MinMemtableBytes to MaxMemtableBytes.
	MemtableBytes int64
}

// Validate reports options no datastore can use, with
// ErrBadDatastoreOptions: the one check Open and the node's Config make.
func (o Options) Validate() error {
	if o.MemtableBytes != 0 && (o.MemtableBytes < MinMemtableBytes || o.MemtableBytes > MaxMemtableBytes) {
		return fmt.Errorf("%w: memtable of %d bytes, want %d MiB to %d MiB", ErrBadDatastoreOptions,
			o.MemtableBytes, MinMemtableBytes>>20, MaxMemtableBytes>>20)
	}
	return nil
}

// Open opens (creating it if need be) the on-disk datastore in dir that a
// persistent node gives its Config.Datastore, with the default Options:
// a Pebble database whose writes are synced to disk before they return.
// Pebble over LevelDB because it is maintained (CockroachDB's storage
// engine; goleveldb is not), recovers its write-ahead log after a crash or
// SIGKILL, and commits concurrent writes with one fsync. The caller closes
// it after the Node and the host. A directory that is not a datastore, or
// one another process has open, fails with ErrDatastore and the path.
func Open(dir string) (ds.Batching, error) { return OpenWith(dir, Options{}) }

// OpenWith is Open with o; options that fail Validate fail it.
func OpenWith(dir string, o Options) (ds.Batching, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MemtableBytes == 0 {
		o.MemtableBytes = DefaultMemtableBytes
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%w %s: not a directory", ErrDatastore, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrDatastore, dir, err)
	}
	d, err := openPebble(dir, o)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrDatastore, dir, err)
	}
	return d, nil
}

// openPebble opens a Pebble datastore, turning a panic inside Pebble on a
// damaged directory into an error.
func openPebble(dir string, o Options) (d ds.Batching, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt: %v", r)
		}
	}()
	// Sync: a record is acknowledged only once its write-ahead log entry
	// is on disk, so a registry killed right after a put still has it.
	// Concurrent puts share one fsync (Pebble's group commit).
	// The block cache is Pebble's default 8 MiB plus the two memtables
	// Pebble reserves out of it, so reads keep the room they had.
	return pebbleds.NewDatastore(dir, pebbleds.WithPebbleWriteOptions(pebble.Sync),
		pebbleds.WithPebbleOpts(&pebble.Options{MemTableSize: uint64(o.MemtableBytes)}),
		pebbleds.WithCacheSize(blockCacheBytes+2*o.MemtableBytes))
}

// payloadOf decodes the record inside a signed envelope without checking
// the signature: for what the store verified when it took the record.
func payloadOf(env []byte) (*record.Service, error) {
	e, err := lprecord.UnmarshalEnvelope(env)
	var svc record.Service
	if err != nil || svc.UnmarshalRecord(e.RawPayload) != nil {
		return nil, record.ErrMalformed
	}
	return &svc, nil
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
