package control

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"

	"github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// WatchEventOf returns the one JSON shape of a watch event: what POST
// /v1/watch streams and find --watch --json prints.
func WatchEventOf(ev netget.Event) WatchEvent {
	out := WatchEvent{Type: string(ev.Kind), Peer: ev.Peer.String(), Reason: ev.Reason}
	if ev.Kind == dht.EventUpsert && ev.Result.Record != nil {
		v := record.ViewOf(ev.Result.Record)
		out.Record, out.Source = &v, string(ev.Result.Source)
	}
	return out
}

// handleWatch streams a watch's events as NDJSON, one line per event as it
// happens, until the client goes or the daemon shuts down. A watch that
// cannot start (bad request, node closed) is an ordinary error response.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) {
	var req WatchRequest
	e := decode(w, r, &req)
	if e == nil {
		if _, e = checkSpec(req.Name, nil, 0); e == nil {
			e = s.checkNetwork(req.Network)
		}
	}
	if e != nil {
		s.fail(w, r, e)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events, err := s.node.Watch(ctx, req.Name)
	if err != nil {
		s.fail(w, r, publishError(err))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc, enc := http.NewResponseController(w), json.NewEncoder(w)
	if rc.Flush() != nil {
		return
	}
	for ev := range events {
		if enc.Encode(WatchEventOf(ev)) != nil || rc.Flush() != nil {
			return // the client left; cancel ends the watch
		}
	}
}

// Watch streams the events of POST /v1/watch until ctx ends (then it
// returns without an error) or the stream breaks (ErrStream, the last
// thing yielded), or the call fails (*Error, ErrNoDaemon).
func (c *Client) Watch(ctx context.Context, req WatchRequest) iter.Seq2[WatchEvent, error] {
	return func(yield func(WatchEvent, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp, err := c.send(ctx, http.MethodPost, "/v1/watch", req)
		if err != nil {
			yield(WatchEvent{}, err)
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev WatchEvent
			if err := dec.Decode(&ev); err != nil {
				if ctx.Err() == nil {
					yield(WatchEvent{}, fmt.Errorf("%w: watch ended: %w", ErrStream, err))
				}
				return
			}
			switch {
			case ev.Type == EventUpsert && ev.Record == nil:
				yield(WatchEvent{}, fmt.Errorf("%w: upsert without a record", ErrStream))
				return
			case ev.Type != EventUpsert && ev.Type != EventRemove:
				continue // newer than this client: skipped
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}
