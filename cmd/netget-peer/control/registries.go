package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	netget "github.com/netget/netget-peer"
)

// Registrar is what the registry routes need of the daemon's node; a
// *netget.Node is one. Adding a registry connects to it, pushes the
// node's records to it and, in the daemon, keeps it in the data dir's
// registries.json for the next start.
type Registrar interface {
	AddRegistry(ctx context.Context, addr ma.Multiaddr) (peer.ID, error)
	RemoveRegistry(p peer.ID) error
	Registries() []netget.RegistryStatus
}

// RegistryAddRequest is POST /v1/registries/add's body.
type RegistryAddRequest struct {
	// Addr is the registry's full multiaddr, ending in /p2p/<peer ID>.
	Addr string `json:"addr"`
}

// RegistryRemoveRequest is POST /v1/registries/remove's body.
type RegistryRemoveRequest struct {
	// Peer is the registry's peer ID.
	Peer string `json:"peer"`
}

// Registry is one registry of the daemon's node.
type Registry struct {
	Peer string `json:"peer"`
	// Addrs are the addresses the node is connected to it on now.
	Addrs []string `json:"addrs"`
	// Connected says whether the node is connected to it now.
	Connected bool `json:"connected"`
}

// RegistriesResponse is the answer of GET /v1/registries and of both
// changes: the node's registries afterwards, sorted by peer ID.
type RegistriesResponse struct {
	// Peer is the registry added or removed; empty for GET.
	Peer       string     `json:"peer,omitempty"`
	Registries []Registry `json:"registries"`
}

// registryRoutes adds the registry routes to mux when the server has a
// Registrar.
func (s *Server) registryRoutes(mux *http.ServeMux) {
	if s.cfg.Registries == nil {
		return
	}
	mux.HandleFunc("GET /v1/registries", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.registries(""))
	})
	mux.HandleFunc("POST /v1/registries/add", call(s, s.addRegistry))
	mux.HandleFunc("POST /v1/registries/remove", call(s, s.removeRegistry))
}

func (s *Server) addRegistry(ctx context.Context, req RegistryAddRequest) (*RegistriesResponse, *Error) {
	addr, err := ma.NewMultiaddr(req.Addr)
	if err != nil {
		return nil, badRequest(CodeBadRegistry, fmt.Sprintf("registry address %q: %v (want /ip4/…/tcp/…/p2p/<peer ID>)", req.Addr, err))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	id, err := s.cfg.Registries.AddRegistry(ctx, addr)
	if err != nil {
		return nil, registryError(err)
	}
	resp := s.registries(id.String())
	return &resp, nil
}

func (s *Server) removeRegistry(_ context.Context, req RegistryRemoveRequest) (*RegistriesResponse, *Error) {
	id, err := peer.Decode(req.Peer)
	if err != nil {
		return nil, badRequest(CodeBadRegistry, fmt.Sprintf("registry peer %q: %v", req.Peer, err))
	}
	if err := s.cfg.Registries.RemoveRegistry(id); err != nil {
		return nil, registryError(err)
	}
	resp := s.registries(id.String())
	return &resp, nil
}

// registries is the node's registries, sorted by peer ID.
func (s *Server) registries(changed string) RegistriesResponse {
	resp := RegistriesResponse{Peer: changed, Registries: []Registry{}}
	for _, r := range s.cfg.Registries.Registries() {
		reg := Registry{Peer: r.Peer.String(), Addrs: []string{}, Connected: r.Connected}
		for _, a := range r.Addrs {
			reg.Addrs = append(reg.Addrs, a.String())
		}
		resp.Registries = append(resp.Registries, reg)
	}
	slices.SortFunc(resp.Registries, func(a, b Registry) int { return strings.Compare(a.Peer, b.Peer) })
	return resp
}

// registryError maps an error from adding or removing a registry to the
// API error a client gets.
func registryError(err error) *Error {
	switch {
	case errors.Is(err, netget.ErrBadRegistry):
		return badRequest(CodeBadRegistry, err.Error())
	case errors.Is(err, netget.ErrUnknownRegistry):
		return &Error{Status: http.StatusNotFound, Code: CodeUnknownRegistry, Message: err.Error()}
	case errors.Is(err, netget.ErrClosed):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: err.Error()}
	}
	return &Error{Status: http.StatusBadGateway, Code: CodeUnreachable, Message: err.Error()}
}

// Registries returns the daemon's registries (GET /v1/registries).
func (c *Client) Registries(ctx context.Context) (*RegistriesResponse, error) {
	var resp RegistriesResponse
	if err := c.do(ctx, http.MethodGet, "/v1/registries", nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// AddRegistry asks the daemon to add the registry at addr; it answers once
// the registry is connected and kept, or with an *Error.
func (c *Client) AddRegistry(ctx context.Context, addr string) (*RegistriesResponse, error) {
	var resp RegistriesResponse
	if err := c.do(ctx, http.MethodPost, "/v1/registries/add", RegistryAddRequest{Addr: addr}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// RemoveRegistry asks the daemon to stop using registry p.
func (c *Client) RemoveRegistry(ctx context.Context, p string) (*RegistriesResponse, error) {
	var resp RegistriesResponse
	if err := c.do(ctx, http.MethodPost, "/v1/registries/remove", RegistryRemoveRequest{Peer: p}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
