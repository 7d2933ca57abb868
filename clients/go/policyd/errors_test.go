package policyd_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/policyd/policyd/clients/go/policyd"
	"github.com/policyd/policyd/clients/go/policydv1"
)

func TestInvalidRequestCarriesItsFieldViolation(t *testing.T) {
	c := dial(t)
	req := &policydv1.CompleteRequest{Messages: []*policydv1.Message{{Content: "no role"}}}
	_, err := c.Complete(context.Background(), req)
	if status.Code(err) != codes.InvalidArgument || policyd.ReasonOf(err) != "INVALID_FIELD" {
		t.Fatalf("err = %v with reason %q, want INVALID_ARGUMENT / INVALID_FIELD", err, policyd.ReasonOf(err))
	}
	if info := policyd.ErrorInfo(err); info.GetDomain() != policyd.Domain {
		t.Errorf("domain = %q, want %q", info.GetDomain(), policyd.Domain)
	}
	v := policyd.FieldViolations(err)
	if len(v) != 1 || v[0].GetField() != "messages[0].role" || !strings.Contains(v[0].GetDescription(), "must be one of") {
		t.Fatalf("field violations = %v, want one for messages[0].role", v)
	}
	if _, ok := policyd.RetryDelay(err); ok {
		t.Error("a bad request must not say when to retry")
	}
}

func TestUnknownPolicyHasItsReasonAndName(t *testing.T) {
	c := dial(t)
	req := prompt(t, "coding")
	req.Policy = "no-such-policy"
	_, err := c.Complete(context.Background(), req)
	if policyd.ReasonOf(err) != "POLICY_NOT_FOUND" || policyd.MetadataOf(err)["policy"] != "no-such-policy" {
		t.Fatalf("err = %v, reason %q, metadata %v", err, policyd.ReasonOf(err), policyd.MetadataOf(err))
	}
}

func TestRateLimitedCallSaysWhenToRetry(t *testing.T) {
	c := dial(t)
	var err error
	for i := 0; i < 3 && err == nil; i++ { // one request a minute: the second (or, across a minute boundary, third) is refused
		req := prompt(t, "chat")
		req.Tenant = "throttled"
		_, err = c.Complete(context.Background(), req)
	}
	if status.Code(err) != codes.ResourceExhausted || policyd.ReasonOf(err) != "RATE_LIMITED" {
		t.Fatalf("err = %v with reason %q, want RESOURCE_EXHAUSTED / RATE_LIMITED", err, policyd.ReasonOf(err))
	}
	delay, ok := policyd.RetryDelay(err)
	if !ok || delay <= 0 || delay > time.Minute {
		t.Fatalf("retry delay = %v (%v), want within a minute", delay, ok)
	}
	if policyd.MetadataOf(err)["tenant"] != "throttled" {
		t.Errorf("metadata = %v, want the tenant named", policyd.MetadataOf(err))
	}
}

func TestBudgetRefusalNamesTheBudget(t *testing.T) {
	c := dial(t)
	req := prompt(t, "chat")
	req.Tenant = "broke"
	_, err := c.Complete(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted || policyd.ReasonOf(err) != "BUDGET_EXHAUSTED" {
		t.Fatalf("err = %v with reason %q, want RESOURCE_EXHAUSTED / BUDGET_EXHAUSTED", err, policyd.ReasonOf(err))
	}
	q := policyd.QuotaViolations(err)
	if len(q) != 1 || q[0].GetSubject() != "budget:tenant/broke/daily" {
		t.Fatalf("quota violations = %v, want the tenant's daily budget", q)
	}
	if md := policyd.MetadataOf(err); md["budget"] != "tenant/broke/daily" || md["spent_usd"] == "" {
		t.Errorf("metadata = %v, want budget and spent_usd", md)
	}
}

func TestErrorsWithoutDetailsReadAsZero(t *testing.T) {
	for _, err := range []error{nil, errors.New("plain"), status.Error(codes.Unavailable, "no details")} {
		if policyd.ReasonOf(err) != "" || policyd.FieldViolations(err) != nil || policyd.QuotaViolations(err) != nil {
			t.Errorf("%v: details read from an error that has none", err)
		}
		if _, ok := policyd.RetryDelay(err); ok {
			t.Errorf("%v: a retry delay read from an error that has none", err)
		}
	}
}

func TestReusedRequestIDIsReplayedOrRefused(t *testing.T) {
	c := dial(t)
	req := prompt(t, "chat")
	req.RequestId = fmt.Sprintf("go-idem-%d", time.Now().UnixNano())
	first, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetReplayed() || !again.GetReplayed() || again.GetDecisionId() != first.GetDecisionId() {
		t.Fatalf("replayed %v then %v (decisions %q, %q), want the first answer replayed",
			first.GetReplayed(), again.GetReplayed(), first.GetDecisionId(), again.GetDecisionId())
	}
	other := prompt(t, "chat")
	other.RequestId = req.RequestId
	_, err = c.Complete(context.Background(), other)
	if status.Code(err) != codes.AlreadyExists || policyd.ReasonOf(err) != "REQUEST_ID_REUSED" {
		t.Fatalf("err = %v with reason %q, want ALREADY_EXISTS / REQUEST_ID_REUSED", err, policyd.ReasonOf(err))
	}
}

func TestStreamEventsDeliverEachAttemptOnce(t *testing.T) {
	c := dial(t)
	req := prompt(t, "creative") // draft-validate with an LLM judge on the offline default
	var attempts []*policydv1.Attempt
	var text strings.Builder
	final, err := c.StreamEvents(context.Background(), req, policyd.StreamHandler{
		OnDelta:   func(d string) { text.WriteString(d) },
		OnAttempt: func(a *policydv1.Attempt) { attempts = append(attempts, a) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != len(final.GetAttempts()) || len(attempts) < 2 {
		t.Fatalf("%d attempt events for %d attempts, want one each (and a judge)", len(attempts), len(final.GetAttempts()))
	}
	for i, a := range attempts {
		if a.GetIndex() != int32(i) {
			t.Fatalf("event %d has index %d: each attempt must arrive once, in order", i, a.GetIndex())
		}
	}
	if text.String() != final.GetOutput().GetContent() {
		t.Errorf("deltas %q != output %q", text.String(), final.GetOutput().GetContent())
	}
}

func TestSucceededTellsAnAnswerFromARefusal(t *testing.T) {
	c := dial(t)
	resp, err := c.Complete(context.Background(), prompt(t, "chat"))
	if err != nil {
		t.Fatal(err)
	}
	if !policyd.Succeeded(resp) || resp.GetOutput().GetContent() == "" {
		t.Fatalf("status %v: want an accepted answer", resp.GetStatus())
	}
	for _, s := range []policydv1.OutcomeStatus{
		policydv1.OutcomeStatus_OUTCOME_STATUS_REJECTED,
		policydv1.OutcomeStatus_OUTCOME_STATUS_BUDGET_EXHAUSTED,
		policydv1.OutcomeStatus_OUTCOME_STATUS_DEADLINE_EXCEEDED,
		policydv1.OutcomeStatus_OUTCOME_STATUS_UPSTREAM_FAILED,
	} {
		if policyd.Succeeded(&policydv1.CompleteResponse{Status: s}) {
			t.Errorf("%v counted as succeeded", s)
		}
	}
}
