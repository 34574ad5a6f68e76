package store

import (
	"context"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// TestStoreAddrs: the addresses a health check dials are those of the
// provider's newest live record, read from the datastore; a provider whose
// only record is withdrawn or expired, one the store does not hold, and
// the node itself get none.
func TestStoreAddrs(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	v := record.Validator{Network: "development", Now: func() time.Time { return now }}
	s := New(dssync.MutexWrap(ds.NewMapDatastore()), v, DefaultLimits(), everyone{})
	add := func(svc *record.Service, env []byte) {
		t.Helper()
		got, err := v.Open(env)
		if err != nil {
			t.Fatal(err)
		}
		c, err := record.ServiceCID(got.Network, got.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Add(ctx, c, got, env, Source{}); err != nil {
			t.Fatal(err)
		}
	}
	key, multi := recordtest.NewKey(t)
	for i, name := range []string{"Old", "New", "Gone"} {
		svc := recordtest.Valid(multi, now)
		svc.Name, svc.Seq = name, uint64(10+i)
		svc.Addrs = []string{"/ip4/10.0.0." + string(rune('1'+i)) + "/tcp/4001"}
		svc.Withdrawn = name == "Gone"
		add(svc, recordtest.SealRaw(t, svc, key))
	}
	wkey, withdrawn := recordtest.NewKey(t)
	w := recordtest.Valid(withdrawn, now)
	w.Withdrawn = true
	add(w, recordtest.SealRaw(t, w, wkey))
	ekey, expired := recordtest.NewKey(t)
	e := recordtest.Valid(expired, now)
	e.ExpiresAt = now.Add(time.Minute)
	add(e, recordtest.SealRaw(t, e, ekey))
	skey, self := recordtest.NewKey(t)
	me := recordtest.Valid(self, now)
	add(me, recordtest.SealRaw(t, me, skey))
	_, stranger := recordtest.NewKey(t)

	got := s.Addrs(ctx, self, []peer.ID{multi, withdrawn, expired, self, stranger}, now.Add(2*time.Minute))
	want := map[peer.ID][]string{multi: {"/ip4/10.0.0.2/tcp/4001"}}
	if len(got) != len(want) || !slices.Equal(got[multi], want[multi]) {
		t.Fatalf("Addrs = %v, want %v", got, want)
	}
}
