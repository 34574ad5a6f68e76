package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// The sync protocol, /netget/<network>/sync/1.0.0, is how the registries
// of a network keep each other's stores in step, without a leader: each
// forwards the records it takes to the others (forward), and each
// periodically pulls what it lacks from each other one (digest, then pull
// for the key ranges whose digests differ). A registry announces that it
// syncs by serving the protocol: identify tells its peers. Messages are
// framed as on the registry protocol (uvarint length, strict JSON, at most
// MaxMessageSize bytes), one request and one response at a time, several
// per stream.
//
//	→ {"type":"digest"}
//	← {"digest":"AAAAAwAAAA…"}                  (Buckets × 12 bytes, base64)
//
//	→ {"type":"pull","from":0,"last":72057594037927935,"have":"q2p…"}
//	← {"records":["CiQIARIg…",…],"more":true,"next":3602879701896397}
//
//	→ {"type":"forward","records":["CiQIARIg…"]}
//	← {"refused":0}
//
// The digest splits the key space (KeyHash of each record's CID and peer) into
// Buckets ranges by the hash's first byte; each bucket is a record count
// (uint32) and the XOR of EntryHash over its records (uint64), big-endian.
// A pull asks for the records the responder holds in the key-hash range
// [from, last] that the requester lacks or holds an older seq of; have
// lists what the requester holds there (16 bytes per record: KeyHash, then
// seq, big-endian; at most MaxHave). The response carries at most
// PullBudget bytes of envelopes in key-hash order; more says it stopped
// early, and next is where the requester resumes. A forward carries at most
// MaxForward records the sender took just now; refused counts those the
// receiver would not store. Every record is verified by its receiver.
const (
	// Buckets is how many key ranges a digest summarises.
	Buckets = 256
	// MaxHave bounds the records one pull's have list names.
	MaxHave = 8192
	// PullBudget bounds the envelope bytes of one pull response: in base64
	// with their JSON, well inside MaxMessageSize.
	PullBudget = 160 << 10
	// MaxForward bounds the records of one forward.
	MaxForward = 64

	// SyncServiceName is the resource-manager service of the sync protocol.
	SyncServiceName = "netget.sync"

	msgDigest  = "digest"
	msgPull    = "pull"
	msgForward = "forward"

	bucketSize = 12 // count uint32 + hash uint64
	entrySize  = 16 // key hash uint64 + seq uint64
)

// SyncProtocol returns the sync protocol ID of network.
func SyncProtocol(network string) protocol.ID {
	return protocol.ID("/netget/" + network + "/sync/1.0.0")
}

// Entry is one record in a sync exchange: the KeyHash of its DHT key and
// its seq.
type Entry struct {
	Key uint64
	Seq uint64
}

// Bucket summarises the records of one key range.
type Bucket struct {
	Count uint32
	Hash  uint64
}

// Digest summarises every record a registry holds, Buckets ranges of the
// key-hash space.
type Digest [Buckets]Bucket

// KeyHash maps a record into the key space digests and pulls range over:
// the first 8 bytes of the SHA-256 of its service CID's bytes followed by
// its provider's peer ID bytes (the binary form of its DHT key
// /netget/<cid>/<peer>).
func KeyHash(service, provider []byte) uint64 {
	h := sha256.New()
	h.Write(service)
	h.Write(provider)
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0])[:8])
}

// BucketOf returns the digest bucket of key hash k.
func BucketOf(k uint64) int { return int(k >> 56) }

// BucketRange returns the key-hash range [from, last] of bucket b.
func BucketRange(b int) (from, last uint64) {
	from = uint64(b) << 56
	return from, from | (1<<56 - 1)
}

// EntryHash is what one record adds (XOR) to its bucket's hash: a mix of
// its key hash and seq (splitmix64), so a newer seq changes the bucket.
func EntryHash(e Entry) uint64 {
	return mix(e.Key ^ mix(e.Seq+0x9e3779b97f4a7c15))
}

