package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// crashChildEnv names the datastore directory a child process of
// TestStoreConcurrentPutsSurviveKill writes into.
const crashChildEnv = "NETGET_STORE_CRASH_CHILD"

// TestStoreConcurrentPutsSurviveKill: a child process puts records from
// 64 goroutines at once into a store on a synced Pebble datastore (their
// fsyncs shared by Pebble's group commit) and prints each record's key as
// its put returns; it is killed with SIGKILL while puts are still running.
// Every record whose put returned is in the datastore when it is opened
// again.
func TestStoreConcurrentPutsSurviveKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "datastore")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreConcurrentPutsSurviveKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	const killAfter = 200 // acknowledged puts, of 1,000
	var acked []string
	sc := bufio.NewScanner(out)
	for len(acked) < killAfter && sc.Scan() {
		acked = append(acked, sc.Text())
	}
	if len(acked) < killAfter {
		t.Fatalf("child acknowledged %d puts before it ended, want %d (%v)", len(acked), killAfter, sc.Err())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := New(d, record.Validator{Network: "development"}, DefaultLimits(), everyone{})
	kept, err := s.Load(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range acked {
		var c, p string
		if _, err := fmt.Sscan(line, &c, &p); err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		sc, err := cid.Decode(c)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Envelope(context.Background(), sc, id); !ok {
			t.Fatalf("record of %s acknowledged before the kill is gone after it (%d kept of %d acknowledged)", id, kept, len(acked))
		}
	}
	t.Logf("%d puts acknowledged before SIGKILL, %d records on disk after it", len(acked), kept)
}

// crashChild puts 1,000 records from 64 goroutines into a store on a
// synced Pebble datastore in dir, printing "<cid> <peer>" as each put
// returns, then waits (at most two minutes) to be killed.
func crashChild(t *testing.T, dir string) {
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := record.Validator{Network: "development"}
	s := New(d, v, DefaultLimits(), everyone{})
	now := time.Now()
	type rec struct {
		c   cid.Cid
		svc *record.Service
		env []byte
	}
	recs := make([]rec, 1000)
	for i := range recs {
		key, id := recordtest.NewKey(t)
		svc := recordtest.Valid(id, now)
		svc.Name = fmt.Sprintf("Crash%02d", i%64)
		env := recordtest.SealRaw(t, svc, key)
		got, err := v.Open(env)
		if err != nil {
			t.Fatal(err)
		}
		c, err := record.ServiceCID(got.Network, got.Name)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = rec{c, got, env}
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := g; i < len(recs); i += 64 {
				r := recs[i]
				if err := s.Add(context.Background(), r.c, r.svc, r.env, Source{}); err != nil {
					fmt.Fprintln(os.Stderr, "put:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(w, r.c, r.svc.Peer)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	<-time.After(2 * time.Minute) // the parent kills it long before
	os.Exit(2)
}
