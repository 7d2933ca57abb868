// Command policyd-load is a load generator for policyd's Complete RPC, used by
// bench/workers_bench.py: on a small machine the load generator shares the cores with the
// workers it measures, and Go spends a fraction of the CPU per request that the Python one
// does, so more of the machine is left to the daemon.
//
//	go run ./cmd/policyd-load -addr 127.0.0.1:50051 -concurrency 32 -connections 8 -duration 8s
//	go run ./cmd/policyd-load -addr 127.0.0.1:50051 -rate 500 -connections 8 -duration 8s -unique
//
// Closed loop (the default): -concurrency requests in flight, each sent as the last returns.
// Open loop (-rate R): R requests a second on a fixed schedule whatever the server does, each
// latency measured from its scheduled time. -unique makes every prompt different (no cache
// hits, for the default config with the cache on). Requests take the -connections TCP connections in
// turn: policyd's workers share one address with SO_REUSEPORT, and the kernel spreads
// connections, not requests, so a few connections can leave a worker without any.
//
// -raw sends the same call through raw.go's lean HTTP/2 client (the request's frames encoded
// once) instead of grpc-go: about half the CPU per request, the answer still read and checked.
//
// -procs 1 (the default) runs it on one OS thread at a time: on two cores shared with the
// daemon it spent less CPU per request than with GOMAXPROCS=2 in each of six paired runs
// (fewer cross-thread wake-ups), and one thread sends far more than a worker answers.
//
// Before the measured phase it prints {"phase":"measuring"} (the bench reads the daemon's CPU
// then); at the end one JSON object: count, errors, seconds, rps, p50_ms, p99_ms, the load
// generator's own CPU seconds in the measured phase, and each connection's local port and
// answered requests (the bench maps ports to the worker that accepted them).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/policyd/policyd/clients/go/policydv1"
)

// prompt is bench/loadgen.py's, so both generators send the same request.
const prompt = "What is 6 times 7? Answer with the number only."

type connStats struct {
	LocalPort int   `json:"local_port"`
	Count     int64 `json:"count"`
}

type result struct {
	Count       int         `json:"count"`
	Errors      int         `json:"errors"`
	Seconds     float64     `json:"seconds"`
	RPS         float64     `json:"rps"`
	P50ms       float64     `json:"p50_ms"`
	P99ms       float64     `json:"p99_ms"`
	CPUSeconds  float64     `json:"cpu_s"`
	Connections []connStats `json:"connections"`
}

// conn is one gRPC channel pinned to one TCP connection, with its answered requests.
type conn struct {
	client policydv1.PolicyServiceClient
	raw    *rawConn
	port   atomic.Int64
	count  atomic.Int64
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "policyd-load:", err)
		os.Exit(1)
	}
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}

