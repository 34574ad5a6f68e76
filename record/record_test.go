package record_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

var now = time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)

func newKey(t testing.TB) (crypto.PrivKey, peer.ID) { return recordtest.NewKey(t) }

func goodService(id peer.ID) *record.Service { return recordtest.Valid(id, now) }

func keyFor(t testing.TB, network, name string, id peer.ID) string {
	return recordtest.Key(t, network, name, id)
}

// TestOpenKeyRejects: every bad record is refused with its own error, the
// same with a verified-record cache as without, and the second time too.
func TestOpenKeyRejects(t *testing.T) {
	key, id := newKey(t)
	goodKey := keyFor(t, "development", recordtest.Service, id)
	cases := append(recordtest.Bad(t, key, now),
		recordtest.Case{Name: "bad key", Data: recordtest.SealRaw(t, goodService(id), key), Want: record.ErrBadKey})
	for _, cache := range []record.Cache{nil, newMapCache()} {
		v := record.Validator{Network: "development", Now: func() time.Time { return now }, Cache: cache}
		for _, tt := range cases {
			t.Run(fmt.Sprintf("%s/cache=%v", tt.Name, cache != nil), func(t *testing.T) {
				k := goodKey
				if tt.Want == record.ErrBadKey {
					k = "/ipns/whatever"
				}
				_, err := v.OpenKey(k, tt.Data)
				if !errors.Is(err, tt.Want) {
					t.Fatalf("OpenKey: got %v, want %v", err, tt.Want)
				}
				if err := v.Validate(k, tt.Data); !errors.Is(err, tt.Want) {
					t.Fatalf("Validate: got %v, want %v", err, tt.Want)
				}
				if got := record.Reason(err); got != tt.Want {
					t.Fatalf("Reason: got %v, want %v", got, tt.Want)
				}
			})
		}
	}
}

// mapCache is a record.Cache that counts its hits.
type mapCache struct {
	mu   sync.Mutex
	m    map[[32]byte]*record.Service
	hits int
}

func newMapCache() *mapCache { return &mapCache{m: map[[32]byte]*record.Service{}} }

func (c *mapCache) Get(sum [32]byte) (*record.Service, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[sum]
	if ok {
		c.hits++
	}
	return s, ok
}

func (c *mapCache) Add(sum [32]byte, s *record.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[sum] = s
}

