package dht

import (
	"sync"

	kadrecord "github.com/libp2p/go-libp2p-record"

	"github.com/netget/netget-peer/record"
)

// kadValidator is the only validator the DHT runs: netget records under
// /netget/, nothing else (in particular no IPFS "pk" or "ipns" records).
// Every refusal is counted in rej.
func kadValidator(v record.Validator, rej *rejections) kadrecord.Validator {
	return kadrecord.NamespacedValidator{record.Namespace: countingValidator{v, rej}}
}

// countingValidator is record.Validator with its refusals counted.
type countingValidator struct {
	v   record.Validator
	rej *rejections
}

func (c countingValidator) Validate(key string, value []byte) error {
	err := c.v.Validate(key, value)
	c.rej.add(err)
	return err
}

func (c countingValidator) Select(key string, values [][]byte) (int, error) {
	return c.v.Select(key, values)
}

// rejections counts refused records by reason.
type rejections struct {
	mu sync.Mutex
	n  map[error]uint64
}

func newRejections() *rejections { return &rejections{n: make(map[error]uint64)} }

// add counts err under its record reason; nil and non-record errors are ignored.
func (r *rejections) add(err error) {
	reason := record.Reason(err)
	if reason == nil {
		return
	}
	r.mu.Lock()
	r.n[reason]++
	r.mu.Unlock()
}

func (r *rejections) snapshot() map[error]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[error]uint64, len(r.n))
	for k, v := range r.n {
		out[k] = v
	}
	return out
}
