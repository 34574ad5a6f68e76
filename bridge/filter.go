package bridge

import (
	"context"
	"net/http"
	"time"
)

// Stage is the point of a session at which a Filter is asked.
type Stage int

const (
	// StageConnect: the WebSocket is open and passed the origin and host
	// checks; no frame has been read.
	StageConnect Stage = iota + 1
	// StageHello: the hello arrived and passed the token check; the
	// welcome has not been sent.
	StageHello
	// StageFind: a find passed the rate, in-flight and service checks and
	// is about to reach the Finder.
	StageFind
	// StageOpen: an open passed the channel-count and service checks and
	// is about to reach the Opener.
	StageOpen
	// StageWatch: a watch passed the rate, per-session and service checks
	// and is about to reach the Watcher. A Filter that guards services at
	// StageFind must guard them here too.
	StageWatch
)

// String names the stage.
func (s Stage) String() string {
	switch s {
	case StageConnect:
		return "connect"
	case StageHello:
		return "hello"
	case StageFind:
		return "find"
	case StageOpen:
		return "open"
	case StageWatch:
		return "watch"
	}
	return "unknown"
}

// Request is what a Filter decides on. Fields beyond the stage's are empty.
type Request struct {
	Stage      Stage
	RemoteAddr string            // the client's address, as the HTTP server saw it
	Origin     string            // the page's Origin header ("" for non-browser clients)
	Host       string            // the Host header
	Header     http.Header       // the upgrade request's headers (cookies, authorization); read-only
	Token      string            // hello's token (StageHello, StageFind)
	Client     string            // hello's client name (StageHello, StageFind)
	Service    string            // the service asked for (StageFind, StageOpen, StageWatch)
	Limit      int               // the find's result limit, or the watch's providers shown at once, after defaults and caps (StageFind, StageWatch)
	Timeout    time.Duration     // the find's timeout, after defaults and caps (StageFind)
	Peer       string            // the provider the open asks for, or "" (StageOpen)
	Where      map[string]string // the open's or the watch's metadata match (StageOpen, StageWatch); read-only
}

// Filter is an embedder's own check, run after the bridge's built-in ones
// at each Stage: authentication, per-user quotas, audit. It returns nil to
// let the session or find proceed. Returning an *Error chooses the code and
// message the client sees; any other error refuses with code forbidden and
// a generic message, and is only logged. A refusal at StageConnect or
// StageHello closes the connection; at StageFind it fails that find only.
// Check is called from the session's goroutine and must return promptly;
// ctx ends when the session does.
type Filter interface {
	Check(ctx context.Context, req *Request) error
}

// FilterFunc adapts a function to Filter.
type FilterFunc func(ctx context.Context, req *Request) error

// Check calls f.
func (f FilterFunc) Check(ctx context.Context, req *Request) error { return f(ctx, req) }
