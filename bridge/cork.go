package bridge

import (
	"net"
	"sync"
	"sync/atomic"
)

// keptCorkBuf is the largest buffer a cork keeps between uses.
const keptCorkBuf = 4096

// cork holds a connection's writes while it is on, and sends them in one
// write when it comes off: coder/websocket flushes every message, and a
// find whose last result the bridge knows (its limit reached) sends that
// result and its done frame as one system call instead of two
// (session.sendLast). It is on only between two writes of one goroutine,
// never across a wait, so it delays nothing: a ping or pong another
// goroutine writes meanwhile joins the same write, in order.
type cork struct {
	on  atomic.Bool // read without mu first: every write of a connection asks
	mu  sync.Mutex  // guards buf, and on's changes
	buf []byte
}

// keep appends p to the held bytes and reports true while the cork is on;
// false: the caller writes p itself. A write that races the cork coming
// off goes out before or after the held bytes, whole either way: only a
// ping or pong another goroutine writes can, and their order with data
// messages does not matter.
func (k *cork) keep(p []byte) bool {
	if !k.on.Load() {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.on.Load() {
		return false
	}
	k.buf = append(k.buf, p...)
	return true
}

// hold turns the cork on.
func (k *cork) hold() {
	k.mu.Lock()
	k.on.Store(true)
	k.mu.Unlock()
}

// release turns the cork off and writes what it held to c in one write.
func (k *cork) release(c net.Conn) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.on.Store(false)
	if len(k.buf) == 0 {
		return nil
	}
	_, err := c.Write(k.buf)
	if cap(k.buf) <= keptCorkBuf {
		k.buf = k.buf[:0]
	} else {
		k.buf = nil
	}
	return err
}
