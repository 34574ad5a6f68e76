package bridge

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/netget/netget-peer/record"
)

// Defaults of DefaultConfig.
const (
	DefaultMaxFrameSize    = 8 << 10
	DefaultMaxConns        = 1024
	DefaultFramesPerSecond = 20
	DefaultFrameBurst      = 40
	DefaultMaxInFlight     = 8
	DefaultMaxResults      = 32
	DefaultFindTimeout     = 10 * time.Second
	DefaultMaxFindTimeout  = 30 * time.Second
	DefaultHelloTimeout    = 10 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultPingInterval    = 30 * time.Second

	DefaultMaxSessionsPerAddr  = 32
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultMaxOpenConns        = 2048
	DefaultMaxOpenConnsPerAddr = 64
	DefaultReserveFDs          = 1024
	DefaultHeaderTimeout       = 5 * time.Second
	DefaultMaxFinds            = 256
	DefaultRecordCache         = 1024
	DefaultTokenBackoff        = time.Second
	DefaultMaxTokenBackoff     = 5 * time.Minute
	DefaultMaxTrackedAddrs     = 16384

	DefaultMaxChannels           = 16
	DefaultMaxChannelsTotal      = 4096
	DefaultMaxMessageSize        = 64 << 10
	DefaultChannelBytesPerSecond = 1 << 20
	DefaultOpenTimeout           = 10 * time.Second
	DefaultMaxSessionWatches     = 8
	DefaultMaxWatches            = 1024
)

// MinTokenLen is the shortest Token a bridge accepts, in bytes: a shorter
// one could be guessed. "openssl rand -hex 16" makes a good one.
const MinTokenLen = 16

// DefaultOrigins are the page origins a bridge allows by default, besides
// its own: pages served from this machine, on any port.
func DefaultOrigins() []string {
	return []string{
		"http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*",
		"https://localhost:*", "https://127.0.0.1:*", "https://[::1]:*",
	}
}

