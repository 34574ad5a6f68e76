package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchChildEnv names the ws:// URL a child load generator drives; set,
// the test binary is that child (TestMain) and runs no test.
const benchChildEnv = "NETGET_BENCH_CHILD_URL"

// benchChildFinds names how many finds the child runs.
const benchChildFinds = "NETGET_BENCH_CHILD_FINDS"

// TestMain runs the tests, or, under benchChildEnv, BenchmarkBridge's
// child load generator.
func TestMain(m *testing.M) {
	if url := os.Getenv(benchChildEnv); url != "" {
		if err := runBenchChild(url, os.Getenv(benchChildFinds), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childReport is what the child load generator prints when done.
type childReport struct {
	ElapsedNS int64 `json:"elapsed_ns"`
	CPUNS     int64 `json:"cpu_ns"` // the child's own CPU during the finds
	P50NS     int64 `json:"p50_ns"`
	P99NS     int64 `json:"p99_ns"`
}

// runBenchChild is the child: it opens benchClients lean clients to url,
// says "ready", waits for a line on in, runs the finds and prints a
// childReport.
func runBenchChild(url, finds string, in io.Reader, out io.Writer) error {
	n, err := strconv.Atoi(finds)
	if err != nil || n < 1 {
		return fmt.Errorf("%s=%q: want a count of finds", benchChildFinds, finds)
	}
	clients, err := dialAll(benchClients, leanDialer(url))
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	fmt.Fprintln(out, "ready")
	if _, err := bufio.NewReader(in).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	cpu0, err := processCPU()
	if err != nil {
		return err
	}
	lat, elapsed, err := drive(clients, n, "child")
	if err != nil {
		return err
	}
	cpu1, err := processCPU()
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(childReport{ElapsedNS: int64(elapsed), CPUNS: int64(cpu1 - cpu0),
		P50NS: int64(lat[len(lat)/2]), P99NS: int64(lat[len(lat)*99/100])})
}

// runChildRow runs b.N finds from benchClients lean clients in a child
// process (this test binary again, under benchChildEnv) against url: the
// clients' GC and heap are their own, the cores the same. The row's server
// CPU is this process's during the finds; its CPU, both processes'.
func runChildRow(b *testing.B, name, url string) row {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), benchChildEnv+"="+url, benchChildFinds+"="+strconv.Itoa(b.N))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	if err := errors.Join(err1, err2, cmd.Start()); err != nil {
		b.Fatalf("bench child: %v", err)
	}
	defer cancel() // ends the child if this fails half-way
	fail := func(what string, err error) {
		b.Helper()
		cancel()
		cmd.Wait()
		b.Fatalf("bench child (%s): %s: %v; its stderr: %s", name, what, err, stderr.String())
	}
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		fail("waiting for ready", fmt.Errorf("read %q: %v", line, err))
	}
	cpu0, io0 := cpuTime(b), procIO(b)
	b.ResetTimer()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		fail("starting", err)
	}
	var rep childReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		fail("reading its report", err)
	}
	b.StopTimer()
	server, io1 := cpuTime(b)-cpu0, procIO(b)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("bench child (%s): %v; its stderr: %s", name, err, stderr.String())
	}
	n := time.Duration(b.N)
	return row{rate: float64(b.N) / time.Duration(rep.ElapsedNS).Seconds(), p50: time.Duration(rep.P50NS),
		p99: time.Duration(rep.P99NS), cpu: (server + time.Duration(rep.CPUNS)) / n, server: server / n,
		reads: float64(io1.reads-io0.reads) / float64(b.N), writes: float64(io1.writes-io0.writes) / float64(b.N)}
}

// ioCount is this process's read and write system calls so far.
type ioCount struct{ reads, writes int64 }

// procIO reads this process's system call counts from /proc/self/io.
func procIO(b *testing.B) ioCount {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatalf("system call counts: %v", err)
	}
	var c ioCount
	for line := range strings.Lines(string(raw)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			c.reads = n
		case "syscw":
			c.writes = n
		}
	}
	return c
}
