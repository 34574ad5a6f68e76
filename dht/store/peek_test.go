package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"google.golang.org/protobuf/proto"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// peekSeeds are payloads as MarshalRecord writes them, and near misses.
func peekSeeds(t testing.TB) [][]byte {
	_, id := recordtest.NewKey(t)
	s := recordtest.Valid(id, time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC))
	s.Meta = map[string]string{"region": "eu-west", "engine": "postgres"}
	plain, err := s.MarshalRecord()
	if err != nil {
		t.Fatal(err)
	}
	s.Withdrawn, s.Addrs, s.Meta, s.Seq = true, nil, nil, 1<<63
	tomb, err := s.MarshalRecord()
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{plain, tomb,
		[]byte(`{}`),
		[]byte(`{"network":"development","seq":01}`),
		[]byte(`{"network":"dev\u0065lopment","seq":1}`),
		[]byte(`{"Network":"development","network":"x"}`),
		[]byte(`{"v":-0,"seq":18446744073709551616}`),
		[]byte(`{"v":1.5,"seq":2}`),
		[]byte(`{"expires_at":"2026-12-01T12:00:00Z","withdrawn":truex}`),
		[]byte(`{"expires_at":null,"addrs":null,"meta":{"a":"b","c":"d"}} `),
		[]byte(`{"addrs":["/ip4/1.2.3.4/tcp/1",],"seq":3}`),
		[]byte(`{"meta":{"a":"é"},"seq":3}`),
	}
}

// TestDecodePeekMatchesJSON: the hand decoder takes the payloads this node
// writes (real records, tombstones) and yields what encoding/json yields.
func TestDecodePeekMatchesJSON(t *testing.T) {
	for i, b := range peekSeeds(t)[:2] {
		var fast, slow payloadPeek
		if !peekFast(b, &fast) {
			t.Fatalf("seed %d: the hand decoder refused a payload MarshalRecord wrote: %s", i, b)
		}
		if err := json.Unmarshal(b, &slow); err != nil || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("seed %d: hand %+v, encoding/json %+v (%v)", i, fast, slow, err)
		}
	}
}

// FuzzDecodePeek: whatever the hand decoder accepts, encoding/json accepts
// too and decodes to the same fields; decodePeek never panics.
func FuzzDecodePeek(f *testing.F) {
	for _, b := range peekSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow, either payloadPeek
		_ = decodePeek(b, &either)
		if !peekFast(b, &fast) {
			return
		}
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("hand decoder accepted %q, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: hand %+v, encoding/json %+v", b, fast, slow)
		}
	})
}

// BenchmarkStartupPeek measures what start-up (Load) spends on one stored
// record before indexing it, on the same 1,000 records of one service as
// the datastore holds them: the peek it does now (protowire, scalar
// fields, peer ID decoded once, service CID once a run) against the
// full decode it did before (proto.Unmarshal, lprecord.UnmarshalEnvelope,
// record.Service.UnmarshalRecord, ParseKey, ServiceCID every record),
// in the same run. It reports ns/record of each and their ratio.
func BenchmarkStartupPeek(b *testing.B) {
	now := time.Now()
	type entry struct{ k, v []byte }
	var entries []entry
	for range 1000 {
		key, id := recordtest.NewKey(b)
		s := recordtest.Valid(id, now)
		s.Meta = map[string]string{"region": "eu-west", "engine": "postgres"}
		env := recordtest.SealRaw(b, s, key)
		c, err := record.ServiceCID(s.Network, s.Name)
		if err != nil {
			b.Fatal(err)
		}
		dk := record.Key(c, id)
		v, err := proto.Marshal(&recpb.Record{Key: []byte(dk), Value: env, TimeReceived: now.Format(time.RFC3339Nano)})
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, entry{[]byte(dsKey(dk).String()), v})
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	run := func(peek func(k, v []byte) error) float64 {
		start := time.Now()
		for i := range b.N {
			e := entries[i%len(entries)]
			if err := peek(e.k, e.v); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	b.ResetTimer()
	pk := peeker{network: "development", now: now}
	fresh := run(func(k, v []byte) error { _, err := pk.peek(k, v); return err })
	full := run(func(k, v []byte) error { return fullPeek("development", k, v, now) })
	b.ReportMetric(fresh, "ns/record")
	b.ReportMetric(full, "full-decode-ns/record")
	b.ReportMetric(fresh/full, "peek/full")
}

// fullPeek is the start-up decode of a stored record before the peek:
// every layer decoded whole, as record.Validator does bar the signature.
func fullPeek(network string, k, v []byte, now time.Time) error {
	key, ok := dhtKey(ds.RawKey(string(k)))
	var rec recpb.Record
	if !ok || proto.Unmarshal(v, &rec) != nil || string(rec.GetKey()) != key {
		return record.ErrMalformed
	}
	c, p, err := record.ParseKey(key)
	if err != nil {
		return err
	}
	svc, err := payloadOf(rec.GetValue())
	if err != nil {
		return err
	}
	want, err := record.ServiceCID(svc.Network, svc.Name)
	switch {
	case err != nil || svc.Network != network || svc.Peer != p || !want.Equals(c):
		return record.ErrMalformed
	case !now.Before(svc.ExpiresAt):
		return record.ErrExpired
	}
	_ = sha256.Sum256(rec.GetValue())
	return nil
}
