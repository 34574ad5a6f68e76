package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/netget/netget-peer/p2p"
)

// maxResponse bounds the non-streaming responses a Client reads.
const maxResponse = 4 << 20

// Client calls a daemon's control API over its Unix socket. Build one with
// NewClient or Dial; it is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the daemon serving dataDir. It does no I/O:
// each call returns an error wrapping ErrNoDaemon when no daemon answers,
// and ErrUntrustedSocket when the socket or the process serving it belongs
// to another user: then nothing is sent and nothing it says is believed.
func NewClient(dataDir string) *Client {
	socket := SocketPath(dataDir)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialTrusted(ctx, socket)
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	// No client-wide timeout: finds stream; callers bound calls with ctx.
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Dial returns a client for the daemon serving dataDir if one accepts
// connections on its socket, else an error wrapping ErrNoDaemon, or
// ErrUntrustedSocket if another user's socket or process is there.
func Dial(ctx context.Context, dataDir string) (*Client, error) {
	c := NewClient(dataDir)
	conn, err := dialTrusted(ctx, c.socket)
	if err != nil {
		if noDaemon(err) {
			return nil, fmt.Errorf("%w on %s", ErrNoDaemon, c.socket)
		}
		if errors.Is(err, ErrUntrustedSocket) {
			return nil, err // it names the socket
		}
		return nil, fmt.Errorf("control socket %s: %w", c.socket, err)
	}
	conn.Close()
	return c, nil
}

// dialTrusted connects to the control socket at path and returns the
// connection only if the socket file (CheckSocket) and the process
// serving it (its kernel-reported uid) belong to the current user or root.
// A fake socket planted by another user fails here, before a byte is sent.
func dialTrusted(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	if err := checkServer(path, conn.(*net.UnixConn)); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// checkServer checks the socket file at path and the peer of c.
func checkServer(path string, c *net.UnixConn) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUntrustedSocket, path, err)
	}
	if err := p2p.CheckSocket(path, fi); err != nil {
		return fmt.Errorf("%w: %w", ErrUntrustedSocket, err)
	}
	uid, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("%w: %s: cannot learn which user serves it: %w", ErrUntrustedSocket, path, err)
	}
	if !p2p.TrustedUID(uid) {
		return fmt.Errorf("%w: %s is served by uid %d, neither you (uid %d) nor root; stop that process and remove the socket (rm %s)",
			ErrUntrustedSocket, path, uid, os.Geteuid(), path)
	}
	return nil
}

// Close releases the client's idle connections. It is idempotent.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Status returns the daemon's GET /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Provide asks the daemon to provide a service and returns once its first
// publication landed; the daemon keeps republishing it. An API failure is
// an *Error.
func (c *Client) Provide(ctx context.Context, req ProvideRequest) (*ProvideResponse, error) {
	var resp ProvideResponse
	if err := c.do(ctx, http.MethodPost, "/v1/provide", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Unprovide asks the daemon to stop providing a service and publish its
// tombstone.
func (c *Client) Unprovide(ctx context.Context, req UnprovideRequest) (*UnprovideResponse, error) {
	var resp UnprovideResponse
	if err := c.do(ctx, http.MethodPost, "/v1/unprovide", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Find asks the daemon to find a service's providers and yields each
// verified result as the daemon streams it. An error, if any, is the last
// thing yielded: a failed call (*Error, ErrNoDaemon), or ErrStream if the
// stream broke off before the daemon said it was done. Stopping the
// iteration early cancels the find.
func (c *Client) Find(ctx context.Context, req FindRequest) iter.Seq2[Result, error] {
	return func(yield func(Result, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp, err := c.send(ctx, http.MethodPost, "/v1/find", req)
		if err != nil {
			yield(Result{}, err)
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev FindEvent
			if err := dec.Decode(&ev); err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				yield(Result{}, fmt.Errorf("%w: ended before done: %w", ErrStream, err))
				return
			}
			switch ev.Type {
			case EventDone:
				return
			case EventResult:
				if ev.Record == nil {
					yield(Result{}, fmt.Errorf("%w: result without a record", ErrStream))
					return
				}
				r := Result{Record: *ev.Record, Source: ev.Source,
					Elapsed: time.Duration(ev.ElapsedMS * float64(time.Millisecond))}
				if !yield(r, nil) {
					return
				}
			} // unknown event types are newer than this client: skipped
		}
	}
}

// do sends in (if not nil) as JSON and decodes a 200 response into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("control api %s: decode response: %w", path, err)
	}
	return nil
}

// send makes a request and returns a 200 response; other statuses become
// an *Error, and a socket nobody serves ErrNoDaemon.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("control api %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://netget"+path, body)
	if err != nil {
		return nil, fmt.Errorf("control api %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if noDaemon(err) {
			return nil, fmt.Errorf("%w on %s", ErrNoDaemon, c.socket)
		}
		return nil, fmt.Errorf("control api %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &Error{}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(e); err != nil || e.Code == "" {
		e = &Error{Code: CodeInternal, Message: fmt.Sprintf("control api %s: daemon answered %s", path, resp.Status)}
	}
	e.Status = resp.StatusCode
	return nil, e
}
