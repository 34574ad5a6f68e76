package record_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/netget/netget-peer/record"
)

// TestValidateTTL: one lifetime rule, 1s to 24h, for every layer.
func TestValidateTTL(t *testing.T) {
	tests := []struct {
		ttl time.Duration
		ok  bool
	}{
		{-time.Second, false}, {0, false}, {time.Millisecond, false}, {999 * time.Millisecond, false},
		{time.Second, true}, {time.Hour, true}, {record.MaxTTL, true}, {record.MaxTTL + 1, false},
	}
	for _, tt := range tests {
		err := record.ValidateTTL(tt.ttl)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, record.ErrBadTTL)) {
			t.Errorf("ValidateTTL(%s): got %v, want ok=%v", tt.ttl, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "want between 1s and 24h0m0s") {
			t.Errorf("ValidateTTL(%s): %q does not say what it wants", tt.ttl, err)
		}
	}
}

// TestValidateMeta: counts and sizes, named in the error.
func TestValidateMeta(t *testing.T) {
	many := map[string]string{}
	for i := range record.MaxMetaPairs + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		name string
		meta map[string]string
		want string // "" means valid
	}{
		{"none", nil, ""},
		{"commas kept", map[string]string{"tags": "a,b"}, ""},
		{"empty key", map[string]string{"": "v"}, "want 1-64 bytes"},
		{"long key", map[string]string{strings.Repeat("k", 65): "v"}, "want 1-64 bytes"},
		{"long value", map[string]string{"k": strings.Repeat("v", 513)}, `value of "k": 513 bytes`},
		{"too many", many, "33 pairs, at most 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := record.ValidateMeta(tt.meta)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, record.ErrBadMetadata) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrBadMetadata saying %q", err, tt.want)
			}
		})
	}
}
