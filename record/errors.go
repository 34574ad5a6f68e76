package record

import "errors"

// Each check a record must pass has its own error, so callers and metrics
// can tell failures apart with errors.Is.
var (
	// ErrTooLarge is returned when a sealed envelope exceeds MaxEnvelopeSize.
	ErrTooLarge = errors.New("record too large")
	// ErrMalformed is returned when the envelope or its payload cannot be decoded.
	ErrMalformed = errors.New("malformed record")
	// ErrBadSignature is returned when the envelope's signature does not verify.
	ErrBadSignature = errors.New("invalid record signature")
	// ErrSignerMismatch is returned when the envelope was signed by a key other
	// than the record's peer.
	ErrSignerMismatch = errors.New("record signer is not the record's peer")
	// ErrPeerMismatch is returned when the peer in the DHT key differs from
	// the record's peer.
	ErrPeerMismatch = errors.New("record peer does not match key")
	// ErrWrongCID is returned when the service CID in the DHT key is not the
	// CID of the record's network and name.
	ErrWrongCID = errors.New("record service does not match key")
	// ErrWrongNetwork is returned when a record belongs to another network.
	ErrWrongNetwork = errors.New("record is for another network")
	// ErrExpired is returned when a record's expires-at has passed.
	ErrExpired = errors.New("record expired")
	// ErrIssuedInFuture is returned when issued-at is more than MaxClockSkew ahead.
	ErrIssuedInFuture = errors.New("record issued in the future")
	// ErrBadTTL is returned when a lifetime (expires-at minus issued-at, or
	// a TTL asked for) is outside [MinTTL, MaxTTL].
	ErrBadTTL = errors.New("record lifetime out of range")
	// ErrBadVersion is returned for a record format version this build does not know.
	ErrBadVersion = errors.New("unsupported record version")
	// ErrBadName is returned for a service name outside [A-Za-z0-9._-]{1,64}.
	ErrBadName = errors.New("invalid service name")
	// ErrBadNetwork is returned for a network name outside [a-z0-9-]{1,32}.
	ErrBadNetwork = errors.New("invalid network name")
	// ErrBadAddr is returned when a record's multiaddr does not parse, or
	// when it carries more than MaxAddrs of them.
	ErrBadAddr = errors.New("invalid record address")
	// ErrBadMetadata is returned when metadata exceeds its count or size limits.
	ErrBadMetadata = errors.New("invalid record metadata")
	// ErrBadKey is returned when a DHT key is not /netget/<cid>/<peer>.
	ErrBadKey = errors.New("invalid record key")
	// ErrOlderSeq is returned when a record would replace one with a higher
	// or equal seq for the same key.
	ErrOlderSeq = errors.New("record seq older than the one held")
	// ErrNotAllowed is returned when a Validator has an AllowList and the
	// record's peer is not on it for the record's service.
	ErrNotAllowed = errors.New("record provider not on the allow-list")
	// ErrBadAllowList is returned by ParseAllowList for an entry that is
	// neither PEERID nor Service=PEERID.
	ErrBadAllowList = errors.New("invalid allow-list entry")
)
