// Command policyd-complete sends one prompt to a policyd daemon and prints the answer, every
// attempt with its cost, and the rule that decided. It is the Go client's example:
//
//	go run ./cmd/policyd-complete -addr 127.0.0.1:50051 -task coding "Write a binary search in Go"
//	go run ./cmd/policyd-complete -stream -explain "Summarise RFC 9110 in one line"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/policyd/policyd/clients/go/policyd"
	"github.com/policyd/policyd/clients/go/policydv1"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "policyd-complete:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	flags := flag.NewFlagSet("policyd-complete", flag.ContinueOnError)
	addr := flags.String("addr", "127.0.0.1:50051", "daemon address")
	task := flags.String("task", "", `task label ("coding", "creative", ...)`)
	stakes := flags.String("stakes", "", "low, normal, high or critical")
	stream := flags.Bool("stream", false, "print the answer as it arrives")
	explain := flags.Bool("explain", false, "only show the decision, call no model")
	timeout := flags.Duration("timeout", 30*time.Second, "deadline of the call")
	tls := flags.Bool("tls", false, "use TLS (default: plaintext, for a local daemon)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		return fmt.Errorf("usage: policyd-complete [flags] PROMPT")
	}

	opts := []policyd.Option{policyd.WithTimeout(*timeout)}
	if !*tls {
		opts = append(opts, policyd.WithInsecure())
	}
	if token := os.Getenv("POLICYD_TOKEN"); token != "" {
		opts = append(opts, policyd.WithToken(token))
	}
	client, err := policyd.Dial(*addr, opts...)
	if err != nil {
		return err
	}
	defer client.Close()

	req := policyd.Prompt(strings.Join(flags.Args(), " "))
	req.Task = *task
	if *stakes != "" {
		value, ok := policydv1.Stakes_value["STAKES_"+strings.ToUpper(*stakes)]
		if !ok {
			return fmt.Errorf("-stakes: unknown %q (low, normal, high, critical)", *stakes)
		}
		req.Stakes = policydv1.Stakes(value)
	}
	ctx := context.Background()

	if *explain {
		e, err := client.Explain(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "policy %s, rule %s: %s over %s\n", e.GetPolicy(), e.GetRule(), e.GetStrategy(), strings.Join(e.GetModels(), ", "))
		fmt.Fprintf(out, "estimated $%.6f to $%.6f\n", e.GetEstimatedCost().GetBestUsd(), e.GetEstimatedCost().GetWorstUsd())
		return nil
	}

	var resp *policydv1.CompleteResponse
	if *stream {
		resp, err = client.Stream(ctx, req, func(text string) { fmt.Fprint(out, text) })
		fmt.Fprintln(out)
	} else {
		resp, err = client.Complete(ctx, req)
		if err == nil {
			fmt.Fprintln(out, resp.GetOutput().GetContent())
		}
	}
	if err != nil {
		return err
	}
	for _, a := range resp.GetAttempts() {
		fmt.Fprintf(out, "  attempt %d %s %s $%.6f\n", a.GetIndex(), a.GetRole(), a.GetModel(), a.GetCostUsd())
	}
	fmt.Fprintf(out, "%s, total $%.6f, rule %s (request %s)\n", resp.GetStatus(), resp.GetTotalCostUsd(), resp.GetExplanation().GetRule(), resp.GetRequestId())
	return nil
}
