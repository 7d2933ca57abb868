// Command policyd-load is a closed-loop load generator for policyd's Complete RPC, used by
// bench/workers_bench.py: on a small machine the load generator shares the cores with the
// workers it measures, and Go spends a fraction of the CPU per request that the Python one
// does, so more of the machine is left to the daemon.
//
//	go run ./cmd/policyd-load -addr 127.0.0.1:50051 -concurrency 32 -connections 8 -duration 8s
//
// It prints one JSON object: count, errors, seconds, rps, p50_ms, p99_ms.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/policyd/policyd/clients/go/policydv1"
)

// prompt is bench/loadgen.py's, so both generators send the same request.
const prompt = "What is 6 times 7? Answer with the number only."

type result struct {
	Count   int     `json:"count"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
	RPS     float64 `json:"rps"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "policyd-load:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:50051", "daemon address")
	concurrency := flag.Int("concurrency", 32, "requests in flight")
	connections := flag.Int("connections", 8, "TCP connections the requests take in turn")
	duration := flag.Duration("duration", 8*time.Second, "measured time")
	warmup := flag.Int("warmup", 300, "requests sent first and not measured")
	flag.Parse()
	if *concurrency < 1 || *connections < 1 {
		return fmt.Errorf("-concurrency and -connections must be at least 1")
	}
	clients := make([]policydv1.PolicyServiceClient, *connections)
	for i := range clients {
		conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		clients[i] = policydv1.NewPolicyServiceClient(conn)
	}
	request := &policydv1.CompleteRequest{
		Messages: []*policydv1.Message{{Role: policydv1.Role_ROLE_USER, Content: prompt}},
	}
	send := func(client policydv1.PolicyServiceClient) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := client.Complete(ctx, request)
		if err != nil {
			return false
		}
		s := resp.GetStatus()
		return s == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED ||
			s == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED_UNVALIDATED
	}
	for i := 0; i < *warmup; i++ {
		send(clients[i%len(clients)])
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errors    int
		wg        sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(*duration)
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(client policydv1.PolicyServiceClient) {
			defer wg.Done()
			var mine []time.Duration
			failed := 0
			for time.Now().Before(deadline) {
				t := time.Now()
				if send(client) {
					mine = append(mine, time.Since(t))
				} else {
					failed++
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			errors += failed
			mu.Unlock()
		}(clients[w%len(clients)])
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	out := result{Count: len(latencies), Errors: errors, Seconds: elapsed, RPS: float64(len(latencies)) / elapsed}
	if n := len(latencies); n > 0 {
		out.P50ms = float64(latencies[n/2].Microseconds()) / 1000
		out.P99ms = float64(latencies[n*99/100].Microseconds()) / 1000
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