// Config configures a Server. Build it with DefaultConfig; the zero value
// is not valid. Fields say their DefaultConfig value.
type Config struct {
	// PeerID and Network identify the node in the welcome frame. Network
	// is required ([a-z0-9-]{1,32}); a hello naming another network is
	// refused. PeerID is required.
	PeerID, Network string

	// Origins lists the page origins allowed to open a session, besides
	// same-origin pages (Origin host = Host) which are always allowed.
	// An entry is "*" (any origin), or "scheme://host[:port]" where host
	// may start with "*." (any subdomain) and port may be "*" (any port,
	// or none). Matching is case-insensitive and exact otherwise.
	// "Origin: null" is always refused; requests without an Origin (not
	// from a browser) are allowed. Default: DefaultOrigins().
	Origins []string
	// Hosts lists the Host header names the WebSocket answers besides IP
	// literals, localhost and *.localhost (always allowed), against DNS
	// rebinding: "*" (any), a name, or "*.domain". Empty (the default)
	// allows any name over TLS, whose certificate pins it, and no other
	// name over plain HTTP.
	Hosts []string
	// Token, if set, must be sent in hello; compared in constant time.
	// At least MinTokenLen bytes. Default "" (no token).
	Token string
	// Services, if set, are the only service names finds may ask for
	// (case-insensitive). Default nil: any.
	Services []string
	// Filters run in order after the built-in checks at each Stage.
	Filters []Filter

	// MaxFrameSize is the largest client frame, in bytes (DefaultMaxFrameSize).
	// A larger one gets a too_large error and the connection is closed.
	MaxFrameSize int
	// MaxConns is the most WebSocket sessions at once (DefaultMaxConns);
	// beyond it the upgrade gets HTTP 503.
	MaxConns int
	// MaxSessionsPerAddr is the most WebSocket sessions one client
	// address holds at once (DefaultMaxSessionsPerAddr); beyond it the
	// upgrade gets HTTP 429. An address is an IPv4 address or an IPv6 /64.
	// Behind a reverse proxy every client shares the proxy's address.
	MaxSessionsPerAddr int
	// IdleTimeout closes a session that sent no frame, ran no find and held no channel for
	// that long (DefaultIdleTimeout), with an idle error frame.
	IdleTimeout time.Duration
	// FramesPerSecond and FrameBurst rate-limit each connection's frames
	// (DefaultFramesPerSecond, DefaultFrameBurst); over it, a frame gets a
	// rate_limited error and is dropped.
	FramesPerSecond float64
	FrameBurst      int
	// MaxInFlight is the most finds one connection runs at once
	// (DefaultMaxInFlight); beyond it a find gets rate_limited.
	MaxInFlight int
	// MaxResults caps a find's limit; a find without a limit gets this many
	// at most (DefaultMaxResults).
	MaxResults int
	// FindTimeout is a find's timeout when it gives none (DefaultFindTimeout);
	// MaxFindTimeout caps what it gives (DefaultMaxFindTimeout).
	FindTimeout, MaxFindTimeout time.Duration
	// HelloTimeout bounds the wait for hello (DefaultHelloTimeout).
	HelloTimeout time.Duration
	// WriteTimeout bounds each frame write; a client that does not read
	// for that long is disconnected (DefaultWriteTimeout).
	WriteTimeout time.Duration
	// PingInterval is how often the bridge pings each idle client at the
	// WebSocket level to find dead ones (DefaultPingInterval); 0: never.
	PingInterval time.Duration

	// MaxOpenConns is the most TCP connections Serve holds open at once,
	// upgraded or not (DefaultMaxOpenConns); MaxOpenConnsPerAddr the most
	// from one address (DefaultMaxOpenConnsPerAddr). A connection beyond
	// either is closed as soon as it is accepted, before any byte is read.
	MaxOpenConns, MaxOpenConnsPerAddr int
	// ReserveFDs is how many of the process's file descriptors Serve leaves
	// to the rest of the node (libp2p): it holds at most RLIMIT_NOFILE -
	// ReserveFDs connections, if that is below MaxOpenConns
	// (DefaultReserveFDs). New fails when that leaves none.
	ReserveFDs int
	// HeaderTimeout bounds the TLS handshake and the reading of a request's
	// headers (DefaultHeaderTimeout); a slower client is disconnected.
	HeaderTimeout time.Duration
	// MaxFinds is the most finds the whole bridge runs at once
	// (DefaultMaxFinds); beyond it a find gets busy.
	MaxFinds int
	// RecordCache is how many found records the bridge keeps the JSON of,
	// to send them again without encoding them (DefaultRecordCache; 0:
	// none). Each entry holds at most 2 KiB of JSON and a copy of the
	// record (a verified record's envelope is at most 4 KiB), so the cache
	// stays under RecordCache * 6 KiB; a record found often is encoded once
	// while it keeps its entry.
	RecordCache int
	// TokenBackoff and MaxTokenBackoff slow down token guessing: the n-th
	// wrong token in a row from one address bars that address from the
	// bridge for TokenBackoff * 2^(n-1), at most MaxTokenBackoff
	// (DefaultTokenBackoff, DefaultMaxTokenBackoff); a barred address gets
	// HTTP 429 at the upgrade, or rate_limited at hello. A right token
	// clears the count; so does MaxTokenBackoff without a wrong one.
	TokenBackoff, MaxTokenBackoff time.Duration
	// MaxTrackedAddrs is how many addresses the bridge remembers wrong
	// tokens for (DefaultMaxTrackedAddrs); when full, it forgets the
	// entries whose bar expired, then the oldest.
	MaxTrackedAddrs int
	// MaxSessionWatches is the most watches one connection holds open at
	// once (DefaultMaxSessionWatches); beyond it a watch gets rate_limited.
	// MaxWatches is the most the whole bridge holds (DefaultMaxWatches);
	// beyond it a watch gets busy. Watches are counted apart from finds:
	// they last, and must not starve them.
	MaxSessionWatches, MaxWatches int

	// Opener, if set, lets pages open channels to providers (open, send,
	// close frames; the welcome lists FeatureChannel). Default nil: no
	// channels, and an open gets forbidden.
	Opener Opener
	// MaxChannels is the most channels one session has open or opening
	// at once (DefaultMaxChannels); beyond it an open gets rate_limited.
	MaxChannels int
	// MaxChannelsTotal is the most channels the whole bridge has open or
	// opening at once (DefaultMaxChannelsTotal); beyond it an open gets busy.
	MaxChannelsTotal int
	// MaxMessageSize is the largest channel message a page may send, in
	// bytes of data (DefaultMaxMessageSize). A larger one gets too_large
	// and closes its channel (1009), only that one. A WebSocket message
	// over MaxFrameSize + 2*MaxMessageSize closes the session (1009).
	MaxMessageSize int
	// ChannelBytesPerSecond is how many bytes of channel messages a
	// session may send per second, all its channels together, each
	// message counted with 64 bytes of overhead
	// (DefaultChannelBytesPerSecond); over it, the bridge stops reading
	// the session until the budget refills, so TCP slows the page down
	// and nothing is lost. Channel messages do not count in FramesPerSecond.
	ChannelBytesPerSecond int
	// OpenTimeout bounds an open: finding providers and the first one's
	// accept (DefaultOpenTimeout); past it the open gets timeout.
	OpenTimeout time.Duration

	// CertFile and KeyFile, if set, make Serve speak TLS (wss://) with
	// that PEM certificate and key. TLSConfig, if set, is used instead.
	CertFile, KeyFile string
	TLSConfig         *tls.Config

	// Extra, if set, serves every path the bridge does not (a page at /,
	// say). Default nil: 404.
	Extra http.Handler
	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the config of a bridge for peerID on network.
func DefaultConfig(peerID, network string) Config {
	return Config{
		PeerID:          peerID,
		Network:         network,
		Origins:         DefaultOrigins(),
		MaxFrameSize:    DefaultMaxFrameSize,
		MaxConns:        DefaultMaxConns,
		FramesPerSecond: DefaultFramesPerSecond,
		FrameBurst:      DefaultFrameBurst,
		MaxInFlight:     DefaultMaxInFlight,
		MaxResults:      DefaultMaxResults,
		FindTimeout:     DefaultFindTimeout,
		MaxFindTimeout:  DefaultMaxFindTimeout,
		HelloTimeout:    DefaultHelloTimeout,
		WriteTimeout:    DefaultWriteTimeout,
		PingInterval:    DefaultPingInterval,

		MaxSessionsPerAddr:  DefaultMaxSessionsPerAddr,
		IdleTimeout:         DefaultIdleTimeout,
		MaxOpenConns:        DefaultMaxOpenConns,
		MaxOpenConnsPerAddr: DefaultMaxOpenConnsPerAddr,
		ReserveFDs:          DefaultReserveFDs,
		HeaderTimeout:       DefaultHeaderTimeout,
		MaxFinds:            DefaultMaxFinds,
		RecordCache:         DefaultRecordCache,
		TokenBackoff:        DefaultTokenBackoff,
		MaxTokenBackoff:     DefaultMaxTokenBackoff,
		MaxTrackedAddrs:     DefaultMaxTrackedAddrs,

		MaxChannels:           DefaultMaxChannels,
		MaxChannelsTotal:      DefaultMaxChannelsTotal,
		MaxMessageSize:        DefaultMaxMessageSize,
		ChannelBytesPerSecond: DefaultChannelBytesPerSecond,
		OpenTimeout:           DefaultOpenTimeout,
		MaxSessionWatches:     DefaultMaxSessionWatches,
		MaxWatches:            DefaultMaxWatches,
	}
}

// Validate reports the first field out of range, wrapping ErrBadConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	if c.PeerID == "" {
		return bad("peer ID is required")
	}
	if err := record.ValidateNetwork(c.Network); err != nil {
		return bad("%w", err)
	}
	if _, err := parseOrigins(c.Origins); err != nil {
		return bad("%w", err)
	}
	if err := checkHosts(c.Hosts); err != nil {
		return bad("%w", err)
	}
	for _, s := range c.Services {
		if err := record.ValidateName(s); err != nil {
			return bad("service allowlist: %w", err)
		}
	}
	if err := c.checkLimits(); err != nil {
		return bad("%w", err)
	}
	if err := CheckToken(c.Token); err != nil {
		return bad("%w", err)
	}
	if len(c.Token) > c.MaxFrameSize/2 {
		return bad("token is %d bytes; it must fit in a hello (at most %d)", len(c.Token), c.MaxFrameSize/2)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("a TLS certificate needs both a cert file and a key file")
	}
	return nil
}

