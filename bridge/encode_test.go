package bridge

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// TestAppendResult: the hand-written result encoder writes exactly what
// Marshal writes, and declines (so the caller falls back to Marshal)
// whenever JSON would escape something.
func TestAppendResult(t *testing.T) {
	if n := reflect.TypeOf(record.View{}).NumField(); n != 8 {
		t.Fatalf("record.View has %d fields, appendResult encodes 8: teach it the new ones", n)
	}
	if n := reflect.TypeOf(ResultFrame{}).NumField(); n != 5 {
		t.Fatalf("ResultFrame has %d fields, appendResult encodes 5: teach it the new ones", n)
	}
	_, peer := recordtest.NewKey(t)
	issued := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	base := func() *record.Service {
		return &record.Service{Version: record.Version, Network: "development", Name: "DatabaseService", Peer: peer,
			Addrs: []string{"/ip4/10.0.0.7/tcp/4001", "/ip4/10.0.0.7/udp/4001/quic-v1"},
			Meta:  map[string]string{"region": "eu-west", "engine": "postgres", "a": ""}, Seq: 1777636800000000,
			IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}
	}
	cases := []struct {
		name    string
		id      string
		edit    func(*record.Service)
		source  string
		elapsed time.Duration
		fast    bool // appendResult encodes it itself
	}{
		{"golden-like", "f1", nil, "registry", 420 * time.Microsecond, true},
		{"no source, zero elapsed", "x", nil, "", 0, true},
		{"nil addrs and meta", "f2", func(s *record.Service) { s.Addrs, s.Meta = nil, nil }, "walk", time.Second, true},
		{"local time zone", "f3", func(s *record.Service) {
			s.IssuedAt = s.IssuedAt.In(time.FixedZone("x", 3600))
		}, "dht", 3 * time.Millisecond, true},
		{"long elapsed", "f4", nil, "registry", 90 * time.Minute, true},
		{"negative elapsed", "f5", nil, "registry", -time.Millisecond, true},
		{"html in id", "<&>", nil, "registry", time.Millisecond, false},
		{"quote in id", `a"b`, nil, "registry", time.Millisecond, false},
		{"backslash in meta", "f6", func(s *record.Service) { s.Meta["k"] = `c:\x` }, "registry", 0, false},
		{"unicode in meta", "f7", func(s *record.Service) { s.Meta["k"] = "é\u2028" }, "registry", 0, false},
		{"control in addr", "f8", func(s *record.Service) { s.Addrs = []string{"a\nb"} }, "registry", 0, false},
		{"year 10000", "f9", func(s *record.Service) { s.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
			"registry", 0, false},
		{"sub-nanosecond elapsed", "f10", nil, "registry", time.Nanosecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			if tc.edit != nil {
				tc.edit(s)
			}
			r := Result{Record: s, Source: tc.source, Elapsed: tc.elapsed}
			want, wantErr := Marshal(&ResultFrame{ID: tc.id, Record: recordOf(s), Source: tc.source,
				ElapsedMS: float64(tc.elapsed.Microseconds()) / 1000})
			prefix := []byte("kept")
			got, ok := appendResult(prefix, tc.id, r, nil)
			if ok != tc.fast {
				t.Fatalf("appendResult ok = %v, want %v", ok, tc.fast)
			}
			if !bytes.HasPrefix(got, []byte("kept")) {
				t.Fatalf("appendResult lost what b held: %q", got)
			}
			if !ok {
				if string(got) != "kept" {
					t.Fatalf("declined but appended: %q", got)
				}
				return
			}
			if wantErr != nil {
				t.Fatalf("Marshal: %v", wantErr)
			}
			if got := got[len("kept"):]; !bytes.Equal(got, want) {
				t.Fatalf("appendResult:\n got %s\nwant %s", got, want)
			}
			c := newRecordCache(4)
			for _, pass := range []string{"encoded into the cache", "from the cache"} {
				if got, ok := appendResult(nil, tc.id, r, c); !ok || !bytes.Equal(got, want) {
					t.Fatalf("appendResult %s: ok %v\n got %s\nwant %s", pass, ok, got, want)
				}
			}
		})
	}
}

