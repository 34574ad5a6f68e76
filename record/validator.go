package record

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	kadrecord "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"
	lprecord "github.com/libp2p/go-libp2p/core/record"
)

// Validator verifies records for one network. It is the single code path
// every record passes through, on write and on read, and it implements
// go-libp2p-record's Validator so kad-dht runs it on every value put.
// The zero value is not usable: Network must be set.
type Validator struct {
	// Network is the only network whose records are accepted.
	Network string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Cache, if set, remembers envelopes that passed every check that does
	// not depend on the time (size, signature, signer, syntax, network),
	// by the SHA-256 of their bytes, so the same bytes are not verified
	// twice; the time-bound checks (expiry, issued-at) run on every Open.
	Cache Cache
	// Allow, if set, closes the network to the providers it lists: a
	// record from anyone else fails with ErrNotAllowed, on write and on
	// read alike. Nil allows every provider.
	Allow *AllowList
}

// Cache holds verified records by the SHA-256 of their envelope. The
// validator stores a record it has verified and never modifies one it
// gets; it returns copies to its callers. Implementations must be safe for
// concurrent use and may forget entries at any time.
type Cache interface {
	Get(sum [32]byte) (*Service, bool)
	Add(sum [32]byte, s *Service)
}

var _ kadrecord.Validator = Validator{}

func (v Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Open verifies a sealed envelope and returns its record: size, signature,
// signer = peer, network, syntax, expiry and issued-at, and the allow-list. It does not check
// which key the record was stored under; OpenKey does. The record returned
// is the caller's own.
func (v Validator) Open(data []byte) (*Service, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxEnvelopeSize)
	}
	var sum [32]byte
	if v.Cache != nil {
		sum = sha256.Sum256(data)
	}
	return v.open(sum, data)
}

// open is Open for data whose SHA-256 is sum (used only with a Cache).
func (v Validator) open(sum [32]byte, data []byte) (*Service, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxEnvelopeSize)
	}
	if v.Cache != nil {
		// Verified for this network (a cache may serve several).
		if s, ok := v.Cache.Get(sum); ok && s.Network == v.Network {
			if err := v.checkPolicy(s); err != nil {
				return nil, err
			}
			return s.clone(), nil
		}
	}
	s, err := v.verify(data)
	if err != nil {
		return nil, err
	}
	if v.Cache != nil {
		v.Cache.Add(sum, s.clone())
	}
	if err := v.checkPolicy(s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkPolicy runs Open's checks that a cached record must pass again:
// the time-bound ones and the allow-list.
func (v Validator) checkPolicy(s *Service) error {
	if err := v.checkTime(s); err != nil {
		return err
	}
	return v.Allow.check(s)
}

// verify runs Open's checks that do not depend on the time.
func (v Validator) verify(data []byte) (*Service, error) {
	var s Service
	env, err := lprecord.ConsumeTypedEnvelope(data, &s)
	switch {
	case errors.Is(err, lprecord.ErrInvalidSignature):
		return nil, ErrBadSignature
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	case !bytes.Equal(env.PayloadType, payloadType):
		return nil, fmt.Errorf("%w: payload type %q", ErrMalformed, env.PayloadType)
	}
	if err := checkSyntax(&s); err != nil {
		return nil, err
	}
	if s.Network != v.Network {
		return nil, fmt.Errorf("%w: %q, this node is on %q", ErrWrongNetwork, s.Network, v.Network)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: signer key: %w", ErrMalformed, err)
	}
	if signer != s.Peer {
		return nil, fmt.Errorf("%w: signed by %s, record says %s", ErrSignerMismatch, signer, s.Peer)
	}
	return &s, nil
}

// checkTime runs Open's time-bound checks: not expired, issued-at not
// more than MaxClockSkew ahead.
func (v Validator) checkTime(s *Service) error {
	now := v.now()
	if !now.Before(s.ExpiresAt) {
		return fmt.Errorf("%w: at %s", ErrExpired, s.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if s.IssuedAt.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("%w: %s", ErrIssuedInFuture, s.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// OpenKey is Open plus the key binding: the key must be
// /netget/<CID of the record's service>/<record's peer>.
func (v Validator) OpenKey(key string, data []byte) (*Service, error) {
	c, p, err := ParseKey(key)
	if err != nil {
		return nil, err
	}
	s, err := v.OpenFor(c, data)
	if err != nil {
		return nil, err
	}
	if p != s.Peer {
		return nil, fmt.Errorf("%w: key has %s, record says %s", ErrPeerMismatch, p, s.Peer)
	}
	return s, nil
}

// OpenFor is Open plus a check that the record is for service c, for
// records that arrive without a DHT key (a registry's list, a provider).
func (v Validator) OpenFor(c cid.Cid, data []byte) (*Service, error) {
	s, err := v.Open(data)
	if err != nil {
		return nil, err
	}
	if err := checkCID(c, s); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenForSum is OpenFor for data the caller has hashed already: sum must
// be sha256.Sum256(data). A caller that dedupes envelopes by their hash
// (a find) so hashes each once; the Cache is consulted under sum.
func (v Validator) OpenForSum(c cid.Cid, sum [32]byte, data []byte) (*Service, error) {
	s, err := v.open(sum, data)
	if err != nil {
		return nil, err
	}
	if err := checkCID(c, s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkCID checks that record s is for service c.
func checkCID(c cid.Cid, s *Service) error {
	want, err := ServiceCID(s.Network, s.Name)
	if err != nil {
		return err
	}
	if !c.Equals(want) {
		return fmt.Errorf("%w: want %s, record's service is %s", ErrWrongCID, c, want)
	}
	return nil
}

// Validate implements go-libp2p-record's Validator.
func (v Validator) Validate(key string, value []byte) error {
	_, err := v.OpenKey(key, value)
	return err
}

// Select implements go-libp2p-record's Validator: the valid record with the
// highest seq wins; on a tie, the earliest in values.
func (v Validator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	for i, val := range values {
		s, err := v.OpenKey(key, val)
		if err != nil {
			continue
		}
		if best < 0 || s.Seq > bestSeq {
			best, bestSeq = i, s.Seq
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("select %s: no valid record among %d", key, len(values))
	}
	return best, nil
}

// Newer returns nil when a record with seq incoming may replace one with
// seq held, for the same key: incoming must be strictly higher. Otherwise it
// returns ErrOlderSeq.
func Newer(held, incoming uint64) error {
	if incoming > held {
		return nil
	}
	return fmt.Errorf("%w: have seq %d, got %d", ErrOlderSeq, held, incoming)
}
