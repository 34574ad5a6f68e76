package store

import (
	"crypto/sha256"
	"testing"

	"github.com/netget/netget-peer/record"
)

// TestVerifiedCacheForgetsOldest: a full cache forgets its oldest entry,
// and adding a record it holds changes nothing.
func TestVerifiedCacheForgetsOldest(t *testing.T) {
	var c record.Cache = newCache(2)
	sum := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	for _, k := range []string{"a", "b", "a", "c"} {
		c.Add(sum(k), &record.Service{Name: k})
	}
	for k, want := range map[string]bool{"a": false, "b": true, "c": true} {
		s, ok := c.Get(sum(k))
		if ok != want || (ok && s.Name != k) {
			t.Errorf("Get(%q): %v, %v; want held = %v", k, s, ok, want)
		}
	}
}
