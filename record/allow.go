package record

import (
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// AllowList says whose records a closed network accepts: providers allowed
// for every service, and providers allowed for one service (by name,
// case-insensitively). A list with any entry is closed: a record passes
// only if its peer is allowed for every service or for the record's
// service. A nil list allows everyone. It is immutable once built, so
// validators on many goroutines may share it.
type AllowList struct {
	any      map[peer.ID]struct{}
	services map[string]map[peer.ID]struct{} // by lowercased name
}

// ParseAllowList builds an allow-list from entries "PEERID" (allowed for
// every service) or "Service=PEERID" (allowed for that service). No
// entries give a nil list: everyone is allowed.
func ParseAllowList(entries []string) (*AllowList, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	l := &AllowList{any: make(map[peer.ID]struct{}), services: make(map[string]map[peer.ID]struct{})}
	for _, e := range entries {
		name, id, scoped := strings.Cut(strings.TrimSpace(e), "=")
		if !scoped {
			id, name = name, ""
		}
		p, err := peer.Decode(strings.TrimSpace(id))
		if err != nil {
			return nil, fmt.Errorf("%w %q: want PEERID or Service=PEERID: %w", ErrBadAllowList, e, err)
		}
		if !scoped {
			l.any[p] = struct{}{}
			continue
		}
		if err := ValidateName(name); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadAllowList, e, err)
		}
		key := strings.ToLower(name)
		if l.services[key] == nil {
			l.services[key] = make(map[peer.ID]struct{})
		}
		l.services[key][p] = struct{}{}
	}
	return l, nil
}

// Allows reports whether p's records for service name pass the list.
func (l *AllowList) Allows(name string, p peer.ID) bool {
	if l == nil {
		return true
	}
	if _, ok := l.any[p]; ok {
		return true
	}
	_, ok := l.services[strings.ToLower(name)][p]
	return ok
}

// check returns ErrNotAllowed unless the list allows s.
func (l *AllowList) check(s *Service) error {
	if l.Allows(s.Name, s.Peer) {
		return nil
	}
	return fmt.Errorf("%w: %s for %s", ErrNotAllowed, s.Peer, s.Name)
}
