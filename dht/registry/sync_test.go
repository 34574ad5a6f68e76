package registry

import (
	"testing"
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
