package netget

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// maxRetry caps the backoff between attempts at a first publication that
// keeps failing (a service restored while the network is unreachable).
const maxRetry = time.Minute

// services are the services a node provides: one republish loop each.
type services struct {
	n     *Node
	opMu  sync.Mutex // serialises provide and unprovide, so seqs stay in order
	mu    sync.Mutex // guards the fields below and the provisions' state
	loops map[string]*provision
	done  bool           // closed: no service can be added
	wg    sync.WaitGroup // provide loops
}

// provision is one provided service: a dht.Provide loop, running until
// stopped.
type provision struct {
	spec    Spec
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the loop has returned
	first   chan struct{} // closed after the first publication attempt

	// Guarded by services.mu.
	firstSvc *record.Service
	firstErr error
	last     *record.Service // latest published record
	lastErr  error           // latest attempt's error, nil once one lands
}

// ServiceStatus is one service a node provides.
type ServiceStatus struct {
	// Name, Meta and TTL are as given to Provide.
	Name string
	Meta map[string]string
	TTL  time.Duration
	// Seq, PublishedAt and ExpiresAt are the last published record's;
	// zero until the first publication lands.
	Seq         uint64
	PublishedAt time.Time
	ExpiresAt   time.Time
	// LastError is the last publication's error, nil once one lands.
	LastError error
}

func (s *services) init(n *Node) {
	s.n = n
	s.loops = make(map[string]*provision)
}

func serviceKey(name string) string { return strings.ToLower(name) }

// Provide publishes spec and keeps it published: it returns the first
// record once it is findable (a registry took it, or the DHT walk placed
// it), then republishes at half the TTL until Unprovide or Close. A service
// of the same name (case-insensitively) is replaced. A service the node
// Handles is marked as taking channels (record.MetaChannel). If the first
// publication fails or ctx ends first, nothing keeps running and the error
// is returned.
func (n *Node) Provide(ctx context.Context, spec Spec) (*record.Service, error) {
	spec, err := n.withChannel(spec)
	if err != nil {
		return nil, err
	}
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	p, err := n.svcs.start(spec, false)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.first:
	case <-ctx.Done():
		n.svcs.drop(p)
		return nil, fmt.Errorf("provide %s: %w", spec.Name, ctx.Err())
	}
	n.svcs.mu.Lock()
	svc, err := p.firstSvc, p.firstErr
	n.svcs.mu.Unlock()
	if err != nil {
		n.svcs.drop(p)
		return nil, errClosedOr(err)
	}
	return svc, nil
}

// ProvideLater starts providing spec in the background and returns at
// once: a failed publication is retried with backoff (up to a minute
// apart) until one lands, then the record is republished at half its TTL
// until Unprovide or Close. It suits services restored at start, while
// the network may still be out of reach; Services reports how it goes.
func (n *Node) ProvideLater(spec Spec) error {
	spec, err := n.withChannel(spec)
	if err != nil {
		return err
	}
	if err := checkSpec(spec); err != nil {
		return err
	}
	_, err = n.svcs.start(spec, true)
	return err
}

// checkSpec applies the record's rules to spec before anything starts.
func checkSpec(spec Spec) error {
	if err := record.ValidateName(spec.Name); err != nil {
		return fmt.Errorf("provide: %w", err)
	}
	if spec.TTL != 0 {
		if err := record.ValidateTTL(spec.TTL); err != nil {
			return fmt.Errorf("provide %s: %w", spec.Name, err)
		}
	}
	if err := record.ValidateMeta(spec.Meta); err != nil {
		return fmt.Errorf("provide %s: %w", spec.Name, err)
	}
	return nil
}

// Unprovide stops providing name and publishes its signed withdrawal,
// waiting for every copy. It withdraws name even when this node does not
// provide it now (a record from an earlier run), and then also returns
// ErrNotProvided, wrapped, beside the tombstone.
func (n *Node) Unprovide(ctx context.Context, name string) (*record.Service, error) {
	s := &n.svcs
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.closed() {
		return nil, ErrClosed
	}
	was := s.remove(serviceKey(name), nil)
	tomb, err := n.dht.Withdraw(ctx, name)
	if err != nil {
		return nil, errClosedOr(err)
	}
	if !was {
		return tomb, fmt.Errorf("unprovide %s: %w", name, ErrNotProvided)
	}
	return tomb, nil
}

