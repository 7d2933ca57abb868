package policyd

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every error the daemon answers.
const Domain = "policyd.dev"

// Every error the daemon answers carries google.rpc details (the gRPC richer error model):
// an ErrorInfo with a stable UPPER_SNAKE reason and metadata (policy, budget, model,
// provider, spent_usd...), a BadRequest for INVALID_ARGUMENT, a RetryInfo for rate limits
// and upstream Retry-After, a QuotaFailure for budget refusals. These helpers read them from
// the error a call returned; they answer the zero value for an error without details (one
// made by the channel itself, or not a gRPC status at all).
//
//	resp, err := c.Complete(ctx, req)
//	switch policyd.ReasonOf(err) {
//	case "RATE_LIMITED":
//		if d, ok := policyd.RetryDelay(err); ok { time.Sleep(d) } // then retry
//	case "BUDGET_EXHAUSTED":
//		// give up until the budget's period ends
//	}

// ErrorInfo is the ErrorInfo detail of err, or nil.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range details(err) {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// ReasonOf is the ErrorInfo reason of err ("RATE_LIMITED", "BUDGET_EXHAUSTED",
// "INVALID_FIELD", ... see docs/errors.md), or "" when err carries none.
func ReasonOf(err error) string { return ErrorInfo(err).GetReason() }

// MetadataOf is the ErrorInfo metadata of err (e.g. "policy", "budget", "spent_usd"), or nil.
func MetadataOf(err error) map[string]string { return ErrorInfo(err).GetMetadata() }

// RetryDelay is how long the daemon asks the caller to wait before retrying (RetryInfo), and
// whether it said so at all.
func RetryDelay(err error) (time.Duration, bool) {
	for _, d := range details(err) {
		if info, ok := d.(*errdetails.RetryInfo); ok && info.GetRetryDelay() != nil {
			return info.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// FieldViolations are the BadRequest field violations of an INVALID_ARGUMENT error: the
// field's path ("messages[0].role") and what is wrong with it.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	for _, d := range details(err) {
		if bad, ok := d.(*errdetails.BadRequest); ok {
			return bad.GetFieldViolations()
		}
	}
	return nil
}

// QuotaViolations are the QuotaFailure violations of a budget refusal; Subject names the
// budget ("budget:tenant/acme/daily").
func QuotaViolations(err error) []*errdetails.QuotaFailure_Violation {
	for _, d := range details(err) {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			return q.GetViolations()
		}
	}
	return nil
}

func details(err error) []any {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return nil
	}
	return s.Details()
}
