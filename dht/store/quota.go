package store

import (
	"fmt"
	"net/netip"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/netget/netget-peer/record"
)

// Limits bounds a node's record store, per signing key, per source
// and in bytes, so that no one peer can fill it. A zero field takes its
// default. Every write is checked against them in one place
// (Store.admitLocked), whatever path brought the record; records loaded
// from the datastore at start-up too.
type Limits struct {
	// PerKey is the most records one signing key (a provider: the signer
	// is the record's peer) may have in the store, over all services
	// (default 64). Over it: ErrKeyQuota.
	PerKey int
	// PerSource is the most records the store holds that were pushed from
	// one source, the address prefix of the connection that delivered them
	// (default 1024). Over it: ErrSourceQuota. Records a node publishes
	// itself, loads at start-up or gets by a DHT PUT_VALUE (kad-dht does
	// not tell the datastore who sent it) have no source; PerKey and Bytes
	// still bound them.
	PerSource int
	// SourceBitsV4 and SourceBitsV6 are the prefix lengths that make one
	// source (default 24 and 48: one site's allocation). A loopback
	// address is a source of its own (/32, /128), so nodes on 127.0.0.1,
	// 127.0.0.2, … count apart, as tests and local setups need; a
	// connection without an IP address counts as one source.
	SourceBitsV4, SourceBitsV6 int
	// PerService is the most providers one service is indexed for
	// (default MaxPerService). Over it: ErrStoreFull.
	PerService int
	// Bytes is the store's budget (default 256 MiB: about 250,000 records
	// of a typical 500-byte envelope, 56,000 of the largest): each record
	// costs its envelope's size (in the datastore) plus RecordOverhead
	// (its index entry in memory). Over it: ErrStoreFull.
	Bytes int64
}

// RecordOverhead is what one record costs in the bytes budget beside its
// envelope: its index entry in memory (Limits.Bytes; measured at
// 630-720 bytes a record of two addresses by BenchmarkRegistryRestart).
const RecordOverhead = 640

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{PerKey: 64, PerSource: 1024, SourceBitsV4: 24, SourceBitsV6: 48,
		PerService: MaxPerService, Bytes: 256 << 20}
}

// withDefaults fills in zero fields.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.PerKey == 0 {
		l.PerKey = d.PerKey
	}
	if l.PerSource == 0 {
		l.PerSource = d.PerSource
	}
	if l.SourceBitsV4 == 0 {
		l.SourceBitsV4 = d.SourceBitsV4
	}
	if l.SourceBitsV6 == 0 {
		l.SourceBitsV6 = d.SourceBitsV6
	}
	if l.PerService == 0 {
		l.PerService = d.PerService
	}
	if l.Bytes == 0 {
		l.Bytes = d.Bytes
	}
	return l
}

// Validate reports limits no store can keep: a negative field, a prefix
// longer than the address, a bytes budget below one record (ErrBadLimits).
func (l Limits) Validate() error {
	if l.PerKey < 0 || l.PerSource < 0 || l.PerService < 0 || l.Bytes < 0 ||
		l.SourceBitsV4 < 0 || l.SourceBitsV4 > 32 || l.SourceBitsV6 < 0 || l.SourceBitsV6 > 128 {
		return fmt.Errorf("%w: must not be negative, source bits at most 32 (IPv4) and 128 (IPv6)", ErrBadLimits)
	}
	if l.Bytes > 0 && l.Bytes < record.MaxEnvelopeSize+RecordOverhead {
		return fmt.Errorf("%w: bytes budget %d is below one record (%d)", ErrBadLimits,
			l.Bytes, record.MaxEnvelopeSize+RecordOverhead)
	}
	return nil
}

// Source is where a record came from: the address prefix of the
// connection that delivered it (Store.SourceOf). The zero value is no
// source: a record the node publishes itself, loads or gets by a DHT
// PUT_VALUE.
type Source struct{ p netip.Prefix }

// sourceOf returns the source of a record delivered over a connection from
// remote address a.
func (l Limits) sourceOf(a ma.Multiaddr) Source {
	noIP := netip.PrefixFrom(netip.IPv6Unspecified(), 0) // one source for every connection without an IP
	ip, err := manet.ToIP(a)
	if err != nil {
		return Source{noIP}
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return Source{noIP}
	}
	addr = addr.Unmap()
	bits := l.SourceBitsV6
	switch {
	case addr.IsLoopback():
		bits = addr.BitLen()
	case addr.Is4():
		bits = l.SourceBitsV4
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return Source{noIP}
	}
	return Source{p}
}

