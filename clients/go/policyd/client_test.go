package policyd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/policyd/policyd/clients/go/internal/daemontest"
	"github.com/policyd/policyd/clients/go/policyd"
	"github.com/policyd/policyd/clients/go/policydv1"
)

// One daemon for the package's integration tests: starting Python costs about a second.
var daemon *daemontest.Daemon

// refusals gives two tenants limits the error-details tests can hit; others are unlimited.
const refusals = `limits: {tenants: {throttled: {requests_per_minute: 1}}}
budgets: {tenants: {broke: {daily_usd: 0.000001}}}`

func TestMain(m *testing.M) {
	d, err := daemontest.Start(refusals)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemon = d
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "daemon output:\n%s\n", d.Output())
	}
	d.Stop()
	os.Exit(code)
}

func dial(t *testing.T, opts ...policyd.Option) *policyd.Client {
	t.Helper()
	c, err := policyd.Dial(daemon.Addr, append([]policyd.Option{policyd.WithInsecure()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// prompt is unique per test, so no answer comes from the daemon's cache.
func prompt(t *testing.T, task string) *policydv1.CompleteRequest {
	req := policyd.Prompt(fmt.Sprintf("Write a binary search in Go (%s, %d)", t.Name(), time.Now().UnixNano()))
	req.Task = task
	return req
}

func accepted(s policydv1.OutcomeStatus) bool {
	return s == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED || s == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED_UNVALIDATED
}

func TestCompleteAnswersWithAttemptsCostAndExplanation(t *testing.T) {
	c := dial(t)
	req := prompt(t, "coding")
	req.RequestId = "go-complete-" + fmt.Sprint(time.Now().UnixNano())

	resp, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRequestId() != req.RequestId {
		t.Errorf("request id = %q, want the caller's %q", resp.GetRequestId(), req.RequestId)
	}
	if !accepted(resp.GetStatus()) || resp.GetOutput().GetContent() == "" {
		t.Fatalf("status %v with output %q, want an accepted answer", resp.GetStatus(), resp.GetOutput().GetContent())
	}
	if len(resp.GetAttempts()) == 0 {
		t.Fatal("no attempts in the response")
	}
	var sum float64
	for _, a := range resp.GetAttempts() {
		sum += a.GetCostUsd()
		// Only a validator that calls no model (e.g. a confidence gate) leaves it empty.
		if a.GetModel() == "" && a.GetRole() != policydv1.AttemptRole_ATTEMPT_ROLE_VALIDATE {
			t.Errorf("attempt %d (%v) names no model", a.GetIndex(), a.GetRole())
		}
	}
	if resp.GetTotalCostUsd() <= 0 || fmt.Sprintf("%.9f", sum) != fmt.Sprintf("%.9f", resp.GetTotalCostUsd()) {
		t.Errorf("total cost %v, attempts add up to %v", resp.GetTotalCostUsd(), sum)
	}
	if e := resp.GetExplanation(); e.GetRule() == "" || e.GetStrategy() == "" || e.GetPolicyVersion() == "" {
		t.Errorf("explanation lacks rule, strategy or policy version: %v", e)
	}
}

func TestStreamRelaysTheAnswerThenTheFinalResponse(t *testing.T) {
	c := dial(t)
	var deltas []string
	final, err := c.Stream(context.Background(), prompt(t, "chat"), func(text string) { deltas = append(deltas, text) })
	if err != nil {
		t.Fatal(err)
	}
	if len(deltas) < 2 {
		t.Fatalf("got %d deltas, want the answer in several pieces", len(deltas))
	}
	if got, want := strings.Join(deltas, ""), final.GetOutput().GetContent(); got != want {
		t.Errorf("deltas joined = %q, final output = %q", got, want)
	}
	if !accepted(final.GetStatus()) || len(final.GetAttempts()) == 0 {
		t.Errorf("final: status %v, %d attempts", final.GetStatus(), len(final.GetAttempts()))
	}
}

func TestStreamEventsEndWithExactlyOneFinal(t *testing.T) {
	c := dial(t)
	stream, err := c.Raw().StreamComplete(context.Background(), prompt(t, "coding"))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch event.GetEvent().(type) {
		case *policydv1.StreamCompleteResponse_Delta:
			kinds = append(kinds, "delta")
		case *policydv1.StreamCompleteResponse_Attempt:
			kinds = append(kinds, "attempt")
		case *policydv1.StreamCompleteResponse_Final:
			kinds = append(kinds, "final")
		}
	}
	if len(kinds) == 0 || kinds[len(kinds)-1] != "final" || slices.Index(kinds, "final") != len(kinds)-1 {
		t.Fatalf("events %v: want exactly one final, last", kinds)
	}
	if !slices.Contains(kinds, "attempt") || !slices.Contains(kinds, "delta") {
		t.Errorf("events %v: want deltas and attempts before the final", kinds)
	}
}

func TestExplainShowsThePlanWithoutCallingAModel(t *testing.T) {
	c := dial(t)
	req := prompt(t, "coding")
	req.Stakes = policydv1.Stakes_STAKES_HIGH
	e, err := c.Explain(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if e.GetPolicy() == "" || e.GetRule() == "" || e.GetStrategy() == "" || len(e.GetModels()) == 0 {
		t.Fatalf("explanation lacks policy, rule, strategy or models: %v", e)
	}
	if best, worst := e.GetEstimatedCost().GetBestUsd(), e.GetEstimatedCost().GetWorstUsd(); best <= 0 || worst < best {
		t.Errorf("estimated cost range [%v, %v]", best, worst)
	}
}

func TestListModelsFiltersByTag(t *testing.T) {
	c := dial(t)
	all, err := c.ListModels(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	coding, err := c.ListModels(context.Background(), &policydv1.ListModelsRequest{Tag: "coding"})
	if err != nil {
		t.Fatal(err)
	}
	if len(coding) == 0 || len(coding) >= len(all) {
		t.Fatalf("%d coding models out of %d", len(coding), len(all))
	}
	for _, m := range coding {
		if !slices.Contains(m.GetTags(), "coding") {
			t.Errorf("model %s without the coding tag: %v", m.GetId(), m.GetTags())
		}
		if m.GetProvider() == "" || m.GetContextWindow() <= 0 {
			t.Errorf("model %s lacks provider or context window", m.GetId())
		}
	}
}

func TestExpiredDeadlineIsDeadlineExceeded(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := c.Complete(ctx, prompt(t, "coding"))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	_, err = c.Stream(ctx, prompt(t, "coding"), nil)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("stream err = %v, want DEADLINE_EXCEEDED", err)
	}
}

func TestDefaultTimeoutBoundsCallsWithoutADeadline(t *testing.T) {
	c := dial(t, policyd.WithTimeout(10*time.Millisecond))
	_, err := c.Complete(context.Background(), prompt(t, "coding"))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED from the default timeout", err)
	}
	_, err = c.Stream(context.Background(), prompt(t, "coding"), nil)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("stream err = %v, want DEADLINE_EXCEEDED from the default timeout", err)
	}
}

func TestInvalidRequestNamesTheField(t *testing.T) {
	c := dial(t)
	req := &policydv1.CompleteRequest{Messages: []*policydv1.Message{{Content: "no role"}}}
	_, err := c.Complete(context.Background(), req)
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "messages[0].role") {
		t.Fatalf("err = %v, want INVALID_ARGUMENT naming messages[0].role", err)
	}
}

func TestUnknownPolicyIsNotFound(t *testing.T) {
	c := dial(t)
	req := prompt(t, "coding")
	req.Policy = "no-such-policy"
	_, err := c.Complete(context.Background(), req)
	if status.Code(err) != codes.NotFound {
		t.Fatalf("err = %v, want NOT_FOUND", err)
	}
}

// ledgerAbsent is true when the daemon answers UNIMPLEMENTED because it runs no ledger:
// the only acceptable reason for ReportOutcome and GetStats not to answer.
func ledgerAbsent(t *testing.T, err error) bool {
	st := status.Convert(err)
	if st.Code() != codes.Unimplemented {
		return false
	}
	if !strings.Contains(st.Message(), "ledger") {
		t.Fatalf("UNIMPLEMENTED without saying the ledger is missing: %v", err)
	}
	t.Logf("the daemon runs no ledger: %s", st.Message())
	return true
}

func TestReportOutcomeOfUnknownRequestIsNotFound(t *testing.T) {
	c := dial(t)
	_, err := c.ReportOutcome(context.Background(), policyd.Report(fmt.Sprintf("never-issued-%d", time.Now().UnixNano()), false))
	if ledgerAbsent(t, err) {
		return
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("err = %v, want NOT_FOUND for an unknown request id", err)
	}
}

func TestReportOutcomeIsIdempotent(t *testing.T) {
	c := dial(t)
	resp, err := c.Complete(context.Background(), prompt(t, "coding"))
	if err != nil {
		t.Fatal(err)
	}
	report := policyd.Report(resp.GetRequestId(), false)
	report.Note = "did not compile"
	first, err := c.ReportOutcome(context.Background(), report)
	if ledgerAbsent(t, err) {
		return
	}
	if err != nil || !first.GetChanged() {
		t.Fatalf("first report: changed=%v err=%v, want recorded", first.GetChanged(), err)
	}
	again, err := c.ReportOutcome(context.Background(), report)
	if err != nil || again.GetChanged() {
		t.Fatalf("same report again: changed=%v err=%v, want an unchanged no-op", again.GetChanged(), err)
	}
}

func TestReportOutcomeWithoutSuccessIsInvalidArgument(t *testing.T) {
	c := dial(t)
	resp, err := c.Complete(context.Background(), prompt(t, "coding"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ReportOutcome(context.Background(), &policydv1.ReportOutcomeRequest{RequestId: resp.GetRequestId(), Note: "forgot"})
	if ledgerAbsent(t, err) {
		return
	}
	v := policyd.FieldViolations(err)
	if status.Code(err) != codes.InvalidArgument || len(v) != 1 || v[0].GetField() != "success" {
		t.Fatalf("err = %v, violations %v: want INVALID_ARGUMENT naming success", err, v)
	}
}

func TestGetStatsCountsAnsweredRequests(t *testing.T) {
	c := dial(t)
	if _, err := c.Complete(context.Background(), prompt(t, "coding")); err != nil {
		t.Fatal(err)
	}
	stats, err := c.GetStats(context.Background(), &policydv1.GetStatsRequest{})
	if ledgerAbsent(t, err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var requests int64
	for _, row := range stats.GetRows() {
		requests += row.GetRequests()
	}
	if requests < 1 || stats.GetPolicyVersion() == "" {
		t.Fatalf("stats %v: want the answered request counted and the policy version", stats)
	}
}

func TestEmbedAnswersOneUnitVectorPerTextFromOneModel(t *testing.T) {
	c := dial(t)
	texts := []string{"go embeds by policy", "go embeds texts by policy", "go embeds by policy"}
	resp, err := c.Embed(context.Background(), policyd.NewEmbedRequest(texts...))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED_UNVALIDATED || resp.GetModel() == "" {
		t.Fatalf("status %v model %q", resp.GetStatus(), resp.GetModel())
	}
	vectors := policyd.Vectors(resp)
	if len(vectors) != 3 {
		t.Fatalf("%d vectors for 3 texts", len(vectors))
	}
	for i, v := range vectors {
		var norm float64
		for _, x := range v {
			norm += float64(x) * float64(x)
		}
		if len(v) != int(resp.GetDimensions()) || norm < 0.999 || norm > 1.001 {
			t.Errorf("vector %d: %d values (want %d), squared norm %v", i, len(v), resp.GetDimensions(), norm)
		}
	}
	if !slices.Equal(vectors[0], vectors[2]) {
		t.Error("the same text gave two vectors")
	}
	req := policyd.NewEmbedRequest(texts[1], "a text go has not embedded yet")
	dims := int32(64)
	req.Dimensions = &dims
	short, err := c.Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if short.GetDimensions() != 64 || len(short.GetEmbeddings()[1].GetValues()) != 64 {
		t.Errorf("asked for 64 dimensions, got %d", short.GetDimensions())
	}
}

func TestEmbedWithoutTextsNamesTheField(t *testing.T) {
	c := dial(t)
	_, err := c.Embed(context.Background(), policyd.NewEmbedRequest())
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "texts") {
		t.Fatalf("err = %v, want INVALID_ARGUMENT naming texts", err)
	}
}
