package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func TestReason(t *testing.T) {
	a4 := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	a6 := ma.StringCast("/ip6/::1/tcp/1")
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp4", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1},
			Err: os.NewSyscallError("connect", errno)}
	}
	refused, unreach := opErr(syscall.ECONNREFUSED), opErr(syscall.ENETUNREACH)
	dialErr := func(tes ...swarm.TransportError) error {
		// As libp2p's host returns it.
		return fmt.Errorf("failed to dial: %w", &swarm.DialError{DialErrors: tes, Cause: swarm.ErrAllDialsFailed})
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", dialErr(swarm.TransportError{Address: a4, Cause: refused}), "connection refused"},
		{"same cause twice", dialErr(swarm.TransportError{Address: a4, Cause: refused}, swarm.TransportError{Address: a6, Cause: refused}),
			"connection refused"},
		{"causes differ", dialErr(swarm.TransportError{Address: a4, Cause: refused}, swarm.TransportError{Address: a6, Cause: unreach}),
			"/ip4/127.0.0.1/tcp/1: connection refused, /ip6/::1/tcp/1: network is unreachable"},
		{"context kept", dialErr(swarm.TransportError{Address: a4, Cause: fmt.Errorf("security handshake: %w", refused)}),
			"security handshake: dial tcp4 127.0.0.1:1: connect: connection refused"},
		{"no addresses", fmt.Errorf("failed to dial: %w", &swarm.DialError{Cause: swarm.ErrNoAddresses}), "no addresses"},
		{"not a dial error", fmt.Errorf("failed to dial: %w", context.Canceled), "context canceled"},
		{"other", errors.New("identify failed to complete: EOF"), "identify failed to complete: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(tt.err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
