package registry

import (
	"errors"
	"testing"
)

// FuzzDecodeRequest: the registry-protocol decoder never panics, and what
// it accepts is a list with a CID and either a bounded limit (no cursor)
// or a cursor (FirstPage or a peer ID) and a limit not negative, or a put
// with a record; a bad cursor or negative limit is ErrBadRequest.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":4}`))
	f.Add([]byte(`{"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":100,"cursor":"first"}`))
	f.Add([]byte(`{"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","cursor":"12D3KooWNdPPuKUnWtfUaWe6q2otTzrEuGd7YytF347fMnJbKgDG"}`))
	f.Add([]byte(`{"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","cursor":"12D3"}`))
	f.Add([]byte(`{"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":-1,"cursor":"first"}`))
	f.Add([]byte(`{"type":"put","record":"CgQIARIg"}`))
	f.Add([]byte(`{"type":"put","record":"CgQIARIg","cid":"x"}`))
	f.Add([]byte(`{"type":"put","record":"CgQIARIg","cursor":"first"}`))
	f.Add([]byte(`{"type":"nope"}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, list, err := decodeRequest(b)
		if errors.Is(err, ErrBadRequest) {
			if req.Type != msgList || req.Cursor == "" {
				t.Fatalf("bad request %v for %+v, not a paged list", err, req)
			}
			return
		}
		if err != nil {
			return
		}
		switch req.Type {
		case msgList:
			switch {
			case !list.c.Defined():
				t.Fatalf("accepted list %+v without a cid", req)
			case !list.paged && (req.Limit < 1 || req.Limit > MaxListLimit):
				t.Fatalf("accepted list %+v with limit %d", req, req.Limit)
			case list.paged && (req.Limit < 0 || (req.Cursor == FirstPage) != (list.after == "")):
				t.Fatalf("accepted paged list %+v as %+v", req, list)
			}
		case msgPush:
			if len(req.Record) == 0 || req.Cursor != "" {
				t.Fatalf("accepted put without a record: %+v", req)
			}
		default:
			t.Fatalf("accepted unknown type %q", req.Type)
		}
	})
}

// FuzzDecodeWatchMsg: the watcher's decoder never panics, and what it
// accepts has exactly the fields its type needs: an upsert a record, a
// remove a peer and a known reason (a withdrawn one its tombstone), a
// pending a peer, a drop a short reason.
func FuzzDecodeWatchMsg(f *testing.F) {
	for _, s := range []string{
		`{"type":"upsert","record":"CgQIARIg"}`,
		`{"type":"remove","peer":"12D3KooWNdPPuKUnWtfUaWe6q2otTzrEuGd7YytF347fMnJbKgDG","reason":"unhealthy"}`,
		`{"type":"remove","peer":"12D3KooWNdPPuKUnWtfUaWe6q2otTzrEuGd7YytF347fMnJbKgDG","reason":"withdrawn","record":"CgQIARIg"}`,
		`{"type":"remove","peer":"12D3KooWNdPPuKUnWtfUaWe6q2otTzrEuGd7YytF347fMnJbKgDG","reason":"bored"}`,
		`{"type":"pending","peer":"12D3KooWNdPPuKUnWtfUaWe6q2otTzrEuGd7YytF347fMnJbKgDG"}`,
		`{"type":"synced"}`,
		`{"type":"drop","reason":"slow watcher"}`,
		`{"type":"upsert","record":"CgQIARIg","peer":"x"}`,
		`{"type":"synced"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, p, err := DecodeWatchMsg(b)
		if err != nil {
			return
		}
		switch m.Type {
		case WatchUpsert:
			if len(m.Record) == 0 || p != "" {
				t.Fatalf("accepted upsert %+v", m)
			}
		case WatchRemove:
			known := map[string]bool{ReasonWithdrawn: true, ReasonExpired: true, ReasonUnhealthy: true, ReasonDeregistered: true}
			if p == "" || !known[m.Reason] || (m.Reason == ReasonWithdrawn) != (len(m.Record) > 0) {
				t.Fatalf("accepted remove %+v", m)
			}
		case WatchPending:
			if p == "" || len(m.Record) > 0 || m.Reason != "" {
				t.Fatalf("accepted pending %+v", m)
			}
		case WatchSynced:
			if p != "" || len(m.Record) > 0 || m.Reason != "" {
				t.Fatalf("accepted synced %+v", m)
			}
		case WatchDrop:
			if p != "" || len(m.Record) > 0 || len(m.Reason) > 256 {
				t.Fatalf("accepted drop %+v", m)
			}
		default:
			t.Fatalf("accepted unknown type %q", m.Type)
		}
	})
}

// FuzzDecodeWatchRequest: the registry's decoder of a watch request never
// panics, and what it accepts names a CID.
func FuzzDecodeWatchRequest(f *testing.F) {
	f.Add([]byte(`{"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}`))
	f.Add([]byte(`{"cid":"x"}`))
	f.Add([]byte(`{"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeWatchRequest(b)
		if err == nil && !c.Defined() {
			t.Fatalf("accepted %q without a cid", b)
		}
	})
}
