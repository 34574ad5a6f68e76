package devnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht/channel"
)

// ChatService is the devnet's real-time sample: a chat room. Its provider
// node relays each channel to the chat server, a WebSocket target on
// 127.0.0.1 (as `provide ChatService --target ws://…` would), so a page's
// messages reach every other page in the room.
const ChatService = "ChatService"

// chatMeta is the chat provider's record metadata.
func chatMeta() map[string]string {
	return map[string]string{"room": "lobby", "kind": "chat"}
}

// Chat server limits: a message is at most chatMaxMessage bytes; a member
// whose socket does not take chatQueue messages in time is dropped, so a
// slow page never grows the server's memory.
const (
	chatMaxMessage = 4 << 10
	chatQueue      = 64
	chatWrite      = 5 * time.Second
)

// chatServer is a WebSocket chat room: every text message a member sends
// goes to every member, the sender included.
type chatServer struct {
	log  *slog.Logger
	http *http.Server
	url  string // ws://127.0.0.1:PORT/chat
	done chan struct{}

	mu      sync.Mutex
	members map[*chatMember]struct{}
	wg      sync.WaitGroup // members' goroutines
}

type chatMember struct {
	out  chan []byte
	gone chan struct{}
	once sync.Once
}

func (m *chatMember) drop() { m.once.Do(func() { close(m.gone) }) }

// startChat serves the chat room on a loopback port.
func startChat(log *slog.Logger) (*chatServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chat server: %w", err)
	}
	c := &chatServer{log: log, url: "ws://" + l.Addr().String() + "/chat", done: make(chan struct{}),
		members: make(map[*chatMember]struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /chat", c.serve)
	c.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(c.done)
		if err := c.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("chat server stopped", "err", err)
		}
	}()
	return c, nil
}

// serve runs one member: a reader (here) and a writer goroutine.
func (c *chatServer) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(chatMaxMessage)
	m := &chatMember{out: make(chan []byte, chatQueue), gone: make(chan struct{})}
	c.mu.Lock()
	c.members[m] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.members, m)
		c.mu.Unlock()
		m.drop()
	}()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c.wg.Go(func() { c.write(ctx, ws, m) })
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageText {
			c.broadcast(b)
		}
	}
}

// write sends a member its queue until it leaves or is dropped.
func (c *chatServer) write(ctx context.Context, ws *websocket.Conn, m *chatMember) {
	for {
		select {
		case b := <-m.out:
			wctx, cancel := context.WithTimeout(ctx, chatWrite)
			err := ws.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				ws.CloseNow()
				return
			}
		case <-m.gone:
			ws.Close(websocket.StatusPolicyViolation, "too slow")
			return
		case <-ctx.Done():
			return
		}
	}
}

// broadcast queues b for every member; one whose queue is full is dropped.
func (c *chatServer) broadcast(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for m := range c.members {
		select {
		case m.out <- b:
		default:
			m.drop()
		}
	}
}

// close stops the server and every member.
func (c *chatServer) close() {
	c.http.Close()
	<-c.done
	c.mu.Lock()
	for m := range c.members {
		m.drop()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// startChatNode runs the chat's provider: a service node relaying each
// ChatService channel to the chat server, providing ChatService.
func (d *Devnet) startChatNode(ctx context.Context) error {
	chat, err := startChat(d.log.With("role", "chat"))
	if err != nil {
		return err
	}
	d.chat = chat
	target, err := channel.ParseTarget(chat.url, false)
	if err != nil {
		return err
	}
	cfg := netget.Service()
	n, err := d.newNode(ctx, "chat", cfg)
	if err != nil {
		return err
	}
	d.chatNode = n
	if err := n.Handle(ChatService, target.Handler(channel.Filter{}, d.log.With("role", "chat"))); err != nil {
		return err
	}
	if _, err := n.Provide(ctx, netget.Spec{Name: ChatService, Meta: chatMeta(), TTL: d.cfg.TTL}); err != nil {
		return err
	}
	d.log.Info("chat up", "peer", n.ID(), "target", chat.url)
	return nil
}

// closeChat stops the chat's provider node, then its server.
func (d *Devnet) closeChat() {
	if d.chatNode != nil {
		d.chatNode.Close()
		d.chatNode = nil
	}
	if d.chat != nil {
		d.chat.close()
		d.chat = nil
	}
}