func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Add folds e into d.
func (d *Digest) Add(e Entry) {
	b := &d[BucketOf(e.Key)]
	b.Count++
	b.Hash ^= EntryHash(e)
}

// syncRequest is a sync-protocol request. Fields not used by Type are
// empty.
type syncRequest struct {
	Type    string   `json:"type"`
	From    uint64   `json:"from,omitempty"`
	Last    uint64   `json:"last,omitempty"`
	Have    []byte   `json:"have,omitempty"`
	Records [][]byte `json:"records,omitempty"`
}

// syncResponse answers a sync request.
type syncResponse struct {
	Digest  []byte   `json:"digest,omitempty"`
	Records [][]byte `json:"records,omitempty"`
	More    bool     `json:"more,omitempty"`
	Next    uint64   `json:"next,omitempty"`
	Refused int      `json:"refused,omitempty"`
}

// decodeSyncRequest strictly decodes and checks one sync request.
func decodeSyncRequest(b []byte) (syncRequest, []Entry, error) {
	var req syncRequest
	if err := decodeStrict(b, &req); err != nil {
		return req, nil, err
	}
	bad := func(why string) (syncRequest, []Entry, error) {
		return req, nil, fmt.Errorf("%w: %s", ErrBadMessage, why)
	}
	switch req.Type {
	case msgDigest:
		if req.From != 0 || req.Last != 0 || req.Have != nil || req.Records != nil {
			return bad("digest takes no fields")
		}
		return req, nil, nil
	case msgPull:
		if req.Records != nil || req.Last < req.From {
			return bad("pull takes a range from ≤ last and a have list")
		}
		have, err := decodeEntries(req.Have)
		if err != nil {
			return req, nil, err
		}
		return req, have, nil
	case msgForward:
		if len(req.Records) == 0 || len(req.Records) > MaxForward || req.From != 0 || req.Last != 0 || req.Have != nil {
			return bad(fmt.Sprintf("forward takes 1 to %d records", MaxForward))
		}
		return req, nil, nil
	}
	return bad(fmt.Sprintf("unknown type %.32q", req.Type))
}

// EncodeEntries packs es for a pull's have list.
func encodeEntries(es []Entry) []byte {
	b := make([]byte, 0, len(es)*entrySize)
	for _, e := range es {
		b = binary.BigEndian.AppendUint64(b, e.Key)
		b = binary.BigEndian.AppendUint64(b, e.Seq)
	}
	return b
}

func decodeEntries(b []byte) ([]Entry, error) {
	if len(b)%entrySize != 0 || len(b)/entrySize > MaxHave {
		return nil, fmt.Errorf("%w: have list of %d bytes: want a multiple of %d, at most %d entries",
			ErrBadMessage, len(b), entrySize, MaxHave)
	}
	es := make([]Entry, len(b)/entrySize)
	for i := range es {
		es[i] = Entry{Key: binary.BigEndian.Uint64(b[i*entrySize:]), Seq: binary.BigEndian.Uint64(b[i*entrySize+8:])}
	}
	return es, nil
}

func encodeDigest(d *Digest) []byte {
	b := make([]byte, 0, Buckets*bucketSize)
	for _, bk := range d {
		b = binary.BigEndian.AppendUint32(b, bk.Count)
		b = binary.BigEndian.AppendUint64(b, bk.Hash)
	}
	return b
}

func decodeDigest(b []byte) (*Digest, error) {
	if len(b) != Buckets*bucketSize {
		return nil, fmt.Errorf("%w: digest of %d bytes, want %d", ErrBadMessage, len(b), Buckets*bucketSize)
	}
	var d Digest
	for i := range d {
		d[i] = Bucket{Count: binary.BigEndian.Uint32(b[i*bucketSize:]), Hash: binary.BigEndian.Uint64(b[i*bucketSize+4:])}
	}
	return &d, nil
}
