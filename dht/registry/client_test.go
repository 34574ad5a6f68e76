package registry

import (
	"context"
	"errors"
	"testing"

	"github.com/netget/netget-peer/p2p/p2ptest"
)

// TestOpenNowCancelledSaysSo: a lazy open whose context ends (a find that
// has its answer cancels its other lists) fails with the context's error.
// yamux reports a done context while it sends the new stream's SYN as
// ErrTimeout, "i/o deadline reached", which read like a stalled stream in
// the 200-node benchmark's debug log; it was a list abandoned after the
// find ended.
func TestOpenNowCancelledSaysSo(t *testing.T) {
	hosts := p2ptest.NewHosts(t, 2)
	p2ptest.Connect(t, hosts[0], hosts[1])
	cl := NewClient(hosts[0], Protocol("development"))
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 32 { // yamux picks the SYN slot or ctx.Done at random
		s, err := cl.openNow(ctx, hosts[1].ID())
		if err == nil {
			s.Reset()
			t.Fatalf("attempt %d: open on a cancelled context succeeded", i)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: open on a cancelled context: %v; want it to wrap %v", i, err, context.Canceled)
		}
	}
}
