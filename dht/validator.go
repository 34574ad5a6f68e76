package dht

import (
	kadrecord "github.com/libp2p/go-libp2p-record"

	"github.com/netget/netget-peer/record"
)

// kadValidator is the only validator the DHT runs: netget records under
// /netget/, nothing else (in particular no IPFS "pk" or "ipns" records).
// Every refusal is counted in m.
func kadValidator(v record.Validator, m *metrics) kadrecord.Validator {
	return kadrecord.NamespacedValidator{record.Namespace: countingValidator{v, m}}
}

// countingValidator is record.Validator with its refusals counted.
type countingValidator struct {
	v record.Validator
	m *metrics
}

func (c countingValidator) Validate(key string, value []byte) error {
	err := c.v.Validate(key, value)
	if err != nil {
		c.m.record(err)
	}
	return err
}

func (c countingValidator) Select(key string, values [][]byte) (int, error) {
	return c.v.Select(key, values)
}
