// Package recordtest crafts service records for tests: valid ones, and one
// invalid record per verification check, signed the way an attacker would
// (bypassing record.Seal's own checks).
package recordtest

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	lprecord "github.com/libp2p/go-libp2p/core/record"

	"github.com/netget/netget-peer/record"
)

// Service is the name every crafted record is for, on network "development".
const Service = "DatabaseService"

// NewKey returns a fresh Ed25519 key and its peer ID.
func NewKey(tb testing.TB) (crypto.PrivKey, peer.ID) {
	tb.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return k, id
}

// Valid returns a valid development-network record for Service by id,
// issued a minute before now and expiring an hour after.
func Valid(id peer.ID, now time.Time) *record.Service {
	return &record.Service{
		Version:   record.Version,
		Network:   "development",
		Name:      Service,
		Peer:      id,
		Addrs:     []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
		Meta:      map[string]string{"region": "eu-west", "version": "15.4"},
		Seq:       7,
		IssuedAt:  now.Add(-time.Minute),
		ExpiresAt: now.Add(time.Hour),
	}
}

// SealRaw signs s with key without any of record.Seal's checks.
func SealRaw(tb testing.TB, s *record.Service, key crypto.PrivKey) []byte {
	tb.Helper()
	env, err := lprecord.Seal(s, key)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Key returns the DHT key of id's record for name on network.
func Key(tb testing.TB, network, name string, id peer.ID) string {
	tb.Helper()
	c, err := record.ServiceCID(network, name)
	if err != nil {
		tb.Fatal(err)
	}
	return record.Key(c, id)
}

// Case is one invalid record and the error verification must return for it.
type Case struct {
	Name string
	// Data is the sealed envelope, presented as key's record for Service on
	// "development" (Key(tb, "development", Service, id)).
	Data []byte
	Want error
}

// Bad returns one invalid record per verification check, each presented as
// the record of key's peer for Service on "development".
func Bad(tb testing.TB, key crypto.PrivKey, now time.Time) []Case {
	tb.Helper()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	otherKey, otherID := NewKey(tb)
	mutate := func(f func(*record.Service)) []byte {
		s := Valid(id, now)
		f(s)
		return SealRaw(tb, s, key)
	}
	forged := func() []byte {
		env, err := lprecord.Seal(Valid(id, now), key)
		if err != nil {
			tb.Fatal(err)
		}
		s := Valid(id, now)
		s.Meta["region"] = "attacker"
		env.RawPayload, _ = s.MarshalRecord()
		b, err := env.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	return []Case{
		{"forged signature", forged(), record.ErrBadSignature},
		{"signer is not the record's peer", SealRaw(tb, Valid(id, now), otherKey), record.ErrSignerMismatch},
		{"record of another peer", SealRaw(tb, Valid(otherID, now), otherKey), record.ErrPeerMismatch},
		{"wrong cid", mutate(func(s *record.Service) { s.Name = "CacheService" }), record.ErrWrongCID},
		{"wrong network", mutate(func(s *record.Service) { s.Network = "production" }), record.ErrWrongNetwork},
		{"expired", mutate(func(s *record.Service) {
			s.IssuedAt, s.ExpiresAt = now.Add(-2*time.Hour), now.Add(-time.Second)
		}), record.ErrExpired},
		{"issued in the future", mutate(func(s *record.Service) {
			s.IssuedAt, s.ExpiresAt = now.Add(10*time.Minute), now.Add(time.Hour)
		}), record.ErrIssuedInFuture},
		{"ttl over 24h", mutate(func(s *record.Service) { s.ExpiresAt = s.IssuedAt.Add(25 * time.Hour) }), record.ErrBadTTL},
		{"oversized", mutate(func(s *record.Service) {
			for i := range 10 {
				s.Meta[strings.Repeat("k", i+1)] = strings.Repeat("v", 500)
			}
		}), record.ErrTooLarge},
		{"bad name", mutate(func(s *record.Service) { s.Name = "Database Service!" }), record.ErrBadName},
		{"bad network name", mutate(func(s *record.Service) { s.Network = "Dev_Net" }), record.ErrBadNetwork},
		{"bad version", mutate(func(s *record.Service) { s.Version = 2 }), record.ErrBadVersion},
		{"bad addr", mutate(func(s *record.Service) { s.Addrs = []string{"/ip4/999.0.0.1/tcp/1"} }), record.ErrBadAddr},
		{"too many addrs", mutate(func(s *record.Service) {
			s.Addrs = make([]string, record.MaxAddrs+1)
			for i := range s.Addrs {
				s.Addrs[i] = "/ip4/127.0.0.1/tcp/1"
			}
		}), record.ErrBadAddr},
		{"metadata value too long", mutate(func(s *record.Service) { s.Meta["x"] = strings.Repeat("v", 513) }), record.ErrBadMetadata},
		{"too many metadata pairs", mutate(func(s *record.Service) {
			for i := range record.MaxMetaPairs {
				s.Meta[strings.Repeat("m", i+1)] = "1"
			}
		}), record.ErrBadMetadata},
		{"garbage", []byte("not an envelope"), record.ErrMalformed},
	}
}
