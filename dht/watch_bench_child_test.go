package dht_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// The watchers of BenchmarkWatch run in a child process: the test binary
// run again with watchChildEnv naming the registry, so that the
// benchmark's heap is the registry's alone. The child starts
// watchChildPeersEnv hosts (each its own peer, listening nowhere),
// connects each to the registry, says "connected", and then obeys one
// command a line on its stdin, answering on stdout with lines that start
// with "watchchild " (the test binary's own lines are ignored):
//
//	watch NAME K         the first K hosts each watch NAME → "watching NAME"
//	rtt SIZE COUNT       host 0's bare stream round trips to the registry's
//	                     echo (SIZE bytes each way) → "rtt P50NS P95NS"
//	floor PROTO K GROUP  the first K hosts each open a floor stream on PROTO,
//	                     read as group GROUP → "floorready"
//	report GROUP         → "a SEQ UNIXNANO" for every arrival, then "end"
//	quit                 → the child ends
//
// Each watcher, and each floor reader, decodes every message and verifies
// its record's Ed25519 signature (no shared cache: what a watcher on its
// own machine does) before it notes the arrival with the wall clock, and
// "all GROUP SEQ" is printed once all K readers of a group have seq.
// Times across the two processes are both read from the kernel's
// realtime clock.
const (
	watchChildEnv      = "NETGET_WATCH_BENCH_REGISTRY"
	watchChildPeersEnv = "NETGET_WATCH_BENCH_PEERS"
	echoProto          = "/netget-bench/echo/1.0.0"
	floorProto         = "/netget-bench/fanout/1.0.0"
	floorOneProto      = "/netget-bench/fanout-one/1.0.0"
	floorGroup         = "floor"
	floorOneGroup      = "floor1"
)

// watchChild is the child process's side of BenchmarkWatch.
func watchChild(b *testing.B, regAddr string) {
	ai, err := peer.AddrInfoFromString(regAddr)
	if err != nil {
		b.Fatalf("watch child: registry %q: %v", regAddr, err)
	}
	peers, err := strconv.Atoi(os.Getenv(watchChildPeersEnv))
	if err != nil || peers < 1 {
		b.Fatalf("watch child: %s=%q, want a count of peers", watchChildPeersEnv, os.Getenv(watchChildPeersEnv))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := &childOut{groups: map[string]*arrivals{}}
	cfg := p2ptest.Config()
	cfg.ListenAddrs, cfg.HolePunching = nil, false // dial out only: a watcher
	hosts := make([]host.Host, peers)
	for i := range hosts {
		hosts[i] = p2ptest.NewHostFrom(b, cfg)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, h := range hosts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := h.Connect(cctx, *ai); err != nil {
				b.Errorf("watch child: connect to the registry: %v", err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	ch.say("connected")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "watch":
			k, _ := strconv.Atoi(f[2])
			c, err := record.ServiceCID("development", f[1])
			if err != nil {
				b.Fatal(err)
			}
			g := ch.group(f[1], k)
			for _, h := range hosts[:k] {
				w, err := registry.OpenWatch(ctx, h, registry.WatchProtocol("development"), ai.ID, c)
				if err != nil {
					b.Fatalf("watch child: open watch: %v", err)
				}
				if m, _, err := w.Next(); err != nil || m.Type != registry.WatchSynced {
					b.Fatalf("watch child: %+v %v, want the empty snapshot", m, err)
				}
				b.Cleanup(w.Close)
				go g.read(ch, f[1], func() (registry.WatchMsg, error) { m, _, err := w.Next(); return m, err })
			}
			ch.say("watching " + f[1])
		case len(f) == 3 && f[0] == "rtt":
			size, _ := strconv.Atoi(f[1])
			count, _ := strconv.Atoi(f[2])
			p50, p95 := echoRTT(ctx, b, hosts[0], ai.ID, size, count)
			ch.say(fmt.Sprintf("rtt %d %d", p50, p95))
		case len(f) == 4 && f[0] == "floor":
			k, _ := strconv.Atoi(f[2])
			group := f[3]
			g := ch.group(group, k)
			for _, h := range hosts[:k] {
				s, err := h.NewStream(ctx, ai.ID, protocol.ID(f[1]))
				if err != nil {
					b.Fatalf("watch child: floor stream: %v", err)
				}
				if _, err := s.Write([]byte{1}); err != nil { // the handler runs once the stream opens
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Reset() })
				r := msgio.NewVarintReaderSize(s, registry.MaxMessageSize)
				go g.read(ch, group, func() (registry.WatchMsg, error) {
					buf, err := r.ReadMsg()
					if err != nil {
						return registry.WatchMsg{}, err
					}
					m, _, err := registry.DecodeWatchMsg(buf)
					r.ReleaseMsg(buf)
					return m, err
				})
			}
			ch.say("floorready")
		case len(f) == 2 && f[0] == "report":
			ch.report(f[1])
		case len(f) == 1 && f[0] == "quit":
			return
		default:
			b.Fatalf("watch child: unknown command %q", in.Text())
		}
	}
}

// childOut is the child's stdout and its groups of readers.
type childOut struct {
	mu     sync.Mutex
	groups map[string]*arrivals
}

func (c *childOut) say(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(os.Stdout, "watchchild "+line)
}

func (c *childOut) group(name string, k int) *arrivals {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := &arrivals{k: k, count: map[uint64]int{}}
	c.groups[name] = g
	return g
}

func (c *childOut) report(name string) {
	c.mu.Lock()
	g := c.groups[name]
	c.mu.Unlock()
	if g != nil {
		g.mu.Lock()
		w := bufio.NewWriter(os.Stdout)
		for _, a := range g.all {
			fmt.Fprintf(w, "watchchild a %d %d\n", a.seq, a.at.UnixNano())
		}
		w.Flush()
		g.mu.Unlock()
	}
	c.say("end")
}

// arrivals are what one group of K readers read: every arrival, and how
// many readers have each seq.
type arrivals struct {
	k     int
	mu    sync.Mutex
	all   []arrival
	count map[uint64]int
}

// read reads messages with next until it fails, verifying each record
// with a validator of its own (no cache) and noting when it had it.
func (g *arrivals) read(out *childOut, name string, next func() (registry.WatchMsg, error)) {
	v := record.Validator{Network: "development"}
	for {
		m, err := next()
		if err != nil {
			return
		}
		if len(m.Record) == 0 {
			continue
		}
		s, err := v.Open(m.Record)
		if err != nil {
			continue
		}
		at := time.Now()
		g.mu.Lock()
		g.all = append(g.all, arrival{seq: s.Seq, at: at})
		g.count[s.Seq]++
		done := g.count[s.Seq] == g.k
		g.mu.Unlock()
		if done {
			out.say(fmt.Sprintf("all %s %d", name, s.Seq))
		}
	}
}

// echoRTT measures count round trips of size bytes on one stream from h
// to the registry's echo handler, and returns their p50 and p95 in ns.
func echoRTT(ctx context.Context, b *testing.B, h host.Host, reg peer.ID, size, count int) (int64, int64) {
	s, err := h.NewStream(ctx, reg, echoProto)
	if err != nil {
		b.Fatalf("watch child: echo stream: %v", err)
	}
	defer s.Reset()
	buf := make([]byte, size)
	var took []float64
	for range count {
		start := time.Now()
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			b.Fatal(err)
		}
		took = append(took, float64(time.Since(start)))
	}
	return int64(pct(took, 50)), int64(pct(took, 95))
}