// Services returns the services the node provides, sorted by name.
func (n *Node) Services() []ServiceStatus {
	s := &n.svcs
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceStatus, 0, len(s.loops))
	for _, p := range s.loops {
		st := ServiceStatus{Name: p.spec.Name, Meta: maps.Clone(p.spec.Meta), TTL: p.spec.TTL, LastError: p.lastErr}
		if st.TTL == 0 {
			st.TTL = dht.DefaultTTL
		}
		if p.last != nil {
			st.Seq, st.PublishedAt, st.ExpiresAt = p.last.Seq, p.last.IssuedAt.UTC(), p.last.ExpiresAt.UTC()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return strings.Compare(serviceKey(a.Name), serviceKey(b.Name)) })
	return out
}

// start runs a provide loop for spec, replacing the loop of a service of
// the same name. With retry, a failed first publication is retried with
// backoff; without, the loop ends after it.
func (s *services) start(spec Spec, retry bool) (*provision, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.closed() {
		return nil, ErrClosed
	}
	k := serviceKey(spec.Name)
	s.remove(k, nil)
	ctx, cancel := context.WithCancel(context.Background())
	p := &provision{spec: spec, cancel: cancel, stopped: make(chan struct{}), first: make(chan struct{})}
	s.mu.Lock()
	s.loops[k] = p
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run(ctx, p, retry)
	return p, nil
}

// run provides p.spec until ctx ends: dht.Provide publishes and
// republishes at half the TTL; with retry, a failed first publication is
// retried with backoff.
func (s *services) run(ctx context.Context, p *provision, retry bool) {
	defer s.wg.Done()
	defer close(p.stopped)
	backoff := time.Second
	s.n.AwaitRelay(ctx)
	for {
		err := s.n.dht.Provide(ctx, p.spec, func(svc *record.Service, err error) { s.report(p, svc, err) })
		if !retry || err == nil || ctx.Err() != nil || errors.Is(err, dht.ErrClosed) {
			return
		}
		s.n.log.Warn("publish failed; retrying", "service", p.spec.Name, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxRetry)
	}
}

// report records a publication attempt of p.
func (s *services) report(p *provision, svc *record.Service, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		p.lastErr = err
		s.n.log.Warn("publish failed", "service", p.spec.Name, "err", err)
	} else {
		p.last, p.lastErr = svc, nil
		s.n.log.Info("published", "service", svc.Name, "seq", svc.Seq, "expires", svc.ExpiresAt)
	}
	select {
	case <-p.first:
	default:
		p.firstSvc, p.firstErr = svc, err
		close(p.first)
	}
}

// drop removes p if it is still the loop for its name: its first
// publication failed, so it is not provided.
func (s *services) drop(p *provision) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.remove(serviceKey(p.spec.Name), p)
	p.stop()
}

// remove stops and removes the loop filed under k (only if it is want,
// when want is set), and reports whether there was one. s.opMu is held.
func (s *services) remove(k string, want *provision) bool {
	s.mu.Lock()
	p := s.loops[k]
	if p == nil || (want != nil && p != want) {
		s.mu.Unlock()
		return false
	}
	delete(s.loops, k)
	s.mu.Unlock()
	p.stop()
	return true
}

// stop ends the loop and waits for it.
func (p *provision) stop() {
	p.cancel()
	<-p.stopped
}

func (s *services) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// stopAll ends every loop and, with withdraw, withdraws concurrently and
// bounded by ctx each service that published in this run. No service can
// be added afterwards.
func (s *services) stopAll(ctx context.Context, withdraw bool) {
	s.opMu.Lock()
	s.mu.Lock()
	s.done = true
	var live []*provision
	for _, p := range s.loops {
		p.cancel()
		if p.last != nil && withdraw {
			live = append(live, p)
		}
	}
	s.mu.Unlock()
	s.opMu.Unlock()
	s.wg.Wait()
	var wg sync.WaitGroup
	for _, p := range live {
		wg.Go(func() {
			tomb, err := s.n.dht.Withdraw(ctx, p.spec.Name)
			if err != nil {
				s.n.log.Warn("not withdrawn at shutdown", "service", p.spec.Name, "err", err)
				return
			}
			s.n.log.Info("withdrawn at shutdown", "service", tomb.Name, "seq", tomb.Seq)
		})
	}
	wg.Wait()
}