// TestOpenCached: a verified envelope is opened from the cache the second
// time, still refused once expired or on another network, and the record
// returned is the caller's own.
func TestOpenCached(t *testing.T) {
	key, id := newKey(t)
	at := now
	cache := newMapCache()
	v := record.Validator{Network: "development", Now: func() time.Time { return at }, Cache: cache}
	data := recordtest.SealRaw(t, goodService(id), key)
	first, err := v.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	first.Meta["region"] = "changed by the caller"
	second, err := v.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if cache.hits != 1 || second.Meta["region"] != "eu-west" {
		t.Fatalf("second open: %d cache hits, region %q; want 1 hit, %q", cache.hits, second.Meta["region"], "eu-west")
	}
	other := record.Validator{Network: "production", Now: v.Now, Cache: cache}
	if _, err := other.Open(data); !errors.Is(err, record.ErrWrongNetwork) {
		t.Fatalf("open on another network, cached: got %v, want %v", err, record.ErrWrongNetwork)
	}
	at = second.ExpiresAt
	if _, err := v.Open(data); !errors.Is(err, record.ErrExpired) {
		t.Fatalf("open after expiry, cached: got %v, want %v", err, record.ErrExpired)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	key, id := newKey(t)
	v := record.Validator{Network: "development", Now: func() time.Time { return now }}
	in := goodService(id)
	data, err := record.Seal(in, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.OpenKey(keyFor(t, "development", "databaseservice", id), data)
	if err != nil {
		t.Fatalf("OpenKey: %v", err)
	}
	if got.Name != in.Name || got.Seq != in.Seq || got.Meta["region"] != "eu-west" || len(got.Multiaddrs()) != 2 {
		t.Fatalf("round trip: got %+v, want %+v", got, in)
	}
	if !got.ExpiresAt.Equal(in.ExpiresAt) {
		t.Fatalf("expires: got %s, want %s", got.ExpiresAt, in.ExpiresAt)
	}
}

func TestSealRefusesBadRecords(t *testing.T) {
	key, id := newKey(t)
	_, otherID := newKey(t)
	s := goodService(otherID)
	if _, err := record.Seal(s, key); !errors.Is(err, record.ErrSignerMismatch) {
		t.Fatalf("foreign peer: got %v, want %v", err, record.ErrSignerMismatch)
	}
	s = goodService(id)
	s.Name = ""
	if _, err := record.Seal(s, key); !errors.Is(err, record.ErrBadName) {
		t.Fatalf("empty name: got %v, want %v", err, record.ErrBadName)
	}
}

func TestSelectAndNewer(t *testing.T) {
	key, id := newKey(t)
	v := record.Validator{Network: "development", Now: func() time.Time { return now }}
	k := keyFor(t, "development", "DatabaseService", id)
	seal := func(seq uint64) []byte {
		s := goodService(id)
		s.Seq = seq
		b, err := record.Seal(s, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	i, err := v.Select(k, [][]byte{seal(3), []byte("junk"), seal(9), seal(5)})
	if err != nil || i != 2 {
		t.Fatalf("Select: got %d, %v; want 2, nil", i, err)
	}
	if _, err := v.Select(k, [][]byte{[]byte("junk")}); err == nil {
		t.Fatal("Select of only invalid values: got nil error")
	}
	old, cur := goodService(id), goodService(id)
	old.Seq, cur.Seq = 4, 5
	if err := record.Newer(cur.Seq, old.Seq); !errors.Is(err, record.ErrOlderSeq) {
		t.Fatalf("Newer(older): got %v, want %v", err, record.ErrOlderSeq)
	}
	if err := record.Newer(cur.Seq, cur.Seq); !errors.Is(err, record.ErrOlderSeq) {
		t.Fatalf("Newer(same): got %v, want %v", err, record.ErrOlderSeq)
	}
	if err := record.Newer(old.Seq, cur.Seq); err != nil {
		t.Fatalf("Newer(newer): got %v", err)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name, network, service string
		want                   error
	}{
		{"ok", "development", "DatabaseService", nil},
		{"dots dashes underscores", "prod-eu-1", "db.primary_v2-x", nil},
		{"empty name", "development", "", record.ErrBadName},
		{"long name", "development", strings.Repeat("a", 65), record.ErrBadName},
		{"space", "development", "my service", record.ErrBadName},
		{"empty network", "", "DatabaseService", record.ErrBadNetwork},
		{"upper network", "Production", "DatabaseService", record.ErrBadNetwork},
		{"long network", strings.Repeat("n", 33), "DatabaseService", record.ErrBadNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := record.ServiceCID(tt.network, tt.service)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ServiceCID(%q, %q): got %v, want %v", tt.network, tt.service, err, tt.want)
			}
		})
	}
	a, _ := record.ServiceCID("development", "DatabaseService")
	b, _ := record.ServiceCID("development", "databaseservice")
	c, _ := record.ServiceCID("production", "DatabaseService")
	if !a.Equals(b) || a.Equals(c) {
		t.Fatalf("CIDs: case-insensitive %v, per-network %v", a.Equals(b), !a.Equals(c))
	}
	if got := a.Prefix(); got.Version != 1 || got.Codec != 0x55 || got.MhType != 0x12 {
		t.Fatalf("CID prefix: got %+v, want CIDv1 raw sha2-256", got)
	}
}

func TestParseKey(t *testing.T) {
	_, id := newKey(t)
	c, _ := record.ServiceCID("development", "DatabaseService")
	gc, gp, err := record.ParseKey(record.Key(c, id))
	if err != nil || !gc.Equals(c) || gp != id {
		t.Fatalf("ParseKey round trip: got %s %s %v", gc, gp, err)
	}
	for _, bad := range []string{"", "/netget/", "/netget/" + c.String(), "/netget/x/y", "/pk/" + c.String() + "/" + id.String()} {
		if _, _, err := record.ParseKey(bad); !errors.Is(err, record.ErrBadKey) {
			t.Errorf("ParseKey(%q): got %v, want %v", bad, err, record.ErrBadKey)
		}
	}
}

// TestGoldenRecord keeps the wire format stable: testdata/golden.envelope is
// a record sealed by an earlier build; it must still open with the same fields.
// Run with NETGET_UPDATE_GOLDEN=1 to rewrite it (only on a format change).
func TestGoldenRecord(t *testing.T) {
	path := filepath.Join("testdata", "golden.envelope")
	if os.Getenv("NETGET_UPDATE_GOLDEN") == "1" {
		key, id := newKey(t)
		b, err := record.Seal(goodService(id), key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden record (NETGET_UPDATE_GOLDEN=1 makes it): %v", err)
	}
	v := record.Validator{Network: "development", Now: func() time.Time { return now }}
	s, err := v.Open(data)
	if err != nil {
		t.Fatalf("Open golden: %v", err)
	}
	if s.Name != "DatabaseService" || s.Seq != 7 || s.Meta["version"] != "15.4" || len(s.Addrs) != 2 {
		t.Fatalf("golden fields: got %+v", s)
	}
}
