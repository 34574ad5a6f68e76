package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/netget/netget-peer/bridge"
)

// BenchmarkBridge's load generators: coder/websocket's client and the lean
// one (leanws_test.go), and the checks of every answer.

// openClients dials n coder/websocket clients, 50 at a time, each past
// its welcome.
func openClients(b *testing.B, url string, n int) []*coderClient {
	return openN(b, n, coderDialer(url))
}

// coderDialer dials a coder/websocket client to url, past its welcome.
func coderDialer(url string) func(context.Context) (*coderClient, error) {
	return func(ctx context.Context) (*coderClient, error) {
		c, _, err := tryDial(nil, dialOpts{endpoint: url})
		if err != nil {
			return nil, err
		}
		hello, _ := bridge.Marshal(&bridge.HelloFrame{Version: bridge.Version})
		if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
			c.CloseNow()
			return nil, err
		}
		if _, _, err = c.Read(ctx); err != nil {
			c.CloseNow()
			return nil, err
		}
		return &coderClient{c: c}, nil
	}
}

// openLean dials n lean clients, 50 at a time, each past its welcome.
func openLean(b *testing.B, url string, n int) []*leanClient {
	return openN(b, n, leanDialer(url))
}

// leanDialer dials a lean client to url, past its welcome.
func leanDialer(url string) func(context.Context) (*leanClient, error) {
	return func(ctx context.Context) (*leanClient, error) {
		c, err := dialLean(ctx, url)
		if err != nil {
			return nil, err
		}
		c.nc.SetDeadline(time.Now().Add(wait))
		hello, _ := bridge.Marshal(&bridge.HelloFrame{Version: bridge.Version})
		err = c.writeText(hello)
		if err == nil {
			_, err = c.readText()
		}
		if err != nil {
			c.close()
			return nil, err
		}
		return &leanClient{leanConn: c}, nil
	}
}

// openN opens n clients with dial, 50 at a time; they close when b ends
// (runRow closes them before).
func openN[C benchClient](b *testing.B, n int, dial func(context.Context) (C, error)) []C {
	conns, err := dialAll(n, dial)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.close()
		}
	})
	return conns
}

// dialAll opens n clients with dial, 50 at a time; on an error it closes
// those it opened.
func dialAll[C benchClient](n int, dial func(context.Context) (C, error)) ([]C, error) {
	conns := make([]C, n)
	opened := make([]bool, n)
	var g errgroup.Group
	g.SetLimit(50)
	for i := range conns {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := dial(ctx)
			if err != nil {
				return fmt.Errorf("client %d: %w", i, err)
			}
			conns[i], opened[i] = c, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		for i, c := range conns {
			if opened[i] {
				c.close()
			}
		}
		return nil, err
	}
	return conns, nil
}

// coderClient is a coder/websocket client.
type coderClient struct{ c *websocket.Conn }

func (c *coderClient) find(ctx context.Context, n int64) error {
	_, err := benchFind(ctx, c.c, strconv.FormatInt(n, 10))
	return err
}

// benchFind runs one find on c and returns its latency: find written →
// done read.
func benchFind(ctx context.Context, c *websocket.Conn, id string) (time.Duration, error) {
	frame := []byte(`{"type":"find","id":"` + id + `","service":"DatabaseService"}`)
	start := time.Now()
	if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
		return 0, err
	}
	_, result, err := c.Read(ctx)
	if err != nil {
		return 0, err
	}
	_, done, err := c.Read(ctx)
	if err != nil {
		return 0, err
	}
	return time.Since(start), checkAnswer(id, result, done)
}

func (c *coderClient) close() { c.c.CloseNow() }

// leanClient is a lean client (leanws_test.go) running finds.
type leanClient struct {
	*leanConn
	frame  []byte // the find frame's payload, reused
	dl     bool   // the run's deadline is set
	limit1 bool   // finds say "limit":1 (the answer's one result is its last)
}

func (c *leanClient) find(ctx context.Context, n int64) error {
	if !c.dl {
		dl, _ := ctx.Deadline()
		c.nc.SetDeadline(dl) // one deadline for the run, not a timer per read
		c.dl = true
	}
	var num [20]byte
	id := strconv.AppendInt(num[:0], n, 10)
	c.frame = append(append(append(c.frame[:0], `{"type":"find","id":"`...), id...), `","service":"DatabaseService"`...)
	if c.limit1 {
		c.frame = append(c.frame, `,"limit":1`...)
	}
	c.frame = append(c.frame, '}')
	if err := c.writeText(c.frame); err != nil {
		return err
	}
	result, err := c.readText()
	if err != nil {
		return err
	}
	// result lives in the read buffer until the next read: check it now.
	if err := checkResult(id, result); err != nil {
		return err
	}
	done, err := c.readText()
	if err != nil {
		return err
	}
	return checkDone(id, done)
}

// checkAnswer checks a find's two answer frames.
func checkAnswer(id string, result, done []byte) error {
	if err := checkResult([]byte(id), result); err != nil {
		return err
	}
	return checkDone([]byte(id), done)
}

// checkResult checks that b is the result frame of find id: its type and
// id, a record, and a whole JSON object (decoding every record in the
// clients would make the benchmark measure encoding/json on the client
// side as much as the bridge; TestAppendResult keeps the bridge's frames
// what Marshal writes).
func checkResult(id, b []byte) error {
	rest, ok := bytes.CutPrefix(b, []byte(`{"type":"result","id":"`))
	if ok {
		rest, ok = bytes.CutPrefix(rest, id)
	}
	if !ok || !bytes.HasPrefix(rest, []byte(`","record":{"peer":"`)) || !bytes.HasSuffix(rest, []byte("}")) {
		return unexpected(string(id), b)
	}
	return nil
}

// checkDone checks that b is exactly the done frame of find id with one
// result.
func checkDone(id, b []byte) error {
	rest, ok := bytes.CutPrefix(b, []byte(`{"type":"done","id":"`))
	if ok {
		rest, ok = bytes.CutPrefix(rest, id)
	}
	if !ok || string(rest) != `","count":1}` {
		return unexpected(string(id), b)
	}
	return nil
}

// unexpected says what came instead of a find's result or done frame.
func unexpected(id string, b []byte) error {
	f, err := bridge.ParseServerFrame(b)
	if err != nil {
		return fmt.Errorf("find %s: %w", id, err)
	}
	if e, ok := f.(*bridge.ErrorFrame); ok {
		return fmt.Errorf("find %s: %s: %s", id, e.Code, e.Message)
	}
	return fmt.Errorf("find %s: unexpected frame %s", id, b)
}