func (s Source) valid() bool { return s.p.IsValid() }

// SourceOf returns the source of a record delivered over a connection from
// remote address a, under the store's limits (Limits.PerSource).
func (s *Store) SourceOf(a ma.Multiaddr) Source { return s.limits.sourceOf(a) }

// charge is what a record of env bytes costs in the bytes budget.
func charge(envLen int) int64 { return int64(envLen) + RecordOverhead }

// admitLocked decides whether a record of peer p for service c, of cost
// bytes, from src, may enter the store: a higher seq than the one held
// (record.ErrOlderSeq), or room for a new one under every quota. When the
// service or the bytes budget is full it names the records to evict to
// make room (never-checked or unhealthy providers', when the store may
// evict), or refuses with ErrStoreFull. s.mu must be held.
func (s *Store) admitLocked(c cid.Cid, p peer.ID, seq uint64, cost int64, src Source) ([]victim, error) {
	cur, replacing := s.bySvc[c][p]
	if replacing {
		if err := record.Newer(cur.seq, seq); err != nil {
			return nil, err
		}
	}
	if !replacing && len(s.byPeer[p]) >= s.limits.PerKey {
		return nil, fmt.Errorf("%w: %d records", ErrKeyQuota, s.limits.PerKey)
	}
	if src.valid() && (!replacing || cur.src != src) && s.bySource[src] >= s.limits.PerSource {
		return nil, fmt.Errorf("%w %s: %d records", ErrSourceQuota, src.p, s.limits.PerSource)
	}
	var vs []victim
	if !replacing && len(s.bySvc[c]) >= s.limits.PerService {
		v, ok := s.victimIn(c, p)
		if !ok {
			return nil, fmt.Errorf("%w: service holds %d providers", ErrStoreFull, s.limits.PerService)
		}
		vs = append(vs, v)
	}
	need := s.bytes + cost - s.limits.Bytes
	if replacing {
		need -= cur.cost()
	}
	for _, v := range vs {
		need -= s.bySvc[v.c][v.p].cost()
	}
	if need > 0 {
		more, ok := s.victimsFor(need, p, vs)
		if !ok {
			return nil, fmt.Errorf("%w: %d bytes budget", ErrStoreFull, s.limits.Bytes)
		}
		vs = append(vs, more...)
	}
	return vs, nil
}

// victim is a record the store evicts to make room.
type victim struct {
	c cid.Cid
	p peer.ID
}

// expendable reports whether provider p's records may be evicted to make
// room (Verdicts.Expendable).
func (s *Store) expendable(p peer.ID) (ok, unhealthy bool) { return s.health.Expendable(p) }

// victimIn picks the record of service c to evict for newcomer p: an
// unhealthy provider's first, else a never-checked one's.
func (s *Store) victimIn(c cid.Cid, newcomer peer.ID) (victim, bool) {
	var fallback *victim
	for p := range s.bySvc[c] {
		ok, unhealthy := s.expendable(p)
		switch {
		case !ok || p == newcomer:
		case unhealthy:
			return victim{c, p}, true
		case fallback == nil:
			fallback = &victim{c, p}
		}
	}
	if fallback == nil {
		return victim{}, false
	}
	return *fallback, true
}

// victimsFor picks records to evict, beside taken, that free need bytes:
// unhealthy providers' first, then never-checked ones'. It reports false
// when they cannot.
func (s *Store) victimsFor(need int64, newcomer peer.ID, taken []victim) ([]victim, bool) {
	var out []victim
	skip := func(v victim) bool {
		for _, t := range taken {
			if t == v {
				return true
			}
		}
		return false
	}
	for _, wantUnhealthy := range []bool{true, false} {
		for p, svcs := range s.byPeer {
			ok, unhealthy := s.expendable(p)
			if !ok || p == newcomer || unhealthy != wantUnhealthy {
				continue
			}
			for _, c := range svcs {
				if v := (victim{c, p}); !skip(v) {
					out = append(out, v)
					if need -= s.bySvc[c][p].cost(); need <= 0 {
						return out, true
					}
				}
			}
		}
	}
	return nil, false
}
