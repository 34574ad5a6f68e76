package channel

import (
	"context"
	"crypto/subtle"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Filter is a provider's own allow-lists, checked before anything reaches
// the service: an empty list allows everyone; a non-empty one only what it
// names. A channel refused by it gets CodeForbidden.
type Filter struct {
	// Origins are the web origins allowed (scheme://host[:port], compared
	// case-insensitively), as the bridge checked them. A channel from a
	// Go program or the CLI has no origin and is refused by a non-empty
	// list.
	Origins []string
	// Tokens are the tokens allowed (compared in constant time).
	Tokens []string
	// Peers are the opener peers allowed (for a web page: its bridge).
	Peers []peer.ID
}

// Check returns a *RefusedError with CodeForbidden when cl is not allowed.
func (f Filter) Check(cl Claims) error {
	if len(f.Origins) > 0 && !slices.ContainsFunc(f.Origins, func(o string) bool { return strings.EqualFold(o, cl.Origin) }) {
		if cl.Origin == "" {
			return Refuse(CodeForbidden, "this service takes channels from allowed web origins only")
		}
		return Refuse(CodeForbidden, "origin %.64s not allowed", cl.Origin)
	}
	if len(f.Tokens) > 0 && !tokenAllowed(f.Tokens, cl.Token) {
		if cl.Token == "" {
			return Refuse(CodeForbidden, "a token is required")
		}
		return Refuse(CodeForbidden, "token not allowed")
	}
	if len(f.Peers) > 0 && !slices.Contains(f.Peers, cl.Peer) {
		return Refuse(CodeForbidden, "peer %s not allowed", cl.Peer)
	}
	return nil
}

// tokenAllowed compares tok with every allowed token in constant time.
func tokenAllowed(allowed []string, tok string) bool {
	ok := 0
	for _, a := range allowed {
		ok |= subtle.ConstantTimeCompare([]byte(a), []byte(tok))
	}
	return ok == 1
}

// Wrap returns a Handler that refuses what f does not allow and passes the
// rest to h.
func (f Filter) Wrap(h Handler) Handler {
	return func(ctx context.Context, cl Claims) (ServeFunc, error) {
		if err := f.Check(cl); err != nil {
			return nil, err
		}
		return h(ctx, cl)
	}
}
