package record

import "time"

// View is the one JSON shape of a found record: find --json, the daemon's
// control API (its find stream) and the bridge's result frames all carry
// it, so the service is "service" and the provider "peer" everywhere. It
// is what a reader needs of a record the finder has verified, not the
// signed payload (Service), which only travels inside envelopes. Fields
// are only ever added.
type View struct {
	Peer      string            `json:"peer"`
	Service   string            `json:"service"`
	Network   string            `json:"network"`
	Addrs     []string          `json:"addrs"`
	Meta      map[string]string `json:"meta"`
	Seq       uint64            `json:"seq"`
	IssuedAt  time.Time         `json:"issued_at"`
	ExpiresAt time.Time         `json:"expires_at"`
}

// ViewOf returns s's view: times in UTC, and addrs and meta never null in
// JSON (empty instead).
func ViewOf(s *Service) View {
	meta := s.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	addrs := s.Addrs
	if addrs == nil {
		addrs = []string{}
	}
	return View{Peer: s.Peer.String(), Service: s.Name, Network: s.Network, Addrs: addrs,
		Meta: meta, Seq: s.Seq, IssuedAt: s.IssuedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC()}
}
