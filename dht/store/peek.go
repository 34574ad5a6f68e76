package store

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// payloadPeek is what Load reads of a record's JSON payload: its scalar
// fields; addresses and metadata are skipped, not built.
type payloadPeek struct {
	Network   string    `json:"network"`
	Name      string    `json:"name"`
	Peer      string    `json:"peer"`
	Seq       uint64    `json:"seq"`
	ExpiresAt time.Time `json:"expires_at"`
	Withdrawn bool      `json:"withdrawn"`
}

// decodePeek reads b into p: by hand for the plain JSON object
// record.Service's MarshalRecord writes (keys as written, strings without
// escapes), which is every record this node stored; anything else (an
// escape, a key in another case, odd spacing) goes to encoding/json,
// which decides. Either way the result is the same (FuzzDecodePeek).
// Start-up spent a third of its time in encoding/json's reflection here.
func decodePeek(b []byte, p *payloadPeek) error {
	if peekFast(b, p) {
		return nil
	}
	*p = payloadPeek{}
	return json.Unmarshal(b, p)
}

// peekFast is decodePeek's hand decoder; false: let encoding/json decide.
func peekFast(b []byte, p *payloadPeek) bool {
	*p = payloadPeek{}
	s := string(b) // no copy escapes: substrings of s are copied where kept
	i := 0
	if !strings.HasPrefix(s, "{") {
		return false
	}
	i++
	if strings.HasPrefix(s[i:], "}") {
		return i+1 == len(s)
	}
	for {
		key, n, ok := plainString(s[i:])
		if !ok || n >= len(s)-i || s[i+n] != ':' {
			return false
		}
		i += n + 1
		n, ok = p.field(key, s[i:])
		if !ok {
			return false
		}
		i += n
		switch {
		case i < len(s) && s[i] == ',':
			i++
		case i+1 == len(s) && s[i] == '}':
			return true
		default:
			return false
		}
	}
}

// field reads the value of key at the start of s into p, or skips it; it
// returns the value's length.
func (p *payloadPeek) field(key, s string) (int, bool) {
	switch key {
	case "network", "name", "peer":
		v, n, ok := plainString(s)
		if !ok {
			return 0, false
		}
		v = strings.Clone(v)
		switch key {
		case "network":
			p.Network = v
		case "name":
			p.Name = v
		default:
			p.Peer = v
		}
		return n, true
	case "seq":
		n, ok := jsonInt(s)
		if !ok || s[0] == '-' {
			return 0, false
		}
		seq, err := strconv.ParseUint(s[:n], 10, 64)
		p.Seq = seq
		return n, err == nil
	case "expires_at":
		_, n, ok := plainString(s)
		if !ok || p.ExpiresAt.UnmarshalJSON([]byte(s[:n])) != nil {
			return 0, false
		}
		return n, true
	case "withdrawn":
		switch {
		case strings.HasPrefix(s, "true"):
			p.Withdrawn = true
			return 4, true
		case strings.HasPrefix(s, "false"):
			p.Withdrawn = false
			return 5, true
		}
		return 0, false
	case "v", "addrs", "meta", "issued_at":
		return skipValue(s)
	}
	return 0, false // unknown (or another case of a known one): encoding/json decides
}

// plainString reads a JSON string without escapes or control characters at
// the start of s: its contents and its length with the quotes.
func plainString(s string) (string, int, bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", 0, false
	}
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[1:j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", 0, false
		}
	}
	return "", 0, false
}

// skipValue returns the length of the JSON value at the start of s, as
// MarshalRecord writes the fields Load skips: a number, a plain string, or
// an array or object of plain strings (null for either).
func skipValue(s string) (int, bool) {
	switch {
	case strings.HasPrefix(s, "null"):
		return 4, true
	case strings.HasPrefix(s, `"`):
		_, n, ok := plainString(s)
		return n, ok
	case strings.HasPrefix(s, "["), strings.HasPrefix(s, "{"):
		closing, obj := byte(']'), s[0] == '{'
		if obj {
			closing = '}'
		}
		i := 1
		if i < len(s) && s[i] == closing {
			return i + 1, true
		}
		for {
			_, n, ok := plainString(s[i:])
			if !ok {
				return 0, false
			}
			i += n
			if obj {
				if i >= len(s) || s[i] != ':' {
					return 0, false
				}
				if _, n, ok = plainString(s[i+1:]); !ok {
					return 0, false
				}
				i += 1 + n
			}
			switch {
			case i < len(s) && s[i] == ',':
				i++
			case i < len(s) && s[i] == closing:
				return i + 1, true
			default:
				return 0, false
			}
		}
	}
	return jsonInt(s)
}

// jsonInt returns the length of the JSON integer at the start of s
// (-?(0|[1-9][0-9]*), not followed by a fraction or exponent).
func jsonInt(s string) (int, bool) {
	n := 0
	if n < len(s) && s[n] == '-' {
		n++
	}
	digits := n
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	switch {
	case n == digits, n-digits > 1 && s[digits] == '0':
		return 0, false
	case n < len(s) && strings.ContainsRune(".eE", rune(s[n])):
		return 0, false
	}
	return n, true
}
