package devnet

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"
)

// page is the devnet's web page: plain HTML, CSS and JavaScript that use
// the handshaker exactly as a user's page would. No build step.
//
//go:embed page
var page embed.FS

// State is what /devnet.json serves: the devnet as its page shows it.
type State struct {
	Network    string          `json:"network"`
	Gateway    string          `json:"gateway"`
	Started    time.Time       `json:"started"`
	Churn      bool            `json:"churn"`
	Registries []RegistryState `json:"registries"`
	Nodes      []NodeState     `json:"nodes"`
}

// RegistryState is one registry and what its health checks found.
type RegistryState struct {
	Peer      string           `json:"peer"`
	Addrs     []string         `json:"addrs"`
	Records   int              `json:"records"`
	Providers []ProviderHealth `json:"providers"`
}

// ProviderHealth is a registry's view of one provider.
type ProviderHealth struct {
	Peer     string `json:"peer"`
	Healthy  bool   `json:"healthy"`
	Failures int    `json:"failures"`
}

// NodeState is one service node.
type NodeState struct {
	Peer    string            `json:"peer"`
	Service string            `json:"service"`
	Meta    map[string]string `json:"meta"`
	State   string            `json:"state"` // running, withdrawn, crashed or stopped
	Since   time.Time         `json:"since"`
}

// State returns the devnet's state now.
func (d *Devnet) State() State {
	st := State{Network: d.cfg.Network, Started: d.started, Churn: d.cfg.Churn > 0}
	if d.gateway != nil {
		st.Gateway = d.gateway.ID().String()
	}
	for _, r := range d.registries {
		rs := RegistryState{Peer: r.ID().String(), Records: r.DHT().StoredRecords(), Providers: []ProviderHealth{}}
		for _, a := range r.Host().Addrs() {
			rs.Addrs = append(rs.Addrs, a.String())
		}
		for _, p := range r.DHT().Providers() {
			rs.Providers = append(rs.Providers, ProviderHealth{Peer: p.Peer.String(), Healthy: p.Healthy, Failures: p.Failures})
		}
		slices.SortFunc(rs.Providers, func(a, b ProviderHealth) int { return strings.Compare(a.Peer, b.Peer) })
		st.Registries = append(st.Registries, rs)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.nodes {
		st.Nodes = append(st.Nodes, NodeState{Peer: m.id.String(), Service: m.spec.Name, Meta: m.spec.Meta, State: m.state, Since: m.since})
	}
	return st
}

// Handler serves the devnet page at / (with its assets under /devnet/) and
// the devnet's state at /devnet.json. The bridge mounts it for the paths it
// does not serve itself, so the page and the handshaker share an origin.
func (d *Devnet) Handler() http.Handler {
	assets, _ := fs.Sub(page, "page") // page is embedded: Sub cannot fail
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, assets, "index.html")
	})
	mux.Handle("GET /devnet/", http.StripPrefix("/devnet/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /devnet.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(d.State())
	})
	return mux
}
