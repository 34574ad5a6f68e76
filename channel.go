package netget

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/record"
)

// DefaultConnectTimeout bounds a Connect without ConnectOptions.Timeout.
const DefaultConnectTimeout = 10 * time.Second

// ConnectOptions chooses the provider Connect opens a channel to.
type ConnectOptions struct {
	// Peer, when set, is the only provider tried.
	Peer peer.ID
	// Where keeps only providers whose record metadata holds every pair.
	Where map[string]string
	// Token and Origin are the opener's claims (channel.Claims).
	Token, Origin string
	// Timeout bounds the whole Connect: the find and every open
	// (default DefaultConnectTimeout).
	Timeout time.Duration
}

// Handle serves channels for service with h: a peer that found this
// node's record opens one with Dial or Connect, h sees its claims and
// accepts or refuses it. Call Handle before Provide: Provide then marks the
// record as taking channels (record.MetaChannel = record.ChannelMessages
// unless Spec.Meta sets it). A nil h stops serving service.
func (n *Node) Handle(service string, h channel.Handler) error {
	if err := n.chans.Handle(service, h); err != nil {
		if errors.Is(err, channel.ErrServerClosed) {
			return fmt.Errorf("handle %s: %w", service, ErrClosed)
		}
		return err
	}
	return nil
}

// withChannel returns spec with record.MetaChannel set when the node
// handles spec.Name's channels, and refuses a spec that claims channels
// the node does not serve.
func (n *Node) withChannel(spec Spec) (Spec, error) {
	_, claimed := spec.Meta[record.MetaChannel]
	handled := n.chans.Handles(spec.Name)
	switch {
	case claimed && !handled:
		return spec, fmt.Errorf("provide %s: %w: the record would say %s, but nothing serves its channels (call Handle first)",
			spec.Name, ErrNoHandler, record.MetaChannel)
	case handled && !claimed:
		spec.Meta = maps.Clone(spec.Meta)
		if spec.Meta == nil {
			spec.Meta = make(map[string]string, 1)
		}
		spec.Meta[record.MetaChannel] = record.ChannelMessages
	}
	return spec, nil
}

// Dial opens a channel to the provider of r (a Find result) with the
// opener's claims c (c.Service defaults to the record's service). A record
// that does not say it takes channels fails with ErrNoChannels without a
// dial; the provider's refusal is its *channel.RefusedError.
func (n *Node) Dial(ctx context.Context, r Result, c channel.Claims) (*channel.Conn, error) {
	rec := r.Record
	if rec == nil {
		return nil, fmt.Errorf("dial: %w: no record", ErrNoChannels)
	}
	if rec.AcceptsChannels() == "" {
		return nil, fmt.Errorf("dial %s at %s: %w", rec.Name, rec.Peer, ErrNoChannels)
	}
	if rec.Peer == n.ID() {
		return nil, fmt.Errorf("dial %s: %w: the provider is this node", rec.Name, ErrNoChannels)
	}
	if c.Service == "" {
		c.Service = rec.Name
	}
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: rec.Peer, Addrs: rec.Multiaddrs()}); err != nil {
		return nil, errClosedOr(fmt.Errorf("dial %s at %s: %w", rec.Name, rec.Peer, err))
	}
	return channel.Open(ctx, n.host, n.cfg.Network, rec.Peer, c, n.cfg.Channel)
}

// Connect finds service and opens a channel to the first provider that
// accepts one: records that take no channels, or do not match o.Peer and
// o.Where, are skipped; the others are tried in the order they are found
// until one accepts. When every provider tried refused, the last
// *channel.RefusedError is returned; when none could be reached, the last
// dial error; when none was eligible, ErrNoChannels.
func (n *Node) Connect(ctx context.Context, service string, o ConnectOptions) (*channel.Conn, Result, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		conn             *channel.Conn
		got              Result
		refused, dialErr error
		found, eligible  int
	)
	claims := channel.Claims{Service: service, Origin: o.Origin, Token: o.Token}
	ferr := n.Find(ctx, service, FindOptions{Timeout: timeout}, func(r Result) bool {
		found++
		if !eligibleFor(r.Record, o) {
			return true
		}
		eligible++
		c, err := n.Dial(ctx, r, claims)
		var re *channel.RefusedError
		switch {
		case errors.As(err, &re):
			refused = err
		case err != nil:
			dialErr = err
		default:
			conn, got = c, r
			return false
		}
		return ctx.Err() == nil
	})
	switch {
	case conn != nil:
		return conn, got, nil
	case refused != nil:
		return nil, Result{}, refused
	case dialErr != nil:
		return nil, Result{}, fmt.Errorf("connect %s: %w", service, dialErr)
	case ferr != nil && !errors.Is(ferr, ErrFindTimeout):
		return nil, Result{}, fmt.Errorf("connect %s: %w", service, ferr)
	}
	return nil, Result{}, fmt.Errorf("connect %s: %w: found %d providers, %d taking channels%s",
		service, ErrNoChannels, found, eligible, connectFilterNote(o))
}

// eligibleFor reports whether rec takes channels and matches o.
func eligibleFor(rec *record.Service, o ConnectOptions) bool {
	if rec.AcceptsChannels() == "" || (o.Peer != "" && rec.Peer != o.Peer) {
		return false
	}
	for k, v := range o.Where {
		if got, ok := rec.Meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func connectFilterNote(o ConnectOptions) string {
	if o.Peer == "" && len(o.Where) == 0 {
		return ""
	}
	return " and matching the peer and where given"
}
