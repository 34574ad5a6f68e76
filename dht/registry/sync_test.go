package registry

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/p2p/p2ptest"
)

// FuzzDecodeSyncRequest: the sync-protocol decoder never panics, and what
// it accepts is a bare digest, a pull whose range is ordered and whose
// have list is bounded, or a forward of 1 to MaxForward records.
func FuzzDecodeSyncRequest(f *testing.F) {
	f.Add([]byte(`{"type":"digest"}`))
	f.Add([]byte(`{"type":"pull","from":1,"last":72057594037927935,"have":"AAAAAAAAAAEAAAAAAAAAAg=="}`))
	f.Add([]byte(`{"type":"pull","from":9,"last":1}`))
	f.Add([]byte(`{"type":"pull","have":"AAE="}`))
	f.Add([]byte(`{"type":"forward","records":["CgQIARIg"]}`))
	f.Add([]byte(`{"type":"forward","records":[]}`))
	f.Add([]byte(`{"type":"digest","from":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, have, err := decodeSyncRequest(b)
		if err != nil {
			return
		}
		switch req.Type {
		case msgDigest:
			if req.Have != nil || req.Records != nil || req.From != 0 || req.Last != 0 {
				t.Fatalf("accepted digest with fields: %+v", req)
			}
		case msgPull:
			if req.Last < req.From || len(have) > MaxHave || len(have)*entrySize != len(req.Have) {
				t.Fatalf("accepted pull %+v with %d entries", req, len(have))
			}
		case msgForward:
			if len(req.Records) == 0 || len(req.Records) > MaxForward {
				t.Fatalf("accepted forward of %d records", len(req.Records))
			}
		default:
			t.Fatalf("accepted unknown type %q", req.Type)
		}
	})
}

// TestDigestRoundTrip: a digest survives its encoding, and a record's seq
// changes its bucket's hash.
func TestDigestRoundTrip(t *testing.T) {
	var d Digest
	k := KeyHash([]byte("cid"), []byte("peer"))
	d.Add(Entry{Key: k, Seq: 1})
	got, err := decodeDigest(encodeDigest(&d))
	if err != nil || *got != d {
		t.Fatalf("decode(encode(d)) = %v, %v; want the same digest", got, err)
	}
	var newer Digest
	newer.Add(Entry{Key: k, Seq: 2})
	if b := BucketOf(k); newer[b] == d[b] || newer[b].Count != 1 {
		t.Fatalf("bucket %d: seq 1 %+v, seq 2 %+v; want the same count and another hash", b, d[b], newer[b])
	}
	if from, last := BucketRange(BucketOf(k)); k < from || k > last {
		t.Fatalf("key %x outside its bucket's range [%x, %x]", k, from, last)
	}
	if _, err := decodeDigest(make([]byte, 5)); err == nil {
		t.Fatal("a 5-byte digest decoded")
	}
}

// bigReplica serves budget-sized pulls of junk envelopes (the requester
// would refuse them; this test is about the bytes the responder sends).
type bigReplica struct{}

func (bigReplica) Digest() *Digest { return &Digest{} }

func (bigReplica) Pull(from, last uint64, have []Entry, budget int) ([][]byte, uint64, bool) {
	var out [][]byte
	for n := 0; n+4096 <= budget; n += 4096 {
		out = append(out, make([]byte, 4096))
	}
	return out, 0, false
}

func (bigReplica) Forwarded(peer.ID, [][]byte) int { return 0 }

// TestSyncPullByteRate: a peer that pulls everything again and again gets
// its burst, then nothing more than the byte rate allows: a pull that
// would need more tokens than the rate refills within the exchange's
// deadline resets the stream.
func TestSyncPullByteRate(t *testing.T) {
	hosts := p2ptest.NewHosts(t, 2)
	server, puller := hosts[0], hosts[1]
	requests := NewLimiter(1000, 1000)
	bytes := NewLimiter(1, PullBudget) // one pull's burst, then a byte a second
	server.SetStreamHandler(SyncProtocol("development"), NewSyncHandler(bigReplica{}, requests, bytes, nil).HandleStream)
	p2ptest.Connect(t, puller, server)
	cl := NewSyncClient(puller, "development")
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := cl.Pull(ctx, server.ID(), 0, math.MaxUint64, nil)
	if err != nil || len(got.Records) == 0 {
		t.Fatalf("first pull: %d records, %v; want a full pull within the burst", len(got.Records), err)
	}
	if got, err := cl.Pull(ctx, server.ID(), 0, math.MaxUint64, nil); err == nil {
		t.Fatalf("second pull right after: %d records; want it refused by the byte rate", len(got.Records))
	}
	// Another peer has a bucket of its own.
	other := p2ptest.NewHost(t)
	p2ptest.Connect(t, other, server)
	cl2 := NewSyncClient(other, "development")
	t.Cleanup(cl2.Close)
	if got, err := cl2.Pull(ctx, server.ID(), 0, math.MaxUint64, nil); err != nil || len(got.Records) == 0 {
		t.Fatalf("another peer's first pull: %d records, %v; want its own burst", len(got.Records), err)
	}
}
