package dht

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Push offers peer p one signed record over the registry protocol.
func Push(ctx context.Context, n *Node, p peer.ID, env []byte) error { return n.push(ctx, p, env) }
