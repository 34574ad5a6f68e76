package record

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

const (
	// Namespace is the DHT value-store namespace of service records.
	Namespace = "netget"
	// DefaultNetwork is the network a node joins when none is given.
	DefaultNetwork = "development"
	// MaxNetworkLen is the longest network name.
	MaxNetworkLen = 32
	// MaxNameLen is the longest service name.
	MaxNameLen = 64
)

// ValidateNetwork reports whether s is a network name: [a-z0-9-]{1,32}.
func ValidateNetwork(s string) error {
	if len(s) == 0 || len(s) > MaxNetworkLen {
		return fmt.Errorf("%w: %q: want 1-%d characters", ErrBadNetwork, s, MaxNetworkLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: %q: only a-z, 0-9 and '-' are allowed", ErrBadNetwork, s)
		}
	}
	return nil
}

// ValidateName reports whether s is a service name: [A-Za-z0-9._-]{1,64}.
func ValidateName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %q: want 1-%d characters", ErrBadName, s, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", ErrBadName, s)
		}
	}
	return nil
}

// ValidateTTL reports whether ttl is a record lifetime: between MinTTL
// and MaxTTL (1s to 24h). Every layer that takes a TTL calls it: the CLI,
// the daemon's control API, dht.Publish, and the validator (expires-at
// minus issued-at), so one rule holds everywhere.
func ValidateTTL(ttl time.Duration) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("%w: ttl %s: want between %s and %s", ErrBadTTL, ttl, MinTTL, MaxTTL)
	}
	return nil
}

// ValidateMeta reports whether meta fits a record: at most MaxMetaPairs
// pairs, keys of 1-MaxMetaKeyLen bytes, values of at most MaxMetaValueLen,
// and reserved keys (ReservedMetaPrefix) known, with a valid value.
// The error names the first bad key in sorted order.
func ValidateMeta(meta map[string]string) error {
	if len(meta) > MaxMetaPairs {
		return fmt.Errorf("%w: %d pairs, at most %d", ErrBadMetadata, len(meta), MaxMetaPairs)
	}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if len(k) == 0 || len(k) > MaxMetaKeyLen {
			return fmt.Errorf("%w: key %.70q: want 1-%d bytes", ErrBadMetadata, k, MaxMetaKeyLen)
		}
		if v := meta[k]; len(v) > MaxMetaValueLen {
			return fmt.Errorf("%w: value of %q: %d bytes, at most %d", ErrBadMetadata, k, len(v), MaxMetaValueLen)
		}
		if err := validateReserved(k, meta[k]); err != nil {
			return err
		}
	}
	return nil
}

// ServiceCID returns the key providers announce for a service: a CIDv1, raw
// codec, of the sha2-256 of "netget:<network>:<lowercased name>".
func ServiceCID(network, name string) (cid.Cid, error) {
	if err := ValidateNetwork(network); err != nil {
		return cid.Undef, err
	}
	if err := ValidateName(name); err != nil {
		return cid.Undef, err
	}
	sum, err := mh.Sum([]byte("netget:"+network+":"+strings.ToLower(name)), mh.SHA2_256, -1)
	if err != nil {
		return cid.Undef, fmt.Errorf("hash service name: %w", err)
	}
	return cid.NewCidV1(cid.Raw, sum), nil
}

// Key returns the DHT value-store key of p's record for service c:
// "/netget/<cid>/<peer>".
func Key(c cid.Cid, p peer.ID) string {
	return "/" + Namespace + "/" + c.String() + "/" + p.String()
}

// ParseKey splits a key made by Key into its service CID and peer.
func ParseKey(key string) (cid.Cid, peer.ID, error) {
	rest, ok := strings.CutPrefix(key, "/"+Namespace+"/")
	if !ok {
		return cid.Undef, "", fmt.Errorf("%w: %q: want /%s/<cid>/<peer>", ErrBadKey, key, Namespace)
	}
	cs, ps, ok := strings.Cut(rest, "/")
	if !ok {
		return cid.Undef, "", fmt.Errorf("%w: %q: want /%s/<cid>/<peer>", ErrBadKey, key, Namespace)
	}
	c, err := cid.Decode(cs)
	if err != nil {
		return cid.Undef, "", fmt.Errorf("%w: cid: %w", ErrBadKey, err)
	}
	p, err := peer.Decode(ps)
	if err != nil {
		return cid.Undef, "", fmt.Errorf("%w: peer: %w", ErrBadKey, err)
	}
	return c, p, nil
}
