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
)

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
	// Default "" (no token).
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
