package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// BenchmarkFindParts times, one goroutine at a time and without a
// socket, the pieces of user-space work the bridge does for a find that
// the canned echo of BenchmarkBridge does not: what the bridge's CPU above
// the echo's is made of (the README's bridge figures). Uncontended and
// cache-warm, they are lower bounds: on the benchmark's two busy cores
// each costs more.
//
//	go test -run '^$' -bench 'BenchmarkFindParts' ./bridge/
func BenchmarkFindParts(b *testing.B) {
	_, peer := recordtest.NewKey(b)
	now := time.Now().UTC().Truncate(time.Second)
	rec := &record.Service{Version: record.Version, Network: "development", Name: "DatabaseService", Peer: peer,
		Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Meta: map[string]string{"replica": "0"}, Seq: 1,
		IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
	r := Result{Record: rec, Source: "registry", Elapsed: 3 * time.Microsecond}
	frame := []byte(`{"type":"find","id":"123456","service":"DatabaseService"}`)
	buf := make([]byte, 0, 1024)
	b.Run("parse-find", func(b *testing.B) {
		for range b.N {
			parseFindFast(frame)
		}
	})
	b.Run("encode-result-afresh", func(b *testing.B) {
		for range b.N {
			buf, _ = appendResult(buf[:0], "123456", r, nil)
		}
	})
	b.Run("encode-result-cached", func(b *testing.B) {
		c := newRecordCache(DefaultRecordCache)
		for range b.N {
			buf, _ = appendResult(buf[:0], "123456", r, c)
		}
	})
	b.Run("encode-done", func(b *testing.B) {
		for range b.N {
			buf, _ = appendDone(buf[:0], "123456", 1, false)
		}
	})
	b.Run("find-context", func(b *testing.B) { // the bridge's WithCancel and a Finder's WithTimeout under it
		session, cancel := context.WithCancel(context.Background())
		defer cancel()
		for range b.N {
			fctx, fcancel := context.WithCancel(session)
			tctx, tcancel := context.WithTimeout(fctx, 10*time.Second)
			_ = tctx.Err()
			tcancel()
			fcancel()
		}
	})
	b.Run("handover-timer", func(b *testing.B) { // a Reset and a Stop a find
		t := time.AfterFunc(time.Hour, func() {})
		defer t.Stop()
		for range b.N {
			t.Reset(inlineFindGrace)
			t.Stop()
		}
	})
	b.Run("locks-and-counters", func(b *testing.B) { // s.mu four times, five counters
		var mu sync.Mutex
		var c counters
		m := map[string]*inflight{}
		st := &inflight{}
		for range b.N {
			mu.Lock()
			_ = m["123456"]
			mu.Unlock()
			mu.Lock()
			m["123456"] = st
			mu.Unlock()
			mu.Lock()
			delete(m, "123456")
			mu.Unlock()
			mu.Lock()
			_ = time.Now()
			mu.Unlock()
			c.findsRunning.Add(1)
			c.finds.Add(1)
			c.results.Add(1)
			c.findsRunning.Add(-1)
			var a atomic.Int64
			a.Store(1)
		}
	})
}