func dial(addr string) (*conn, *grpc.ClientConn, error) {
	c := &conn{}
	dialer := func(ctx context.Context, target string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
		if err == nil {
			if tcp, ok := nc.LocalAddr().(*net.TCPAddr); ok {
				c.port.Store(int64(tcp.Port))
			}
		}
		return nc, err
	}
	cc, err := grpc.NewClient(
		"passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialer),
	)
	if err != nil {
		return nil, nil, err
	}
	c.client = policydv1.NewPolicyServiceClient(cc)
	return c, cc, nil
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:50051", "daemon address")
	concurrency := flag.Int("concurrency", 32, "closed loop: requests in flight")
	rate := flag.Float64("rate", 0, "open loop: requests per second on a fixed schedule (0: closed loop)")
	connections := flag.Int("connections", 8, "TCP connections the requests take in turn")
	duration := flag.Duration("duration", 8*time.Second, "measured time")
	warmup := flag.Int("warmup", 300, "requests sent first and not measured")
	procs := flag.Int("procs", 1, "OS threads running Go code (GOMAXPROCS): one costs the shared cores less CPU per request")
	raw := flag.Bool("raw", false, "the lean HTTP/2 client of raw.go instead of grpc-go (the same call on the wire)")
	unique := flag.Bool("unique", false, "a different prompt each request (no cache hits), as bench/loadgen.py --unique")
	flag.Parse()
	if *concurrency < 1 || *connections < 1 || *procs < 1 || *rate < 0 {
		return fmt.Errorf("-concurrency, -connections and -procs must be at least 1, -rate at least 0")
	}
	runtime.GOMAXPROCS(*procs)
	request := &policydv1.CompleteRequest{
		Messages: []*policydv1.Message{{Role: policydv1.Role_ROLE_USER, Content: prompt}},
	}
	encoded, err := proto.Marshal(request)
	if err != nil {
		return err
	}
	conns := make([]*conn, *connections)
	for i := range conns {
		if *raw {
			c := &conn{}
			if c.raw, err = dialRaw(*addr, encoded, c); err != nil {
				return err
			}
			defer c.raw.conn.Close()
			conns[i] = c
			continue
		}
		c, cc, err := dial(*addr)
		if err != nil {
			return err
		}
		defer cc.Close()
		conns[i] = c
	}
	runID := fmt.Sprintf("%08x", time.Now().UnixNano()&0xffffffff) // distinct across runs against one daemon
	var sent atomic.Int64
	send := func(c *conn) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := request
		if *unique {
			content := fmt.Sprintf("%s #%s-%d", prompt, runID, sent.Add(1))
			req = &policydv1.CompleteRequest{Messages: []*policydv1.Message{{Role: policydv1.Role_ROLE_USER, Content: content}}}
		}
		if c.raw != nil {
			if req == request {
				return c.raw.call(nil)
			}
			body, err := proto.Marshal(req)
			return err == nil && c.raw.call(body)
		}
		resp, err := c.client.Complete(ctx, req)
		if err != nil {
			return false
		}
		s := resp.GetStatus()
		return s == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED ||
			s == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED_UNVALIDATED
	}
	for i := 0; i < max(*warmup, *connections); i++ { // every connection is open before the measured phase
		send(conns[i%len(conns)])
	}
	if _, err := fmt.Fprintln(os.Stdout, `{"phase":"measuring"}`); err != nil {
		return err
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	var latencies []time.Duration
	var errors int
	if *rate > 0 {
		latencies, errors = openLoop(conns, send, *rate, start, *duration)
	} else {
		latencies, errors = closedLoop(conns, send, *concurrency, start.Add(*duration))
	}
	elapsed := time.Since(start).Seconds()
	out := result{Count: len(latencies), Errors: errors, Seconds: elapsed, RPS: float64(len(latencies)) / elapsed}
	out.CPUSeconds = cpuSeconds() - cpu0
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if n := len(latencies); n > 0 {
		out.P50ms = float64(latencies[n/2].Microseconds()) / 1000
		out.P99ms = float64(latencies[n*99/100].Microseconds()) / 1000
	}
	for _, c := range conns {
		out.Connections = append(out.Connections, connStats{LocalPort: int(c.port.Load()), Count: c.count.Load()})
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// closedLoop runs concurrency senders back to back until the deadline, spread over the connections.
func closedLoop(conns []*conn, send func(*conn) bool, concurrency int, deadline time.Time) ([]time.Duration, int) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errors    int
		wg        sync.WaitGroup
	)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(c *conn) {
			defer wg.Done()
			var mine []time.Duration
			failed := 0
			for time.Now().Before(deadline) {
				t := time.Now()
				if send(c) {
					mine = append(mine, time.Since(t))
					c.count.Add(1)
				} else {
					failed++
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			errors += failed
			mu.Unlock()
		}(conns[w%len(conns)])
	}
	wg.Wait()
	return latencies, errors
}

// openLoop sends rate requests a second on a fixed schedule, each latency counted from its
// scheduled time, so a stalled server shows as latency rather than as less load.
func openLoop(conns []*conn, send func(*conn) bool, rate float64, start time.Time, duration time.Duration) ([]time.Duration, int) {
	total := int(rate * duration.Seconds())
	if total < 1 {
		total = 1
	}
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, total)
		errors    int
		wg        sync.WaitGroup
	)
	for i := 0; i < total; i++ {
		scheduled := start.Add(time.Duration(i) * interval)
		if d := time.Until(scheduled); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(c *conn, scheduled time.Time) {
			defer wg.Done()
			ok := send(c)
			took := time.Since(scheduled)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				latencies = append(latencies, took)
				c.count.Add(1)
			} else {
				errors++
			}
		}(conns[i%len(conns)], scheduled)
	}
	wg.Wait()
	return latencies, errors
}
