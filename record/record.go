package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	lprecord "github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

// Limits every record must respect.
const (
	// Version is the record format version this build writes and accepts.
	Version = 1
	// MaxEnvelopeSize is the largest sealed envelope, in bytes.
	MaxEnvelopeSize = 4 << 10
	// MaxAddrs is the most multiaddrs a record may carry.
	MaxAddrs = 16
	// MaxMetaPairs is the most metadata pairs a record may carry.
	MaxMetaPairs = 32
	// MaxMetaKeyLen is the longest metadata key, in bytes.
	MaxMetaKeyLen = 64
	// MaxMetaValueLen is the longest metadata value, in bytes.
	MaxMetaValueLen = 512
	// MinTTL is the shortest lifetime between issued-at and expires-at: a
	// record must outlive the round trips that spread it.
	MinTTL = time.Second
	// MaxTTL is the longest lifetime between issued-at and expires-at.
	MaxTTL = 24 * time.Hour
	// MaxClockSkew is how far in the future issued-at may be.
	MaxClockSkew = 5 * time.Minute

	// EnvelopeDomain is the signature domain of service-record envelopes.
	EnvelopeDomain = "netget-service-record"
)

// PayloadType is the envelope payload type of service records.
var payloadType = []byte("/netget/service-record/1")

// Service is the payload of a signed service record: who provides a service
// on which network, how to reach them, and for how long. Its methods let it
// travel in a go-libp2p signed envelope.
type Service struct {
	Version   int               `json:"v"`
	Network   string            `json:"network"`
	Name      string            `json:"name"`
	Peer      peer.ID           `json:"peer"`
	Addrs     []string          `json:"addrs"`
	Meta      map[string]string `json:"meta,omitempty"`
	Seq       uint64            `json:"seq"`
	IssuedAt  time.Time         `json:"issued_at"`
	ExpiresAt time.Time         `json:"expires_at"`
	Withdrawn bool              `json:"withdrawn,omitempty"`
}

var _ lprecord.Record = (*Service)(nil)

// clone returns a copy of s that shares nothing with it.
func (s *Service) clone() *Service {
	c := *s
	c.Addrs = slices.Clone(s.Addrs)
	c.Meta = maps.Clone(s.Meta)
	return &c
}

// Domain implements lprecord.Record.
func (s *Service) Domain() string { return EnvelopeDomain }

// Codec implements lprecord.Record.
func (s *Service) Codec() []byte { return payloadType }

// MarshalRecord implements lprecord.Record.
func (s *Service) MarshalRecord() ([]byte, error) { return json.Marshal(s) }

// UnmarshalRecord implements lprecord.Record. It is strict: unknown fields
// and trailing data are errors.
func (s *Service) UnmarshalRecord(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var out Service
	if err := dec.Decode(&out); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after record")
	}
	*s = out
	return nil
}

// Multiaddrs returns the record's addresses, parsed. Records that passed
// verification always parse; anything that does not is skipped.
func (s *Service) Multiaddrs() []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(s.Addrs))
	for _, a := range s.Addrs {
		if m, err := ma.NewMultiaddr(a); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// Seal checks s's syntax, signs it with key (which must be s.Peer's key) and
// returns the marshalled envelope.
func Seal(s *Service, key crypto.PrivKey) ([]byte, error) {
	if err := checkSyntax(s); err != nil {
		return nil, err
	}
	signer, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if signer != s.Peer {
		return nil, fmt.Errorf("seal: %w: key is %s, record says %s", ErrSignerMismatch, signer, s.Peer)
	}
	env, err := lprecord.Seal(s, key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	data, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxEnvelopeSize)
	}
	return data, nil
}

// checkSyntax holds the checks that do not depend on time, the signer or a key.
func checkSyntax(s *Service) error {
	if s.Version != Version {
		return fmt.Errorf("%w: %d", ErrBadVersion, s.Version)
	}
	if err := ValidateNetwork(s.Network); err != nil {
		return err
	}
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if s.Peer.Validate() != nil {
		return fmt.Errorf("%w: missing peer", ErrMalformed)
	}
	if len(s.Addrs) > MaxAddrs {
		return fmt.Errorf("%w: %d addresses, limit %d", ErrBadAddr, len(s.Addrs), MaxAddrs)
	}
	for _, a := range s.Addrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrBadAddr, a, err)
		}
	}
	if err := ValidateMeta(s.Meta); err != nil {
		return err
	}
	return ValidateTTL(s.ExpiresAt.Sub(s.IssuedAt))
}
