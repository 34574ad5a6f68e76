package bridge

import (
	"bytes"
	"slices"
	"strconv"
	"time"

	"github.com/netget/netget-peer/record"
)

// appendResult appends the result frame for r under id to b, byte for
// byte what Marshal(&ResultFrame{…}) writes, without reflection: the
// bridge sends one per provider found, and encoding/json was the frame's
// largest cost after the socket (see the README's bridge figures). The
// record's JSON comes from c (nil: encoded here each time). It reports
// false, leaving b as it was, when a field needs JSON's escaping or a rule
// this encoder does not copy (a string outside printable ASCII or with
// "\<>&, a float in exponent form, a year outside 0-9999); the caller
// then uses Marshal. TestAppendResult keeps the two identical.
func appendResult(b []byte, id string, r Result, c *recordCache) ([]byte, bool) {
	elapsed := float64(r.Elapsed.Microseconds()) / 1000
	if !plain(id) || !plain(r.Source) || (elapsed != 0 && abs(elapsed) < 1e-6) || abs(elapsed) >= 1e21 {
		return b, false
	}
	n := len(b)
	b = append(b, `{"type":"result","id":"`...)
	b = append(b, id...)
	b = append(b, `","record":`...)
	b, ok := c.appendRecord(b, r.Record)
	if !ok {
		return b[:n], false
	}
	if r.Source != "" { // omitempty
		b = append(b, `,"source":"`...)
		b = append(b, r.Source...)
		b = append(b, '"')
	}
	b = append(b, `,"elapsed_ms":`...)
	b = strconv.AppendFloat(b, elapsed, 'f', -1, 64)
	return append(b, '}'), true
}

// appendView appends the JSON object of v to b, byte for byte what
// encoding/json writes for it; false, leaving b as it was, when a string
// needs JSON's escaping or a time's year is outside 0-9999.
func appendView(b []byte, v record.View) ([]byte, bool) {
	if !plain(v.Peer) || !plain(v.Service) || !plain(v.Network) || !plainTime(v.IssuedAt) || !plainTime(v.ExpiresAt) {
		return b, false
	}
	for _, a := range v.Addrs {
		if !plain(a) {
			return b, false
		}
	}
	for k, val := range v.Meta {
		if !plain(k) || !plain(val) {
			return b, false
		}
	}
	b = append(b, `{"peer":"`...)
	b = append(b, v.Peer...)
	b = append(b, `","service":"`...)
	b = append(b, v.Service...)
	b = append(b, `","network":"`...)
	b = append(b, v.Network...)
	b = append(b, `","addrs":[`...)
	for i, a := range v.Addrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, a)
	}
	b = append(b, `],"meta":{`...)
	keys := make([]string, 0, len(v.Meta))
	for k := range v.Meta {
		keys = append(keys, k)
	}
	slices.Sort(keys) // encoding/json sorts map keys
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, k)
		b = append(b, ':')
		b = appendQuoted(b, v.Meta[k])
	}
	b = append(b, `},"seq":`...)
	b = strconv.AppendUint(b, v.Seq, 10)
	b = append(b, `,"issued_at":"`...)
	b = v.IssuedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","expires_at":"`...)
	b = v.ExpiresAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), true
}

// appendDone appends the done frame of find id to b, byte for byte what
// Marshal(&DoneFrame{…}) writes; false, leaving b as it was, when id
// needs JSON's escaping. TestAppendDone keeps the two identical.
func appendDone(b []byte, id string, count int, cancelled bool) ([]byte, bool) {
	if !plain(id) {
		return b, false
	}
	b = append(b, `{"type":"done","id":"`...)
	b = append(b, id...)
	b = append(b, `","count":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	if cancelled { // omitempty
		b = append(b, `,"cancelled":true`...)
	}
	return append(b, '}'), true
}

// plain reports whether s is printable ASCII that encoding/json writes
// as is: no quote, backslash or HTML character it escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// plainTime reports whether encoding/json writes t as RFC 3339 (it
// refuses years outside 0-9999).
func plainTime(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// parseFindFast decodes the find frame pages send (the handshaker writes
// {"type":"find","id":…,"service":…} and then, if set, "limit" and
// "timeout_ms", in that order, without spaces) without reflection: the
// bridge reads one per find, and encoding/json decoded each twice (its
// type, then the frame). It reports false for anything else — other key
// orders or spellings, spaces, escapes, an id or service the checks would
// refuse, numbers with signs, fractions, exponents, leading zeros or over
// 15 digits — and the caller parses as before; what it accepts it decodes
// exactly as ParseClientFrame's JSON path does (FuzzParseFindFast).
func parseFindFast(b []byte) (*FindFrame, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"type":"find","id":"`))
	if !ok {
		return nil, false
	}
	id, rest, ok := cutString(rest)
	if !ok || checkID(id) != nil {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"service":"`)); !ok {
		return nil, false
	}
	service, rest, ok := cutString(rest)
	if !ok || record.ValidateName(service) != nil {
		return nil, false
	}
	f := &FindFrame{Type: TypeFind, ID: id, Service: service}
	var limit int64
	if rest, limit, ok = cutNumber(rest, `,"limit":`); !ok {
		return nil, false
	}
	f.Limit = int(limit)
	if rest, f.TimeoutMS, ok = cutNumber(rest, `,"timeout_ms":`); !ok || string(rest) != "}" {
		return nil, false
	}
	return f, true
}

// cutString returns the JSON string at the start of b, whose opening quote
// was consumed, and the rest after its closing quote; false when it holds
// a byte JSON would escape or unescape (a backslash, a control byte) or
// one outside ASCII.
func cutString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return string(b[:i]), b[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", nil, false
		}
	}
	return "", nil, false
}

// cutNumber reads key and a non-negative integer of at most 15 digits
// without a leading zero from the start of b, if b starts with key; it
// returns b unchanged and 0 when it does not. False when key is there but
// its number is not plain.
func cutNumber(b []byte, key string) ([]byte, int64, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(key))
	if !ok {
		return b, 0, true
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 15 || (n > 1 && rest[0] == '0') {
		return nil, 0, false
	}
	v, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	return rest[n:], v, err == nil
}
