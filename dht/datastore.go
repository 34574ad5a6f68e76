package dht

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pebbleds "github.com/ipfs/go-ds-pebble"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/record"
)

// OpenDatastore opens (creating it if need be) the on-disk datastore in
// dir that a persistent node gives Config.Datastore: a Pebble database
// whose writes are synced to disk before they return. Pebble over LevelDB
// because it is maintained (CockroachDB's storage engine; goleveldb is
// not), recovers its write-ahead log after a crash or SIGKILL, and commits
// concurrent writes with one fsync. The caller
// closes it after the Node and the host. A directory that is not a
// datastore, or one another process has open, fails with ErrDatastore and
// the path.
func OpenDatastore(dir string) (ds.Batching, error) {
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

// load indexes the records the datastore holds, as at start-up after a
// restart: each is verified again, by as many workers as there are CPUs
// (Ed25519 verification is the cost); expired, invalid, misfiled and
// over-quota ones are deleted. Only the index stays in memory. It returns
// how many it kept.
func (s *store) load(ctx context.Context, v record.Validator) (int, error) {
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
				svc, c, env, err := openStored(v, k, e.Value)
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

// openStored verifies a datastore entry: a kad record protobuf whose key
// is the one it is filed under and whose value is a valid envelope for it,
// which it returns.
func openStored(v record.Validator, k ds.Key, b []byte) (*record.Service, cid.Cid, []byte, error) {
	key, ok := dhtKey(k)
	var rec recpb.Record
	if !ok || proto.Unmarshal(b, &rec) != nil || string(rec.GetKey()) != key {
		return nil, cid.Undef, nil, record.ErrMalformed
	}
	svc, err := v.OpenKey(key, rec.GetValue())
	if err != nil {
		return nil, cid.Undef, nil, err
	}
	c, _, err := record.ParseKey(key)
	return svc, c, rec.GetValue(), err
}

// envOf returns the envelope inside a stored kad record.
func envOf(b []byte) []byte {
	var rec recpb.Record
	if proto.Unmarshal(b, &rec) != nil {
		return nil
	}
	return rec.GetValue()
}

// kadView is the datastore kad-dht is given: the node's datastore, with
// netget records routed through the store, so every write, a DHT
// PUT_VALUE included, is indexed and decided by seq in one place, and an
// unhealthy provider's records are not served by GET_VALUE either.
// Provider records and anything else pass through untouched.
type kadView struct {
	ds.Batching
	n *Node
}

var _ ds.Batching = kadView{}

// Put implements ds.Write. kad-dht has already validated a netget record
// it puts; the store verifies it again unless it holds these very bytes.
func (k kadView) Put(ctx context.Context, key ds.Key, value []byte) error {
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
	if h, ok := k.n.store.get(c, p); ok && h.sum == sha256.Sum256(rec.GetValue()) {
		return nil
	}
	svc, err := k.n.validator.OpenKey(dk, rec.GetValue())
	if err == nil {
		// kad-dht does not say who sent a PUT_VALUE: no source.
		err = k.n.store.put(ctx, c, svc, rec.GetValue(), source{})
	}
	k.n.metrics.record(err)
	return err
}

// Delete implements ds.Write.
func (k kadView) Delete(ctx context.Context, key ds.Key) error {
	if err := k.Batching.Delete(ctx, key); err != nil {
		return err
	}
	k.n.store.drop(key)
	return nil
}

// Get implements ds.Read, hiding unhealthy providers' records.
func (k kadView) Get(ctx context.Context, key ds.Key) ([]byte, error) {
	if k.n.store.hidden(key) {
		return nil, ds.ErrNotFound
	}
	return k.Batching.Get(ctx, key)
}

// Has implements ds.Read, hiding unhealthy providers' records.
func (k kadView) Has(ctx context.Context, key ds.Key) (bool, error) {
	if k.n.store.hidden(key) {
		return false, nil
	}
	return k.Batching.Has(ctx, key)
}

// Batch implements ds.Batching: netget records in a batch are written
// through the store at once; the rest is batched as usual.
func (k kadView) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := k.Batching.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return kadBatch{Batch: b, view: k}, nil
}

type kadBatch struct {
	ds.Batch
	view kadView
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
