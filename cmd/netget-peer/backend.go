package main

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/urfave/cli/v2"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/cmd/netget-peer/control"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// backend is where find, provide and unprovide run: the daemon serving
// the data dir (daemonBackend) or a node of the command's own
// (localBackend). openBackend chooses once; each command is one action
// over it.
type backend interface {
	// find streams name's verified providers, bounded by timeout, each
	// in the one view of a found record; an error, if any, is the last
	// thing yielded.
	find(ctx context.Context, name string, limit int, timeout time.Duration) iter.Seq2[control.Result, error]
	// none is find's error when it found nothing after took.
	none(name string, timeout, took time.Duration) error
	// provide publishes spec and reports each publication and the
	// withdrawal to event: through the daemon it returns after the first
	// (the daemon republishes); on a node of its own it republishes until
	// ctx ends, then withdraws.
	provide(ctx context.Context, spec dht.Spec, event func(string, *record.Service)) error
	// unprovide publishes name's signed withdrawal.
	unprovide(ctx context.Context, name string) (*record.Service, error)
	close()
}

// openBackend returns the daemon serving the command's data dir, or a
// node of its own when none does or --no-daemon is set.
func openBackend(c *cli.Context) (backend, error) {
	cl, dir, err := daemonClient(c)
	if err != nil {
		return nil, err
	}
	if cl != nil {
		return &daemonBackend{c: c, cl: cl, dir: dir}, nil
	}
	return localBackend{c: c}, nil
}

// daemonBackend runs commands through the daemon's control API.
type daemonBackend struct {
	c   *cli.Context
	cl  *control.Client
	dir string
}

func (b *daemonBackend) close() { b.cl.Close() }

func (b *daemonBackend) find(ctx context.Context, name string, limit int, timeout time.Duration) iter.Seq2[control.Result, error] {
	return func(yield func(control.Result, error) bool) {
		// The daemon bounds the search; the slack covers a daemon that hangs.
		ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
		defer cancel()
		req := control.FindRequest{Name: name, Limit: limit, Timeout: control.Duration(timeout), Network: daemonNetwork(b.c)}
		for r, err := range b.cl.Find(ctx, req) {
			if err != nil {
				yield(r, daemonError(b.dir, err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (b *daemonBackend) none(name string, timeout, took time.Duration) error {
	if took < timeout {
		return fmt.Errorf("no provider of %s found: the daemon's search ended after %s (asked the daemon in %s)",
			name, took.Round(time.Millisecond), b.dir)
	}
	return fmt.Errorf("no provider of %s found within --timeout %s (asked the daemon in %s)", name, timeout, b.dir)
}

func (b *daemonBackend) provide(ctx context.Context, spec dht.Spec, event func(string, *record.Service)) error {
	resp, err := b.cl.Provide(ctx, control.ProvideRequest{Name: spec.Name, Meta: spec.Meta,
		TTL: control.Duration(spec.TTL), Network: daemonNetwork(b.c)})
	if err != nil {
		return daemonError(b.dir, err)
	}
	event("published", resp.Service)
	return nil
}

func (b *daemonBackend) unprovide(ctx context.Context, name string) (*record.Service, error) {
	resp, err := b.cl.Unprovide(ctx, control.UnprovideRequest{Name: name, Network: daemonNetwork(b.c)})
	if err != nil {
		return nil, daemonError(b.dir, err)
	}
	return resp.Service, nil
}

// localBackend runs each command on a node of its own, built for it
// (startNode) and closed when it is done.
type localBackend struct {
	c      *cli.Context
	served *servedChannel // provide --target; nil otherwise
}

func (localBackend) close() {}

func (b localBackend) find(ctx context.Context, name string, limit int, timeout time.Duration) iter.Seq2[control.Result, error] {
	return func(yield func(control.Result, error) bool) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		n, err := startNode(ctx, b.c, findRole())
		if err != nil {
			yield(control.Result{}, joinTimedOut(ctx, b.c, timeout, err))
			return
		}
		defer n.Close()
		stopped := false
		err = n.Find(ctx, name, dht.FindOptions{Limit: limit, Timeout: timeout - time.Since(start)}, func(r dht.Result) bool {
			stopped = !yield(control.Result{Record: record.ViewOf(r.Record), Source: string(r.Source), Elapsed: r.Elapsed}, nil)
			return !stopped
		})
		if err != nil && !stopped && !errors.Is(err, dht.ErrFindTimeout) {
			yield(control.Result{}, joinTimedOut(ctx, b.c, timeout, err))
		}
	}
}

func (b localBackend) none(name string, timeout, took time.Duration) error {
	network := b.c.String("network")
	if took >= timeout {
		return fmt.Errorf("no provider of %s found on network %q within --timeout %s", name, network, timeout)
	}
	return fmt.Errorf("no provider of %s found on network %q: the search ended after %s (of --timeout %s), with every registry and the DHT walk asked",
		name, network, took.Round(time.Millisecond), timeout)
}

func (b localBackend) provide(ctx context.Context, spec dht.Spec, event func(string, *record.Service)) error {
	var adjust []func(*netget.Config) error
	if b.served != nil {
		adjust = append(adjust, func(cfg *netget.Config) error { return applyChannelFlags(b.c, cfg) })
	}
	n, err := startNode(ctx, b.c, serviceRole(), adjust...)
	if err != nil {
		return err
	}
	defer n.Close()
	n.AwaitRelay(ctx) // behind NAT, the first record carries the relay address
	if b.served != nil {
		if spec.Meta, err = b.served.serve(n, spec.Name, spec.Meta); err != nil {
			return err
		}
	}
	err = n.dht.Provide(ctx, spec, func(s *record.Service, err error) {
		if err != nil {
			n.log.Warn("publish failed", "service", spec.Name, "err", err)
			return
		}
		event("published", s)
	})
	if err != nil {
		return err
	}
	// Interrupted: withdraw on a fresh context, since ctx is already done.
	wctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	tomb, err := n.dht.Withdraw(wctx, spec.Name)
	if err != nil {
		return fmt.Errorf("withdraw %s: %w", spec.Name, err)
	}
	event("withdrawn", tomb)
	return nil
}

// unprovide joins the network as the provider, briefly, and publishes
// name's tombstone: for a provider that stopped without withdrawing.
func (b localBackend) unprovide(ctx context.Context, name string) (*record.Service, error) {
	r := serviceRole()
	dir, err := dataDir(b.c, r)
	if err != nil {
		return nil, err
	}
	// A fresh key would withdraw nothing: the record to replace is signed
	// by the provider's key.
	if key := identityPath(b.c, dir); !fileExists(key) {
		return nil, fmt.Errorf("unprovide %s: no identity key at %s: this node never provided anything "+
			"(pass the provider's --identity or --data-dir)", name, key)
	}
	n, err := startNode(ctx, b.c, r, func(cfg *netget.Config) error {
		if !b.c.IsSet("dht-mode") {
			cfg.DHT.Mode = dht.ModeClient // in and out: no use joining others' routing tables
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(ctx, withdrawTimeout)
	defer cancel()
	tomb, err := n.dht.Withdraw(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("withdraw %s: %w", name, err)
	}
	return tomb, nil
}
