package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// call is the handler of a JSON request/response route: decode the body
// into Req, run op, reply with its response or error.
func call[Req, Resp any](s *Server, op func(context.Context, Req) (Resp, *Error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if e := decode(w, r, &req); e != nil {
			s.fail(w, r, e)
			return
		}
		resp, e := op(r.Context(), req)
		s.reply(w, r, resp, e)
	}
}

// routes is the control API. Every response is JSON, errors included.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.status())
	})
	mux.HandleFunc("POST /v1/provide", call(s, s.provide))
	mux.HandleFunc("POST /v1/unprovide", call(s, s.unprovide))
	mux.HandleFunc("POST /v1/find", s.handleFind)
	mux.HandleFunc("POST /v1/connect", s.handleConnect)
	s.registryRoutes(mux)
	for path, method := range map[string]string{"/v1/status": "GET", "/v1/provide": "POST", "/v1/unprovide": "POST", "/v1/find": "POST"} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", method)
			s.fail(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
				Message: fmt.Sprintf("%s %s: want %s", r.Method, path, method)})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// handleFind streams a find's results as NDJSON as they verify, then a
// "done" line. A find that cannot start (bad request, node not joined) is
// an ordinary error response.
func (s *Server) handleFind(w http.ResponseWriter, r *http.Request) {
	var req FindRequest
	e := decode(w, r, &req)
	if e == nil {
		e = s.checkFind(req)
	}
	if e != nil {
		s.fail(w, r, e)
		return
	}
	ctx := r.Context()
	var enc *json.Encoder
	var rc *http.ResponseController
	begin := func() { // the stream starts with the first result, or the end
		if enc == nil {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			rc, enc = http.NewResponseController(w), json.NewEncoder(w)
		}
	}
	found, broken := 0, false
	err := s.node.Find(ctx, req.Name, dht.FindOptions{Limit: req.Limit, Timeout: time.Duration(req.Timeout)}, func(res dht.Result) bool {
		begin()
		found++
		view := record.ViewOf(res.Record)
		ev := FindEvent{Type: EventResult, Record: &view, Source: string(res.Source),
			ElapsedMS: float64(res.Elapsed.Microseconds()) / 1000}
		broken = enc.Encode(ev) != nil || rc.Flush() != nil
		return !broken
	})
	if err != nil && !errors.Is(err, dht.ErrFindTimeout) && enc == nil {
		s.fail(w, r, publishError(err))
		return
	}
	begin()
	// A stream cut short by shutdown or a client that left has no "done":
	// the client must not take it for a complete answer.
	if broken || ctx.Err() != nil {
		return
	}
	enc.Encode(FindEvent{Type: EventDone, Found: found})
	rc.Flush()
}

// checkFind validates a find request.
func (s *Server) checkFind(req FindRequest) *Error {
	if _, e := checkSpec(req.Name, nil, 0); e != nil {
		return e
	}
	if req.Limit < 0 {
		return badRequest(CodeBadRequest, fmt.Sprintf("limit %d: must not be negative", req.Limit))
	}
	if t := time.Duration(req.Timeout); t < 0 || t > MaxFindTimeout {
		return badRequest(CodeBadRequest, fmt.Sprintf("timeout %s: want between 0 (the default) and %s", t, MaxFindTimeout))
	}
	return s.checkNetwork(req.Network)
}

// decode reads exactly one JSON object of at most MaxBodySize bytes into
// v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) *Error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodySize)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("request body over %d bytes", MaxBodySize)}
	case errors.Is(err, io.EOF):
		return badRequest(CodeBadRequest, "request body: want a JSON object")
	}
	return badRequest(CodeBadRequest, "request body: "+err.Error())
}

// reply writes resp, or e if it is set.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, resp any, e *Error) {
	if e != nil {
		s.fail(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// fail writes e, logging server-side failures.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *Error) {
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "control request failed", "method", r.Method, "path", r.URL.Path,
		"status", e.Status, "code", e.Code, "err", e.Message)
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
