package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Connect dials every peer concurrently, each up to cfg.Attempts times with
// doubling backoff, all bounded by ctx, and protects each connection it
// makes under ProtectTag. Peers listed twice are merged, and h itself is
// skipped. With cfg.Network set, a peer that speaks another network counts
// as not connected and is not retried. It returns the peers it connected
// to, in the order given. If none connects, the error is the peers'
// *NetworkErrors when each speaks another network, else an
// *UnreachableError naming each peer and why;
// if some do, each unreachable one is logged as a warning and the error is
// nil. No peers (besides h) is an error wrapping ErrNoPeers.
func Connect(ctx context.Context, h host.Host, peers []peer.AddrInfo, cfg Config) ([]peer.ID, error) {
	if h == nil {
		return nil, errors.New("bootstrap: connect: nil host")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	peers = mergeByPeer(peers)
	if i := indexOf(peers, h.ID()); i >= 0 {
		cfg.Logger.Debug("skipping bootstrap peer: it is this node", "peer", h.ID())
		peers = append(peers[:i:i], peers[i+1:]...)
		if len(peers) == 0 {
			return nil, fmt.Errorf("%w: the only one given is this node, %s", ErrNoPeers, h.ID())
		}
	}
	if len(peers) == 0 {
		return nil, ErrNoPeers
	}
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() { errs[i] = dial(ctx, h, p, cfg) })
	}
	wg.Wait()
	var connected []peer.ID
	var failed []PeerError
	for i, p := range peers {
		if errs[i] == nil {
			connected = append(connected, p.ID)
		} else {
			failed = append(failed, PeerError{ID: p.ID, Addrs: p.Addrs, Err: errs[i]})
		}
	}
	if len(connected) == 0 {
		return nil, noneJoined(failed)
	}
	for _, f := range failed {
		cfg.Logger.Warn("bootstrap peer unreachable", "peer", f.ID, "addrs", f.Addrs, "err", f.Err)
	}
	return connected, nil
}

// noneJoined is Connect's error when no peer connected: the peers'
// *NetworkErrors when every peer that failed speaks another network (the
// user's fix is --network, not the peers), else an *UnreachableError.
func noneJoined(failed []PeerError) error {
	var wrong []error
	for _, f := range failed {
		if errors.Is(f.Err, ErrWrongNetwork) {
			wrong = append(wrong, f.Err)
		}
	}
	if len(wrong) == len(failed) {
		if len(wrong) == 1 {
			return wrong[0]
		}
		return errors.Join(wrong...)
	}
	return &UnreachableError{Peers: failed}
}

func indexOf(peers []peer.AddrInfo, id peer.ID) int {
	for i, p := range peers {
		if p.ID == id {
			return i
		}
	}
	return -1
}

// dial connects to p, retrying with backoff, and protects the connection.
// It returns the last attempt's error.
func dial(ctx context.Context, h host.Host, p peer.AddrInfo, cfg Config) error {
	wait := min(cfg.Backoff, cfg.MaxBackoff)
	for attempt := 1; ; attempt++ {
		err := dialOnce(ctx, h, p, cfg.DialTimeout)
		if err == nil {
			err = checkNetwork(h, p.ID, cfg.Network)
		}
		if err == nil {
			h.ConnManager().Protect(p.ID, ProtectTag)
		}
		if cfg.OnAttempt != nil {
			cfg.OnAttempt(p.ID, attempt, err)
		}
		if err == nil || attempt >= cfg.Attempts || errors.Is(err, ErrWrongNetwork) {
			return err
		}
		if ctx.Err() == nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if cerr := ctx.Err(); cerr != nil {
			if errors.Is(err, cerr) {
				return err
			}
			return fmt.Errorf("%w (gave up after attempt %d: %w)", err, attempt, cerr)
		}
		wait = min(2*wait, cfg.MaxBackoff)
	}
}

// dialOnce makes one attempt to connect to p. Its error's message is a
// one-line reason; the libp2p error is wrapped.
func dialOnce(ctx context.Context, h host.Host, p peer.AddrInfo, timeout time.Duration) error {
	// The swarm refuses to redial an address that failed in the last few
	// seconds ("dial backoff"); a bootstrap attempt must really dial.
	if sw, ok := h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p.ID)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := h.Connect(dctx, p)
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return &dialError{msg: fmt.Sprintf("timed out after %s", timeout), err: err}
	}
	return &dialError{msg: reason(err), err: err}
}

// dialError is a dial failure with a short message.
type dialError struct {
	msg string
	err error
}

func (e *dialError) Error() string { return e.msg }
func (e *dialError) Unwrap() error { return e.err }

// reason turns a libp2p dial error into one line: the cause per address
// ("connection refused"), without the peer ID and addresses the caller
// already shows.
func reason(err error) string {
	var de *swarm.DialError
	if !errors.As(err, &de) {
		return cause(err)
	}
	var causes, perAddr []string
	for _, te := range de.DialErrors {
		c := cause(te.Cause)
		perAddr = append(perAddr, te.Address.String()+": "+c)
		if !slices.Contains(causes, c) {
			causes = append(causes, c)
		}
	}
	switch {
	case len(causes) == 1:
		return causes[0]
	case len(causes) > 1:
		return strings.Join(perAddr, ", ")
	case de.Cause != nil:
		return cause(de.Cause)
	}
	return cause(err)
}

// cause is err's message, shortened to the operating system's words when
// err is just a failed socket operation ("dial tcp4 …: connect: connection
// refused" becomes "connection refused").
func cause(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil && oe.Error() == err.Error() {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) && se.Err != nil {
			return se.Err.Error()
		}
		return oe.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), "failed to dial: ")
}
