package dht_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// TestRegistryStreamNormalEndsAreQuiet: a requester that resets its
// registry stream, as every find does once it has its answer, or closes
// it, leaves no line above debug level on the registry; the debug line
// says how the stream ended, not that a message was bad.
func TestRegistryStreamNormalEndsAreQuiet(t *testing.T) {
	ctx := testCtx(t)
	logs := &logBuffer{}
	reg := dhttest.NewNodeOn(t, p2ptest.NewHost(t), "development", dht.ModeServer, func(c *dht.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	client := p2ptest.NewHost(t)
	p2ptest.Connect(t, client, reg.Host())
	proto := registry.Protocol("development")
	c, _ := record.ServiceCID("development", "DatabaseService")
	list := jsonFrame(t, map[string]any{"type": "list", "cid": c.String()})
	for _, end := range []string{"reset", "close"} {
		s, err := client.NewStream(ctx, reg.Host().ID(), proto)
		if err != nil {
			t.Fatalf("open registry stream: %v", err)
		}
		// One request answered, then the stream ends as a finder's does.
		if _, err := s.Write(list); err != nil {
			t.Fatalf("write list: %v", err)
		}
		r := bufio.NewReader(s)
		size, err := binary.ReadUvarint(r)
		if err == nil {
			_, err = io.ReadFull(r, make([]byte, size))
		}
		if err != nil {
			t.Fatalf("read list response: %v", err)
		}
		if end == "reset" {
			s.Reset()
		} else {
			s.Close()
		}
	}
	eventually(t, "a debug line for the reset stream", func() bool {
		return strings.Contains(logs.String(), `msg="registry stream ended" `) && strings.Contains(logs.String(), "reset by the requester")
	})
	for _, l := range strings.Split(logs.String(), "\n") {
		if (strings.Contains(l, "level=INFO") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) &&
			strings.Contains(l, client.ID().String()) {
			t.Errorf("a normal stream end logged above debug: %s", l)
		}
		if strings.Contains(l, registry.ErrBadMessage.Error()) {
			t.Errorf("a normal stream end called a bad message: %s", l)
		}
	}
}