func (c *Config) checkLimits() error {
	switch {
	case c.MaxFrameSize < 256:
		return fmt.Errorf("max frame size %d: want 256 bytes or more", c.MaxFrameSize)
	case c.MaxConns < 1:
		return fmt.Errorf("max connections %d: want 1 or more", c.MaxConns)
	case c.FramesPerSecond <= 0 || c.FrameBurst < 1:
		return fmt.Errorf("frame rate %g/s, burst %d: want both positive", c.FramesPerSecond, c.FrameBurst)
	case c.MaxInFlight < 1:
		return fmt.Errorf("max in-flight finds %d: want 1 or more", c.MaxInFlight)
	case c.MaxResults < 1:
		return fmt.Errorf("max results %d: want 1 or more", c.MaxResults)
	case c.FindTimeout <= 0 || c.MaxFindTimeout < c.FindTimeout:
		return fmt.Errorf("find timeout %s, max %s: want 0 < timeout <= max", c.FindTimeout, c.MaxFindTimeout)
	case c.HelloTimeout <= 0 || c.WriteTimeout <= 0:
		return fmt.Errorf("hello timeout %s, write timeout %s: want both positive", c.HelloTimeout, c.WriteTimeout)
	case c.PingInterval < 0:
		return fmt.Errorf("ping interval %s: want 0 (off) or positive", c.PingInterval)
	}
	return c.checkFairness()
}

