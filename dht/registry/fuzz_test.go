package registry

import (
	"testing"
)

// FuzzDecodeRequest: the registry-protocol decoder never panics, and what
// it accepts is a list with a CID and a bounded limit, or a put with a record.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":4}`))
	f.Add([]byte(`{"type":"put","record":"CgQIARIg"}`))
	f.Add([]byte(`{"type":"put","record":"CgQIARIg","cid":"x"}`))
	f.Add([]byte(`{"type":"nope"}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, c, err := decodeRequest(b)
		if err != nil {
			return
		}
		switch req.Type {
		case msgList:
			if !c.Defined() || req.Limit < 1 || req.Limit > MaxListLimit {
				t.Fatalf("accepted list %+v with cid %v", req, c)
			}
		case msgPush:
			if len(req.Record) == 0 {
				t.Fatalf("accepted put without a record: %+v", req)
			}
		default:
			t.Fatalf("accepted unknown type %q", req.Type)
		}
	})
}
