// Package policyd is a thin client for the policyd daemon over its generated gRPC stubs
// (package policydv1).
//
// Dial gives a connection with the defaults a service wants: a deadline on every call that
// has none, keepalive, retries of UNAVAILABLE through the gRPC service config, and a bearer
// token sent as per-RPC credentials. The methods take and return the generated messages, so
// nothing of the contract is hidden; Raw gives the generated client itself.
//
//	c, err := policyd.Dial("127.0.0.1:50051", policyd.WithInsecure())
//	if err != nil { ... }
//	defer c.Close()
//	req := policyd.Prompt("Write a binary search in Go")
//	req.Task = "coding"
//	resp, err := c.Complete(ctx, req)
//	if err != nil { ... }                       // policyd.ReasonOf(err), policyd.RetryDelay(err)
//	if !policyd.Succeeded(resp) { ... }         // REJECTED, BUDGET_EXHAUSTED... no output to use
package policyd

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/policyd/policyd/clients/go/policydv1"
)

// Client calls one policyd daemon. It is safe for concurrent use; Close it when done.
type Client struct {
	conn *grpc.ClientConn
	rpc  policydv1.PolicyServiceClient
}

// Dial connects to a daemon at target ("host:port", or any gRPC target such as
// "dns:///policyd.svc:50051"). The connection is made lazily, on the first call.
func Dial(target string, opts ...Option) (*Client, error) {
	cfg := defaults()
	for _, opt := range opts {
		opt(&cfg)
	}
	dialOpts, err := cfg.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, rpc: policydv1.NewPolicyServiceClient(conn)}, nil
}

// Close closes the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// Raw is the generated client on the same connection, with the same defaults.
func (c *Client) Raw() policydv1.PolicyServiceClient { return c.rpc }

// Prompt is a CompleteRequest with one user message; set Task, Stakes, Constraints... on it.
func Prompt(text string) *policydv1.CompleteRequest {
	return &policydv1.CompleteRequest{
		Messages: []*policydv1.Message{{Role: policydv1.Role_ROLE_USER, Content: text}},
	}
}

// Succeeded reports whether resp is an answer to use: its status is ACCEPTED or
// ACCEPTED_UNVALIDATED. A response without an error can still be REJECTED,
// BUDGET_EXHAUSTED, DEADLINE_EXCEEDED or UPSTREAM_FAILED, with no output to use.
func Succeeded(resp *policydv1.CompleteResponse) bool {
	switch resp.GetStatus() {
	case policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED, policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED_UNVALIDATED:
		return true
	}
	return false
}

// Complete runs the request's policy and returns once the answer is final. The outcome's
// Status says whether it was accepted (check it with Succeeded); an error is a gRPC status
// (see the proto).
func (c *Client) Complete(ctx context.Context, req *policydv1.CompleteRequest, opts ...grpc.CallOption) (*policydv1.CompleteResponse, error) {
	return c.rpc.Complete(ctx, req, opts...)
}

// ErrNoFinal reports a stream that ended cleanly without its final event: the daemon
// promises never to do that, so the answer must not be trusted as complete.
var ErrNoFinal = errors.New("policyd: stream ended without a final response")

// Stream is Complete with the answer's text handed to onDelta as it arrives (onDelta may be
// nil). It returns the final response, whose Output holds the whole text. A failure after
// some text was relayed is an error, never a truncated answer.
func (c *Client) Stream(ctx context.Context, req *policydv1.CompleteRequest, onDelta func(text string), opts ...grpc.CallOption) (*policydv1.CompleteResponse, error) {
	return c.StreamEvents(ctx, req, StreamHandler{OnDelta: onDelta}, opts...)
}

// StreamHandler receives a stream's events as they arrive; nil functions are skipped.
type StreamHandler struct {
	// OnDelta gets each piece of the answer's text, in order.
	OnDelta func(text string)
	// OnAttempt gets each attempt (model call, validator run) once, as soon as it is
	// finished; a validator's attempt arrives with its verdict.
	OnAttempt func(attempt *policydv1.Attempt)
}

