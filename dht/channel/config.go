package channel

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Config.
const (
	// DefaultMaxMessageSize is Config.MaxMessageSize's default.
	DefaultMaxMessageSize = 1 << 20
	// DefaultMaxChannels is Config.MaxChannels's default.
	DefaultMaxChannels = 1024
	// DefaultMaxChannelsPerPeer is Config.MaxChannelsPerPeer's default.
	DefaultMaxChannelsPerPeer = 256
	// DefaultIdleTimeout is Config.IdleTimeout's default.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultOpenTimeout is Config.OpenTimeout's default.
	DefaultOpenTimeout = 10 * time.Second
	// DefaultOpenRate is Config.OpenRate's default.
	DefaultOpenRate = 50
	// DefaultOpenBurst is Config.OpenBurst's default.
	DefaultOpenBurst = 100
	// MaxMessageLimit is the largest MaxMessageSize a node may set.
	MaxMessageLimit = 64 << 20
)

// Config bounds a node's channels, on both sides. Its zero value is usable:
// each zero field takes the default it documents.
type Config struct {
	// MaxMessageSize is the largest message this node takes on a channel,
	// in bytes (default 1 MiB, at most 64 MiB): announced to the other
	// side when the channel opens, so that its Send refuses larger ones;
	// a larger message arriving anyway closes that channel with
	// CloseTooLarge.
	MaxMessageSize int
	// MaxChannels is the most channels the node serves at once, opening
	// ones included (default 1024); more are refused with CodeBusy.
	MaxChannels int
	// MaxChannelsPerPeer is the most channels one opener peer has at once
	// (default 256; a bridge opens the channels of all its pages); more
	// are refused with CodeBusy.
	MaxChannelsPerPeer int
	// IdleTimeout closes a served channel with CloseGoingAway when no
	// message went either way for this long (default 5m).
	IdleTimeout time.Duration
	// OpenTimeout bounds opening a channel: the open request, the
	// handler's decision (a target's dial included) and the answer
	// (default 10s).
	OpenTimeout time.Duration
	// OpenRate and OpenBurst bound the channels one opener peer opens:
	// a token bucket of OpenRate per second (default 50) with bursts of
	// OpenBurst (default 100); opens beyond are refused with
	// CodeRateLimited before any handler runs.
	OpenRate  float64
	OpenBurst int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		MaxMessageSize:     DefaultMaxMessageSize,
		MaxChannels:        DefaultMaxChannels,
		MaxChannelsPerPeer: DefaultMaxChannelsPerPeer,
		IdleTimeout:        DefaultIdleTimeout,
		OpenTimeout:        DefaultOpenTimeout,
		OpenRate:           DefaultOpenRate,
		OpenBurst:          DefaultOpenBurst,
	}
}

// Validate checks c: no negative field, a message limit between
// MinMessageLimit and MaxMessageLimit.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MaxMessageSize < MinMessageLimit || c.MaxMessageSize > MaxMessageLimit:
		return fmt.Errorf("%w: max message size %d: want %d to %d bytes", ErrBadConfig, c.MaxMessageSize, MinMessageLimit, MaxMessageLimit)
	case c.MaxChannels < 0, c.MaxChannelsPerPeer < 0:
		return fmt.Errorf("%w: max channels %d, per peer %d: must not be negative", ErrBadConfig, c.MaxChannels, c.MaxChannelsPerPeer)
	case c.OpenRate < 0, c.OpenBurst < 0:
		return fmt.Errorf("%w: open rate %g, burst %d: must not be negative", ErrBadConfig, c.OpenRate, c.OpenBurst)
	case c.IdleTimeout < 0, c.OpenTimeout < 0:
		return fmt.Errorf("%w: idle timeout %s, open timeout %s: must not be negative", ErrBadConfig, c.IdleTimeout, c.OpenTimeout)
	}
	return nil
}

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = d.MaxMessageSize
	}
	if c.MaxChannels == 0 {
		c.MaxChannels = d.MaxChannels
	}
	if c.MaxChannelsPerPeer == 0 {
		c.MaxChannelsPerPeer = d.MaxChannelsPerPeer
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = d.OpenTimeout
	}
	if c.OpenRate == 0 {
		c.OpenRate = d.OpenRate
	}
	if c.OpenBurst == 0 {
		c.OpenBurst = d.OpenBurst
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
