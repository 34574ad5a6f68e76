package dht_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// hotRegistry starts a registry holding records of providers fresh
// providers of service name, and returns it with the providers' IDs.
func hotRegistry(t *testing.T, name string, providers int) (*dht.Node, cid.Cid, []peer.ID) {
	t.Helper()
	reg := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	now := time.Now()
	envs := make([][]byte, providers)
	ids := make([]peer.ID, providers)
	for i := range envs {
		key, id := recordtest.NewKey(t)
		s := recordtest.Valid(id, now)
		s.Name = name
		envs[i], ids[i] = recordtest.SealRaw(t, s, key), id
	}
	if err := dht.Load(testCtx(t), reg, envs); err != nil {
		t.Fatal(err)
	}
	c, err := record.ServiceCID("development", name)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return reg, c, ids
}

// TestRegistryListPagesCoverService: a client pages through a service of
// 1,000 providers on a registry over the registry protocol (real hosts on
// 127.0.0.1), with pages of 100, of the registry's page size and of five
// records: every provider is returned exactly once, in peer-ID order, each
// record verifies.
func TestRegistryListPagesCoverService(t *testing.T) {
	reg, c, want := hotRegistry(t, "PagedService", 1000)
	h := p2ptest.NewHost(t)
	p2ptest.Connect(t, h, reg.Host())
	cl := registry.NewClient(h, registry.Protocol("development"))
	t.Cleanup(cl.Close)
	v := record.Validator{Network: "development"}
	for _, limit := range []int{100, 0, 5} { // 200 pages of 5: within the request burst
		envs, err := cl.ListAll(testCtx(t), reg.Host().ID(), c, limit)
		if err != nil {
			t.Fatalf("pages of %d: %v", limit, err)
		}
		got := make([]peer.ID, len(envs))
		for i, env := range envs {
			svc, err := v.OpenFor(c, env)
			if err != nil {
				t.Fatalf("pages of %d: record %d does not verify: %v", limit, i, err)
			}
			got[i] = svc.Peer
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages of %d: %d records (%d distinct), want the %d providers once each in peer-ID order",
				limit, len(got), len(slices.Compact(slices.Clone(got))), len(want))
		}
	}
	first, next, err := cl.ListPage(testCtx(t), reg.Host().ID(), c, registry.FirstPage, 0)
	if err != nil || len(first) != registry.DefaultPageLimit || next == "" {
		t.Fatalf("a first page of the default size: %d records, next %q, %v; want %d and a next cursor", len(first), next, err, registry.DefaultPageLimit)
	}
}

// TestRegistryListPageSizeConfig: Config.ListPage bounds a page, and a
// page size out of 1..MaxPageLimit is refused with a clear error.
func TestRegistryListPageSizeConfig(t *testing.T) {
	for _, bad := range []int{0, -1, registry.MaxPageLimit + 1, 1 << 30} {
		cfg := dht.DefaultConfig("development")
		cfg.ListPage = bad
		if err := cfg.Validate(); !errors.Is(err, dht.ErrBadConfig) || !strings.Contains(err.Error(), "list page size") {
			t.Fatalf("ListPage %d: Validate = %v, want ErrBadConfig naming the list page size", bad, err)
		}
	}
	reg := dhttest.NewNode(t, "development", dht.ModeServer, func(c *dht.Config) { c.ListPage = 7 })
	now := time.Now()
	var envs [][]byte
	for range 20 {
		key, id := recordtest.NewKey(t)
		s := recordtest.Valid(id, now)
		s.Name = "SmallPages"
		envs = append(envs, recordtest.SealRaw(t, s, key))
	}
	if err := dht.Load(testCtx(t), reg, envs); err != nil {
		t.Fatal(err)
	}
	c, _ := record.ServiceCID("development", "SmallPages")
	h := p2ptest.NewHost(t)
	p2ptest.Connect(t, h, reg.Host())
	cl := registry.NewClient(h, registry.Protocol("development"))
	t.Cleanup(cl.Close)
	page, next, err := cl.ListPage(testCtx(t), reg.Host().ID(), c, registry.FirstPage, 500)
	if err != nil || len(page) != 7 || next == "" {
		t.Fatalf("asking 500 of a node whose page size is 7: %d records, next %q, %v; want 7 and a cursor", len(page), next, err)
	}
	all, err := cl.ListAll(testCtx(t), reg.Host().ID(), c, 0)
	if err != nil || len(all) != 20 {
		t.Fatalf("ListAll in pages of 7: %d records, %v; want 20", len(all), err)
	}
}