// StreamEvents is Stream with every event handed to h: text deltas and attempts. It
// returns the final response, as Stream does.
func (c *Client) StreamEvents(ctx context.Context, req *policydv1.CompleteRequest, h StreamHandler, opts ...grpc.CallOption) (*policydv1.CompleteResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the RPC if we return early
	stream, err := c.rpc.StreamComplete(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	var final *policydv1.CompleteResponse
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) { // the final event is the last; the stream then ends with OK
			if final == nil {
				return nil, ErrNoFinal
			}
			return final, nil
		}
		if err != nil {
			return nil, err
		}
		switch e := event.GetEvent().(type) {
		case *policydv1.StreamCompleteResponse_Delta:
			if h.OnDelta != nil {
				h.OnDelta(e.Delta)
			}
		case *policydv1.StreamCompleteResponse_Attempt:
			if h.OnAttempt != nil {
				h.OnAttempt(e.Attempt)
			}
		case *policydv1.StreamCompleteResponse_Final:
			final = e.Final
		}
	}
}

// Explain returns the decision the policy would make for req, without calling any model.
func (c *Client) Explain(ctx context.Context, req *policydv1.CompleteRequest, opts ...grpc.CallOption) (*policydv1.Explanation, error) {
	resp, err := c.rpc.Explain(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	return resp.GetExplanation(), nil
}

// Report is a ReportOutcomeRequest saying whether the answer to requestID served its purpose;
// set Note or Score on it before sending it with ReportOutcome.
func Report(requestID string, success bool) *policydv1.ReportOutcomeRequest {
	return &policydv1.ReportOutcomeRequest{RequestId: requestID, Success: proto.Bool(success)}
}

// ReportOutcome tells the daemon whether an answer served its purpose (build req with
// Report); it counts in the cost per successful outcome. The response's Changed is false
// when the same report was already recorded. An unknown request id is NOT_FOUND, a request
// without Success INVALID_ARGUMENT.
func (c *Client) ReportOutcome(ctx context.Context, req *policydv1.ReportOutcomeRequest, opts ...grpc.CallOption) (*policydv1.ReportOutcomeResponse, error) {
	return c.rpc.ReportOutcome(ctx, req, opts...)
}

// GetStats returns cost per successful outcome and related figures, grouped as req asks.
func (c *Client) GetStats(ctx context.Context, req *policydv1.GetStatsRequest, opts ...grpc.CallOption) (*policydv1.GetStatsResponse, error) {
	return c.rpc.GetStats(ctx, req, opts...)
}

// Embed returns one vector per text, in order, all from the one embedding model the matching
// rule chose (a fallback re-embeds the whole batch). Set Dimensions, Task, Labels or
// Constraints on req for more; NewEmbedRequest builds one from texts.
func (c *Client) Embed(ctx context.Context, req *policydv1.EmbedRequest, opts ...grpc.CallOption) (*policydv1.EmbedResponse, error) {
	return c.rpc.Embed(ctx, req, opts...)
}

// NewEmbedRequest is an EmbedRequest for texts; set Dimensions, Task, Constraints... on it.
func NewEmbedRequest(texts ...string) *policydv1.EmbedRequest {
	return &policydv1.EmbedRequest{Texts: texts}
}

// Vectors returns resp's vectors in the order of the texts.
func Vectors(resp *policydv1.EmbedResponse) [][]float32 {
	out := make([][]float32, len(resp.GetEmbeddings()))
	for _, e := range resp.GetEmbeddings() {
		out[e.GetIndex()] = e.GetValues()
	}
	return out
}

// ListModels returns the catalog, filtered as req says (by provider, tag...); nil is every model.
func (c *Client) ListModels(ctx context.Context, req *policydv1.ListModelsRequest, opts ...grpc.CallOption) ([]*policydv1.Model, error) {
	if req == nil {
		req = &policydv1.ListModelsRequest{}
	}
	resp, err := c.rpc.ListModels(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	return resp.GetModels(), nil
}
