package bridge

import (
	"fmt"
	"testing"
	"time"
)

// TestTokenBackoffTable: each wrong token in a row doubles the bar up to
// the max; a right token, or a quiet max after the bar, starts over; the
// table never holds more than its size.
func TestTokenBackoffTable(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig("p", "development")
	cfg.TokenBackoff, cfg.MaxTokenBackoff, cfg.MaxTrackedAddrs = time.Second, time.Minute, 3
	b := newTokenBackoff(&cfg, func() time.Time { return now })

	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, w := range want {
		if got := b.fail("10.0.0.1"); got != w*time.Second {
			t.Fatalf("wrong token %d: barred %s, want %s", i+1, got, w*time.Second)
		}
	}
	if got := b.barred("10.0.0.1"); got != time.Minute {
		t.Fatalf("barred: %s, want 1m", got)
	}
	if got := b.barred("10.0.0.2"); got != 0 {
		t.Fatalf("another address barred %s", got)
	}
	now = now.Add(time.Minute)
	if got := b.barred("10.0.0.1"); got != 0 {
		t.Fatalf("after the bar: barred %s", got)
	}
	if got := b.fail("10.0.0.1"); got != time.Minute {
		t.Fatalf("a wrong token right after the bar: %s, want the max", got)
	}
	now = now.Add(2 * time.Minute) // quiet for the max after the bar
	if got := b.fail("10.0.0.1"); got != time.Second {
		t.Fatalf("after a quiet max: %s, want 1s", got)
	}
	b.succeed("10.0.0.1")
	if got := b.fail("10.0.0.1"); got != time.Second {
		t.Fatalf("after a right token: %s, want 1s", got)
	}
	for i := range 10 { // a bounded flood of addresses
		b.fail(fmt.Sprint("10.0.1.", i))
		if n := b.tracked(); n > cfg.MaxTrackedAddrs {
			t.Fatalf("table holds %d addresses, max %d", n, cfg.MaxTrackedAddrs)
		}
	}
}

// TestAddrKey: IPv4 addresses count alone, IPv6 ones by /64.
func TestAddrKey(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"127.0.0.1:4000", "127.0.0.1"},
		{"127.0.0.2:4000", "127.0.0.2"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := addrKey(tt.remote); got != tt.want {
			t.Errorf("addrKey(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
