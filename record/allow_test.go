package record_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// TestAllowList: with an allow-list, a record passes only when its peer is
// allowed for every service or for the record's own, whether the envelope
// is verified afresh or comes from a cache shared with an open validator.
func TestAllowList(t *testing.T) {
	keyAll, all := newKey(t)
	keyDB, db := newKey(t)
	keyOut, out := newKey(t)
	list, err := record.ParseAllowList([]string{all.String(), "databaseservice=" + db.String()})
	if err != nil {
		t.Fatal(err)
	}
	open := record.Validator{Network: "development", Now: func() time.Time { return now }, Cache: newMapCache()}
	closed := open
	closed.Allow = list
	seal := func(key crypto.PrivKey, id peer.ID, name string) []byte {
		s := recordtest.Valid(id, now)
		s.Name = name
		return recordtest.SealRaw(t, s, key)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"allowed for every service", seal(keyAll, all, "OtherService"), nil},
		{"allowed for its service", seal(keyDB, db, "DatabaseService"), nil},
		{"allowed for another service only", seal(keyDB, db, "OtherService"), record.ErrNotAllowed},
		{"not listed", seal(keyOut, out, "DatabaseService"), record.ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := open.Open(tt.data); err != nil {
				t.Fatalf("open validator: %v", err) // the envelope is now cached
			}
			_, err := closed.Open(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("closed validator: got %v, want %v", err, tt.want)
			}
			if tt.want != nil && record.Reason(err) != record.ErrNotAllowed {
				t.Fatalf("Reason(%v) = %v, want ErrNotAllowed", err, record.Reason(err))
			}
		})
	}
}

func TestParseAllowList(t *testing.T) {
	_, id := newKey(t)
	tests := []struct {
		name    string
		entries []string
		want    error
	}{
		{"none", nil, nil},
		{"peer", []string{id.String()}, nil},
		{"service and peer", []string{"DatabaseService=" + id.String()}, nil},
		{"not a peer", []string{"12D3KooWnot"}, record.ErrBadAllowList},
		{"bad service", []string{"bad name!=" + id.String()}, record.ErrBadAllowList},
		{"empty", []string{""}, record.ErrBadAllowList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := record.ParseAllowList(tt.entries)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.entries == nil && (l != nil || !l.Allows("X", id)) {
				t.Fatal("no entries must allow everyone")
			}
		})
	}
}
