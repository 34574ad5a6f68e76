package bridge

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Reason names why the bridge refused a connection, session, frame or
// find. Stats counts refusals by reason; the list only grows.
type Reason string

// Refusal reasons.
const (
	ReasonMaxConns    Reason = "max_conns"   // HTTP 503: MaxConns sessions open
	ReasonSubprotocol Reason = "subprotocol" // the client did not offer netget.v1
	ReasonHost        Reason = "host"        // Host header not allowed (DNS rebinding)
	ReasonOrigin      Reason = "origin"      // Origin not allowed, or null
	ReasonHello       Reason = "hello"       // no valid hello first, or none in time
	ReasonNetwork     Reason = "network"     // hello named another network
	ReasonToken       Reason = "token"       // token missing or wrong
	ReasonFilter      Reason = "filter"      // a Filter refused
	ReasonTooLarge    Reason = "too_large"   // frame over MaxFrameSize
	ReasonBadFrame    Reason = "bad_frame"   // malformed frame, unknown type, duplicate id
	ReasonRate        Reason = "rate"        // over FramesPerSecond
	ReasonInFlight    Reason = "in_flight"   // over MaxInFlight
	ReasonService     Reason = "service"     // service not in the allowlist

	ReasonAddrSessions  Reason = "addr_sessions"  // HTTP 429: MaxSessionsPerAddr sessions open from the address
	ReasonIdle          Reason = "idle"           // session closed after IdleTimeout without frames or finds
	ReasonOpenConns     Reason = "open_conns"     // connection closed at accept: MaxOpenConns open
	ReasonAddrConns     Reason = "addr_conns"     // connection closed at accept: MaxOpenConnsPerAddr open from the address
	ReasonFinds         Reason = "finds"          // find refused busy: MaxFinds running bridge-wide
	ReasonTokenBackoff  Reason = "token_backoff"  // the address is barred after wrong tokens
	ReasonHeaderTimeout Reason = "header_timeout" // disconnected: no request headers within HeaderTimeout

	ReasonChannelsOff    Reason = "channels_off"    // open refused: the bridge has no Opener
	ReasonChannels       Reason = "channels"        // open refused rate_limited: MaxChannels open in the session
	ReasonChannelsTotal  Reason = "channels_total"  // open refused busy: MaxChannelsTotal open bridge-wide
	ReasonMessageSize    Reason = "message_size"    // channel message over MaxMessageSize; its channel closed
	ReasonSessionWatches Reason = "session_watches" // watch refused rate_limited: MaxSessionWatches open in the session
	ReasonWatches        Reason = "watches"         // watch refused busy: MaxWatches running bridge-wide
	ReasonSlow           Reason = "slow"            // session dropped: it did not read a watch's frame within WriteTimeout
)

// Reasons returns every refusal reason, in a stable order, for exporters
// that report a count for each (zero included).
func Reasons() []Reason {
	return []Reason{ReasonMaxConns, ReasonSubprotocol, ReasonHost, ReasonOrigin, ReasonHello, ReasonNetwork,
		ReasonToken, ReasonFilter, ReasonTooLarge, ReasonBadFrame, ReasonRate, ReasonInFlight, ReasonService,
		ReasonAddrSessions, ReasonIdle, ReasonOpenConns, ReasonAddrConns, ReasonFinds, ReasonTokenBackoff,
		ReasonHeaderTimeout, ReasonChannelsOff, ReasonChannels, ReasonChannelsTotal, ReasonMessageSize,
		ReasonSessionWatches, ReasonWatches, ReasonSlow}
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	Sessions      int               // WebSocket sessions open now
	Conns         int               // TCP connections Serve holds now, upgraded or not
	FindsRunning  int               // finds running now, bridge-wide
	SessionsTotal uint64            // sessions accepted since start
	Finds         uint64            // finds that reached the Finder
	FindsMoved    uint64            // finds that outlived their grace on the read loop, which moved to a new goroutine
	Results       uint64            // result frames sent, of finds and watches
	Refusals      map[Reason]uint64 // refusals by reason

	Channels       int    // channels open or opening now, bridge-wide
	ChannelsTotal  uint64 // channels a provider accepted since start
	MessagesIn     uint64 // channel messages passed from pages to providers
	MessagesOut    uint64 // channel messages passed from providers to pages
	WatchesRunning int    // watches open now, bridge-wide
	Watches        uint64 // watches that reached the Watcher
	Removed        uint64 // removed frames sent
	// WatchOverLimit counts upserts of new providers a watch did not show
	// because it showed its limit of providers already.
	WatchOverLimit uint64
}

// counters are a Server's live Stats.
type counters struct {
	sessions      atomic.Int64
	conns         atomic.Int64
	findsRunning  atomic.Int64
	sessionsTotal atomic.Uint64
	finds         atomic.Uint64
	findsMoved    atomic.Uint64
	results       atomic.Uint64
	channels      atomic.Int64
	channelsTotal atomic.Uint64
	messagesIn    atomic.Uint64
	messagesOut   atomic.Uint64

	watchesRunning atomic.Int64
	watches        atomic.Uint64
	removed        atomic.Uint64
	watchOverLimit atomic.Uint64

	mu       sync.Mutex
	refusals map[Reason]uint64
}

func (c *counters) refuse(r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refusals == nil {
		c.refusals = make(map[Reason]uint64)
	}
	c.refusals[r]++
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	ref := maps.Clone(c.refusals)
	c.mu.Unlock()
	if ref == nil {
		ref = map[Reason]uint64{}
	}
	return Stats{
		Sessions:      int(c.sessions.Load()),
		Conns:         int(c.conns.Load()),
		FindsRunning:  int(c.findsRunning.Load()),
		SessionsTotal: c.sessionsTotal.Load(),
		Finds:         c.finds.Load(),
		FindsMoved:    c.findsMoved.Load(),
		Results:       c.results.Load(),
		Refusals:      ref,
		Channels:      int(c.channels.Load()),
		ChannelsTotal: c.channelsTotal.Load(),
		MessagesIn:    c.messagesIn.Load(),
		MessagesOut:   c.messagesOut.Load(),

		WatchesRunning: int(c.watchesRunning.Load()),
		Watches:        c.watches.Load(),
		Removed:        c.removed.Load(),
		WatchOverLimit: c.watchOverLimit.Load(),
	}
}
