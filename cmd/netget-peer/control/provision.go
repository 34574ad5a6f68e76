package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// maxRetry caps the backoff between attempts at a first publication that
// keeps failing (a restored service while the network is unreachable).
const maxRetry = time.Minute

// provision is one provided service: a dht.Provide loop owned by the
// server, running until stopped.
type provision struct {
	spec   dht.Spec
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has returned
	first  chan struct{} // closed after the first publication attempt

	// Guarded by Server.mu.
	firstSvc *record.Service
	firstErr error
	last     *record.Service // latest published record
	lastErr  error           // latest attempt's error, nil once one lands
}

// stop ends the loop and waits for it.
func (p *provision) stop() {
	p.cancel()
	<-p.done
}

func key(name string) string { return strings.ToLower(name) }

// start runs a provide loop for spec and files it under its name. Callers
// hold s.opMu and have stopped the loop it replaces.
func (s *Server) start(spec dht.Spec) *provision {
	ctx, cancel := context.WithCancel(context.Background())
	p := &provision{spec: spec, cancel: cancel, done: make(chan struct{}), first: make(chan struct{})}
	s.mu.Lock()
	s.loops[key(spec.Name)] = p
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run(ctx, p)
	return p
}

// run provides p.spec until ctx ends: dht.Provide publishes and republishes
// at half the TTL; a failed first publication is retried with backoff.
func (s *Server) run(ctx context.Context, p *provision) {
	defer s.wg.Done()
	defer close(p.done)
	backoff := time.Second
	for {
		err := s.node.Provide(ctx, p.spec, func(svc *record.Service, err error) { s.report(p, svc, err) })
		if err == nil || ctx.Err() != nil || errors.Is(err, dht.ErrClosed) {
			return
		}
		s.log.Warn("publish failed; retrying", "service", p.spec.Name, "in", backoff, "err", err)
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
func (s *Server) report(p *provision, svc *record.Service, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		p.lastErr = err
		s.log.Warn("publish failed", "service", p.spec.Name, "err", err)
	} else {
		p.last, p.lastErr = svc, nil
		s.log.Info("published", "service", svc.Name, "seq", svc.Seq, "expires", svc.ExpiresAt)
	}
	select {
	case <-p.first:
	default:
		p.firstSvc, p.firstErr = svc, err
		close(p.first)
	}
}

// put makes spec a provided service: it saves the new set, then replaces
// the loop of a service of the same name (case-insensitively) with a new
// one. The returned loop's first publication is under way.
func (s *Server) put(spec dht.Spec) (*provision, *Error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.isClosed() {
		return nil, unavailable()
	}
	k := key(spec.Name)
	specs := append(s.specs(k), spec)
	if err := saveServices(s.servicesPath(), specs); err != nil {
		return nil, internal(err)
	}
	s.mu.Lock()
	old := s.loops[k]
	delete(s.loops, k)
	s.mu.Unlock()
	if old != nil {
		old.stop()
	}
	return s.start(spec), nil
}

// withdraw stops providing name, saves the set without it and publishes
// its tombstone, all under s.opMu, so a provide of the same name comes
// wholly before or after (its record sealed after the tombstone wins). It
// reports whether name was provided.
func (s *Server) withdraw(ctx context.Context, name string) (*record.Service, bool, *Error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.isClosed() {
		return nil, false, unavailable()
	}
	was, e := s.removeLocked(key(name), nil)
	if e != nil {
		return nil, false, e
	}
	tomb, err := s.node.Withdraw(ctx, name)
	if err != nil {
		return nil, was, publishError(err)
	}
	return tomb, was, nil
}

// drop removes p if it is still the loop for its name: its first
// publication failed, so it is not provided.
func (s *Server) drop(p *provision) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if _, err := s.removeLocked(key(p.spec.Name), p); err != nil {
		s.log.Error("dropping a failed service", "service", p.spec.Name, "err", err)
	}
	p.stop()
}

// removeLocked removes the loop filed under k (only if it is want, when
// want is set), saving the set first. s.opMu is held.
func (s *Server) removeLocked(k string, want *provision) (bool, *Error) {
	s.mu.Lock()
	p := s.loops[k]
	s.mu.Unlock()
	if p == nil || (want != nil && p != want) {
		return false, nil
	}
	if err := saveServices(s.servicesPath(), s.specs(k)); err != nil {
		return false, internal(err)
	}
	s.mu.Lock()
	delete(s.loops, k)
	s.mu.Unlock()
	p.stop()
	return true, nil
}

// specs returns the provided services except the one filed under skip.
func (s *Server) specs(skip string) []dht.Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dht.Spec
	for k, p := range s.loops {
		if k != skip {
			out = append(out, p.spec)
		}
	}
	return out
}

// stopAll ends every loop and withdraws, concurrently, each service that
// published in this run; services.json keeps them for the next start. No
// service can be added afterwards.
func (s *Server) stopAll(ctx context.Context) {
	s.opMu.Lock()
	s.mu.Lock()
	s.closed = true
	var live []*provision
	for _, p := range s.loops {
		p.cancel()
		if p.last != nil {
			live = append(live, p)
		}
	}
	s.mu.Unlock()
	s.opMu.Unlock()
	s.wg.Wait()
	var wg sync.WaitGroup
	for _, p := range live {
		wg.Go(func() {
			tomb, err := s.node.Withdraw(ctx, p.spec.Name)
			if err != nil {
				s.log.Warn("not withdrawn at shutdown", "service", p.spec.Name, "err", err)
				return
			}
			s.log.Info("withdrawn at shutdown", "service", tomb.Name, "seq", tomb.Seq)
		})
	}
	wg.Wait()
}

// servicesStatus describes every provided service, sorted by name.
func (s *Server) servicesStatus() []ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceStatus, 0, len(s.loops))
	for _, p := range s.loops {
		st := ServiceStatus{Name: p.spec.Name, Meta: p.spec.Meta, TTL: Duration(p.spec.TTL)}
		if st.Meta == nil {
			st.Meta = map[string]string{}
		}
		if p.last != nil {
			st.Seq, st.PublishedAt, st.ExpiresAt = p.last.Seq, p.last.IssuedAt.UTC(), p.last.ExpiresAt.UTC()
		}
		if p.lastErr != nil {
			st.LastError = p.lastErr.Error()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return strings.Compare(key(a.Name), key(b.Name)) })
	return out
}

// publishError maps an error from publishing or withdrawing to the API
// error a client gets.
func publishError(err error) *Error {
	switch {
	case errors.Is(err, record.ErrBadName):
		return badRequest(CodeInvalidName, err.Error())
	case errors.Is(err, record.ErrBadMetadata):
		return badRequest(CodeInvalidMeta, err.Error())
	case errors.Is(err, record.ErrBadTTL):
		return badRequest(CodeInvalidTTL, err.Error())
	case errors.Is(err, record.ErrOlderSeq):
		return &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: "a newer record for this service was published meanwhile: " + err.Error()}
	case errors.Is(err, dht.ErrNotReady):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Message: err.Error()}
	case errors.Is(err, dht.ErrClosed), errors.Is(err, context.Canceled):
		return unavailable()
	}
	return &Error{Status: http.StatusBadGateway, Code: CodePublishFailed, Message: err.Error()}
}

func unavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: ErrClosed.Error() + ": the daemon is shutting down"}
}

func internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: fmt.Sprintf("internal error: %v", err)}
}