// FuzzAppendResult: for any strings and numbers, appendResult either
// declines or writes exactly what Marshal writes.
func FuzzAppendResult(f *testing.F) {
	f.Add("f1", "DatabaseService", "/ip4/10.0.0.7/tcp/4001", "engine", "postgres", "registry", int64(420000), uint64(1))
	f.Add("<", "a\"b", "é", "\\", "\u2028", "", int64(-1), uint64(1<<63))
	_, peer := recordtest.NewKey(f)
	f.Fuzz(func(t *testing.T, id, name, addr, k, v, source string, elapsed int64, seq uint64) {
		now := time.Date(2026, 5, 1, 12, 0, 0, int(elapsed%1e9+1e9)%1e9, time.UTC)
		s := &record.Service{Network: "development", Name: name, Peer: peer, Addrs: []string{addr},
			Meta: map[string]string{k: v, "z": v}, Seq: seq, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		d := time.Duration(elapsed)
		got, ok := appendResult(nil, id, Result{Record: s, Source: source, Elapsed: d}, nil)
		c := newRecordCache(1)
		for range 2 { // encoded into the cache, then from it
			if cached, cok := appendResult(nil, id, Result{Record: s, Source: source, Elapsed: d}, c); cok != ok ||
				!bytes.Equal(cached, got) {
				t.Fatalf("with the record cache: ok %v, %s; without: ok %v, %s", cok, cached, ok, got)
			}
		}
		if !ok {
			return
		}
		want, err := Marshal(&ResultFrame{ID: id, Record: recordOf(s), Source: source,
			ElapsedMS: float64(d.Microseconds()) / 1000})
		if err != nil {
			t.Fatalf("appendResult encoded what Marshal refuses (%v): %s", err, got)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendResult:\n got %s\nwant %s", got, want)
		}
	})
}

// TestAppendDone: the done encoder writes exactly what Marshal writes, or
// declines when the id needs escaping.
func TestAppendDone(t *testing.T) {
	if n := reflect.TypeOf(DoneFrame{}).NumField(); n != 4 {
		t.Fatalf("DoneFrame has %d fields, appendDone encodes 4: teach it the new ones", n)
	}
	cases := []struct {
		name      string
		id        string
		count     int
		cancelled bool
		fast      bool
	}{
		{"one result", "f1", 1, false, true},
		{"cancelled", "f2", 0, true, true},
		{"many", "~!#", 1 << 20, false, true},
		{"html id", "a<b", 1, false, false},
		{"quote id", `"`, 1, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Marshal(&DoneFrame{ID: tc.id, Count: tc.count, Cancelled: tc.cancelled})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := appendDone(nil, tc.id, tc.count, tc.cancelled)
			if ok != tc.fast {
				t.Fatalf("appendDone ok = %v, want %v", ok, tc.fast)
			}
			if ok && !bytes.Equal(got, want) {
				t.Fatalf("appendDone:\n got %s\nwant %s", got, want)
			}
			if !ok && len(got) != 0 {
				t.Fatalf("declined but appended: %q", got)
			}
		})
	}
}

// findFastCases are find frames for TestParseFindFast and the seeds of
// FuzzParseFindFast: whether the fast path takes each.
var findFastCases = []struct {
	frame string
	fast  bool
}{
	{`{"type":"find","id":"1","service":"DatabaseService"}`, true},
	{`{"type":"find","id":"f-7","service":"a.b_c-D","limit":3}`, true},
	{`{"type":"find","id":"x","service":"A","timeout_ms":2500}`, true},
	{`{"type":"find","id":"x","service":"A","limit":0,"timeout_ms":0}`, true},
	{`{"type":"find","id":"x","service":"A","limit":999999999999999}`, true},
	{`{"type":"find","id":"x","service":"A","limit":9999999999999999}`, false}, // 16 digits
	{`{"type":"find","id":"x","service":"A","timeout_ms":1,"limit":1}`, false}, // order
	{`{"type":"find","id":"x","service":"A","limit":-1}`, false},
	{`{"type":"find","id":"x","service":"A","limit":01}`, false},
	{`{"type":"find","id":"x","service":"A","limit":1e3}`, false},
	{`{"type":"find","id":"x","service":"A","limit":1.5}`, false},
	{`{"type":"find","id":"x","service":"A","limit":}`, false},
	{`{"type":"find","id":"x","service":"A","extra":1}`, false},
	{`{"type":"find","id":"x","service":"A"} `, false},
	{`{"type":"find","id":"x","service":"A"}}`, false},
	{`{"type":"find", "id":"x","service":"A"}`, false},
	{`{"type":"find","id":"a b","service":"A"}`, false},
	{`{"type":"find","id":"a\"b","service":"A"}`, false},
	{`{"type":"find","id":"a\u0041","service":"A"}`, false},
	{`{"type":"find","id":"","service":"A"}`, false},
	{`{"type":"find","id":"x","service":"bad name"}`, false},
	{`{"type":"find","id":"x","service":""}`, false},
	{`{"type":"find","id":"x","service":"é"}`, false},
	{`{"type":"find","id":"x","Service":"A"}`, false},
	{`{"type":"find","id":"x","service":"A","id":"y"}`, false},
	{`{"type":"cancel","id":"x"}`, false},
	{`{"type":"find","id":"x"`, false},
}

// TestParseFindFast: the fast path takes the handshaker's find frames and
// declines the rest, and what it takes parses as the JSON path does.
func TestParseFindFast(t *testing.T) {
	for _, c := range findFastCases {
		t.Run(c.frame, func(t *testing.T) {
			f, ok := parseFindFast([]byte(c.frame))
			if ok != c.fast {
				t.Fatalf("fast path took it: %v, want %v", ok, c.fast)
			}
			if ok {
				checkFindFast(t, []byte(c.frame), f)
			}
		})
	}
}

// FuzzParseFindFast: whatever the fast path takes, the JSON path parses
// to the same frame.
func FuzzParseFindFast(f *testing.F) {
	for _, c := range findFastCases {
		f.Add([]byte(c.frame))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if fr, ok := parseFindFast(b); ok {
			checkFindFast(t, b, fr)
		}
	})
}

// checkFindFast checks the fast path's frame against the JSON path's.
func checkFindFast(t *testing.T, b []byte, fast *FindFrame) {
	t.Helper()
	typ, err := frameType(b)
	if err != nil || typ != TypeFind {
		t.Fatalf("fast path took %q; the JSON path reads type %q, %v", b, typ, err)
	}
	want, err := parseFind(b)
	if err != nil {
		t.Fatalf("fast path took %q; the JSON path refuses it: %v", b, err)
	}
	if *fast != *want {
		t.Fatalf("fast path: %+v, JSON path: %+v", *fast, *want)
	}
}