// streamExchange sends one registry-protocol request as raw JSON on s and
// returns the response's fields.
func streamExchange(t *testing.T, s network.Stream, req string) map[string]json.RawMessage {
	t.Helper()
	if err := msgio.NewVarintWriter(s).WriteMsg([]byte(req)); err != nil {
		t.Fatalf("send %s: %v", req, err)
	}
	b, err := msgio.NewVarintReaderSize(s, registry.MaxMessageSize).ReadMsg()
	if err != nil {
		t.Fatalf("answer to %s: %v", req, err)
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("answer to %s: %v", req, err)
	}
	return resp
}

// TestRegistryListWireCompatAndBadCursor, on the wire as an older
// requester or an attacker writes it: a list without a cursor gets the
// first (best) MaxListLimit records and no "next" field (older requesters
// refuse unknown fields); a bad cursor, a cursor far too long and a
// negative limit each get an error starting "bad request", and the same
// stream then still answers a good request.
func TestRegistryListWireCompatAndBadCursor(t *testing.T) {
	reg, c, _ := hotRegistry(t, "WireService", 50)
	h := p2ptest.NewHost(t)
	p2ptest.Connect(t, h, reg.Host())
	s, err := h.NewStream(testCtx(t), reg.Host().ID(), registry.Protocol("development"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	old := streamExchange(t, s, `{"type":"list","cid":"`+c.String()+`","limit":32}`)
	var recs [][]byte
	if err := json.Unmarshal(old["records"], &recs); err != nil || len(recs) != registry.MaxListLimit {
		t.Fatalf("old list: %d records (%v), want %d", len(recs), err, registry.MaxListLimit)
	}
	if _, ok := old["next"]; ok || len(old) != 1 {
		t.Fatalf("old list answered fields %v, want only records", keys(old))
	}
	for _, bad := range []string{
		`{"type":"list","cid":"` + c.String() + `","cursor":"12D3"}`,
		`{"type":"list","cid":"` + c.String() + `","cursor":"` + strings.Repeat("1", 10000) + `"}`,
		`{"type":"list","cid":"` + c.String() + `","cursor":"first","limit":-5}`,
	} {
		resp := streamExchange(t, s, bad)
		var msg string
		if err := json.Unmarshal(resp["error"], &msg); err != nil || !strings.HasPrefix(msg, "bad request") || len(msg) > 300 {
			t.Fatalf("%.120s: answered %v, want a short error starting \"bad request\"", bad, resp)
		}
		if _, ok := resp["records"]; ok {
			t.Fatalf("%.120s: answered records with the error", bad)
		}
	}
	page := streamExchange(t, s, `{"type":"list","cid":"`+c.String()+`","cursor":"first","limit":20}`)
	if err := json.Unmarshal(page["records"], &recs); err != nil || len(recs) != 20 || page["next"] == nil {
		t.Fatalf("after the bad requests, a page of 20 on the same stream: %d records, fields %v", len(recs), keys(page))
	}
	cl := registry.NewClient(h, registry.Protocol("development"))
	t.Cleanup(cl.Close)
	if _, _, err := cl.ListPage(testCtx(t), reg.Host().ID(), c, "not-a-cursor", 10); !errors.Is(err, registry.ErrRefused) || !strings.Contains(err.Error(), "bad request") {
		t.Fatalf("client with a bad cursor: %v, want ErrRefused saying bad request", err)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
