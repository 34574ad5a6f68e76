package dht

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SetAskWalk sets which walk peers a find asks for records (nil: all).
func SetAskWalk(n *Node, f func(p peer.ID, c cid.Cid) bool) { n.askWalk = f }