// watchChildProc is the parent's handle on the child process.
type watchChildProc struct {
	b     *testing.B
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // the child's "watchchild " lines, prefix cut
}

// startWatchChild runs the watchers' child process against the registry
// at regAddr (with /p2p/), with peers hosts.
func startWatchChild(b *testing.B, regAddr string, peers int) *watchChildProc {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkWatch$", "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), watchChildEnv+"="+regAddr, watchChildPeersEnv+"="+strconv.Itoa(peers))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the watchers' child process: %v", err)
	}
	c := &watchChildProc{b: b, cmd: cmd, in: in, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "watchchild "); ok {
				c.lines <- line
			}
		}
	}()
	b.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// send writes one command to the child.
func (c *watchChildProc) send(format string, args ...any) {
	if _, err := fmt.Fprintf(c.in, format+"\n", args...); err != nil {
		c.b.Fatalf("watch child: %v", err)
	}
}

// wait returns the child's next line, which must start with prefix,
// within limit.
func (c *watchChildProc) wait(prefix string, limit time.Duration) []string {
	select {
	case line, ok := <-c.lines:
		if !ok {
			c.b.Fatalf("watch child ended while the benchmark waited for %q", prefix)
		}
		if !strings.HasPrefix(line, prefix) {
			c.b.Fatalf("watch child said %q, want %q", line, prefix)
		}
		return strings.Fields(line)
	case <-time.After(limit):
		c.b.Fatalf("watch child: no %q within %s", prefix, limit)
	}
	return nil
}

// report returns every arrival of group: when each reader had each seq.
func (c *watchChildProc) report(group string) []arrival {
	c.send("report %s", group)
	var out []arrival
	for {
		f := c.wait("", time.Minute)
		if f[0] == "end" {
			return out
		}
		if len(f) != 3 || f[0] != "a" {
			c.b.Fatalf("watch child report: %v", f)
		}
		seq, _ := strconv.ParseUint(f[1], 10, 64)
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		out = append(out, arrival{seq: seq, at: time.Unix(0, ns)})
	}
}

// floorFanout is the fan-out floor on the registry's host: a bare
// protocol handler per stream that writes each message it is handed, as
// the watch hub's writer does, with none of the hub's work. It notes the
// first and last write of each round.
type floorFanout struct {
	mu      sync.Mutex
	streams []chan []byte
	writes  []time.Time
}

func (f *floorFanout) handle(s network.Stream) {
	var one [1]byte
	if _, err := io.ReadFull(s, one[:]); err != nil {
		s.Reset()
		return
	}
	ch := make(chan []byte, 1)
	f.mu.Lock()
	f.streams = append(f.streams, ch)
	f.mu.Unlock()
	defer s.Reset()
	for msg := range ch {
		if err := registry.WriteFrame(s, msg); err != nil {
			return
		}
		now := time.Now()
		f.mu.Lock()
		f.writes = append(f.writes, now)
		f.mu.Unlock()
	}
}

// round hands msg to every stream's handler and returns when it started.
func (f *floorFanout) round(msg []byte) time.Time {
	f.mu.Lock()
	f.writes = f.writes[:0]
	streams := slices.Clone(f.streams)
	f.mu.Unlock()
	start := time.Now()
	for _, ch := range streams {
		ch <- msg
	}
	return start
}

// count is how many floor streams are open.
func (f *floorFanout) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

// written is how many writes the last round made.
func (f *floorFanout) written() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.writes)
}

// spread is the time from the first write of the last round to its last.
func (f *floorFanout) spread() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.writes) == 0 {
		return 0
	}
	return slices.MaxFunc(f.writes, time.Time.Compare).Sub(slices.MinFunc(f.writes, time.Time.Compare))
}

func (f *floorFanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.streams {
		close(ch)
	}
	f.streams = nil
}