// checkFairness checks the limits that keep one client from taking the
// bridge: per address, idle sessions, descriptors, finds, token guesses.
func (c *Config) checkFairness() error {
	switch {
	case c.MaxSessionsPerAddr < 1:
		return fmt.Errorf("max sessions per address %d: want 1 or more", c.MaxSessionsPerAddr)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("idle timeout %s: want positive", c.IdleTimeout)
	case c.MaxOpenConns < 1 || c.MaxOpenConnsPerAddr < 1:
		return fmt.Errorf("max open connections %d, per address %d: want both 1 or more", c.MaxOpenConns, c.MaxOpenConnsPerAddr)
	case c.ReserveFDs < 0:
		return fmt.Errorf("reserved descriptors %d: want 0 or more", c.ReserveFDs)
	case c.HeaderTimeout <= 0:
		return fmt.Errorf("header timeout %s: want positive", c.HeaderTimeout)
	case c.MaxFinds < 1:
		return fmt.Errorf("max finds %d: want 1 or more", c.MaxFinds)
	case c.RecordCache < 0 || c.RecordCache > maxRecordCache:
		return fmt.Errorf("record cache %d: want 0 (none) to %d", c.RecordCache, maxRecordCache)
	case c.TokenBackoff <= 0 || c.MaxTokenBackoff < c.TokenBackoff:
		return fmt.Errorf("token backoff %s, max %s: want 0 < backoff <= max", c.TokenBackoff, c.MaxTokenBackoff)
	case c.MaxTrackedAddrs < 1:
		return fmt.Errorf("max tracked addresses %d: want 1 or more", c.MaxTrackedAddrs)
	case c.MaxSessionWatches < 1 || c.MaxWatches < 1:
		return fmt.Errorf("max watches per session %d, in all %d: want both 1 or more", c.MaxSessionWatches, c.MaxWatches)
	}
	return c.checkChannels()
}

// checkChannels checks the channel limits.
func (c *Config) checkChannels() error {
	switch {
	case c.MaxChannels < 1 || c.MaxChannelsTotal < 1:
		return fmt.Errorf("max channels %d, in all %d: want both 1 or more", c.MaxChannels, c.MaxChannelsTotal)
	case c.MaxMessageSize < 1 || c.MaxMessageSize > MaxMessageSizeLimit:
		return fmt.Errorf("max message size %d: want 1 to %d bytes", c.MaxMessageSize, MaxMessageSizeLimit)
	case c.ChannelBytesPerSecond < 1:
		return fmt.Errorf("channel bytes per second %d: want 1 or more", c.ChannelBytesPerSecond)
	case c.OpenTimeout <= 0:
		return fmt.Errorf("open timeout %s: want positive", c.OpenTimeout)
	}
	return nil
}

// MaxMessageSizeLimit is the largest MaxMessageSize a bridge accepts.
const MaxMessageSizeLimit = 16 << 20

// CheckToken returns an error wrapping ErrShortToken when token is set and
// shorter than MinTokenLen; Validate calls it, and so can a command that
// wants to refuse a token before it starts anything.
func CheckToken(token string) error {
	if token != "" && len(token) < MinTokenLen {
		return fmt.Errorf("%w: %d bytes, want at least %d (make one with: openssl rand -hex 16)",
			ErrShortToken, len(token), MinTokenLen)
	}
	return nil
}

// tlsConfig returns the TLS config Serve uses, or nil for plain HTTP.
// It offers only HTTP/1.1 in ALPN: WebSockets need its upgrade.
func (c *Config) tlsConfig() (*tls.Config, error) {
	var cfg *tls.Config
	switch {
	case c.TLSConfig != nil:
		cfg = c.TLSConfig.Clone()
	case c.CertFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: load TLS certificate: %w", ErrBadConfig, err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	default:
		return nil, nil
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg, nil
}

// channelLimit is v when the bridge serves channels, else 0 (left out of
// the welcome's limits).
func (c *Config) channelLimit(v int) int {
	if c.Opener == nil {
		return 0
	}
	return v
}
