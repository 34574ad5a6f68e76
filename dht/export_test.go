package dht

import (
	"context"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SetAskWalk sets which walk peers a find asks for records (nil: all).
func SetAskWalk(n *Node, f func(p peer.ID, c cid.Cid) bool) { n.askWalk = f }

// Push offers peer p one signed record over the registry protocol.
func Push(ctx context.Context, n *Node, p peer.ID, env []byte) error { return n.push(ctx, p, env) }
