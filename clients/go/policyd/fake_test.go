package policyd_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/policyd/policyd/clients/go/policyd"
	"github.com/policyd/policyd/clients/go/policydv1"
)

// recorder is a PolicyService on a loopback port that records what each call carried and
// fails the first `unavailable` calls with UNAVAILABLE, to observe the client's defaults.
type recorder struct {
	policydv1.UnimplementedPolicyServiceServer
	mu          sync.Mutex
	unavailable int
	calls       int
	auth        []string
}

func (r *recorder) ListModels(ctx context.Context, _ *policydv1.ListModelsRequest) (*policydv1.ListModelsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	md, _ := metadata.FromIncomingContext(ctx)
	r.auth = append(r.auth, md.Get("authorization")...)
	if r.calls <= r.unavailable {
		return nil, status.Error(codes.Unavailable, "draining")
	}
	return &policydv1.ListModelsResponse{Models: []*policydv1.Model{{Id: "m"}}}, nil
}

func serve(t *testing.T, r *recorder) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	policydv1.RegisterPolicyServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestTokenIsSentAsBearerOnEveryCall(t *testing.T) {
	r := &recorder{}
	c, err := policyd.Dial(serve(t, r), policyd.WithInsecure(), policyd.WithToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		if _, err := c.ListModels(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.auth) != 2 || r.auth[0] != "Bearer s3cret" || r.auth[1] != "Bearer s3cret" {
		t.Fatalf("authorization seen by the server: %q", r.auth)
	}
}

func TestUnavailableIsRetriedByTheServiceConfig(t *testing.T) {
	r := &recorder{unavailable: 2}
	c, err := policyd.Dial(serve(t, r), policyd.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	models, err := c.ListModels(context.Background(), nil)
	if err != nil || len(models) != 1 {
		t.Fatalf("models=%v err=%v, want success on the third attempt", models, err)
	}
	if r.calls != 3 {
		t.Fatalf("server saw %d calls, want 3 (two UNAVAILABLE, then success)", r.calls)
	}
}

func TestRetriesStopAfterFourAttempts(t *testing.T) {
	r := &recorder{unavailable: 10}
	c, err := policyd.Dial(serve(t, r), policyd.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.ListModels(context.Background(), nil)
	if status.Code(err) != codes.Unavailable || r.calls != 4 {
		t.Fatalf("err=%v after %d calls, want UNAVAILABLE after 4", err, r.calls)
	}
}

func TestTokenOverPlaintextNeedsWithInsecure(t *testing.T) {
	// Plaintext credentials passed as if they were TLS: the token must never leave the process.
	_, err := policyd.Dial("127.0.0.1:1", policyd.WithToken("s3cret"),
		policyd.WithTransportCredentials(insecure.NewCredentials()))
	if err == nil || !strings.Contains(err.Error(), "transport level security") {
		t.Fatalf("err = %v, want Dial to refuse a token over plaintext", err)
	}
}

func TestInsecureAndTransportCredentialsExcludeEachOther(t *testing.T) {
	_, err := policyd.Dial("127.0.0.1:1", policyd.WithInsecure(), policyd.WithTransportCredentials(insecure.NewCredentials()))
	if err == nil {
		t.Fatal("Dial accepted both WithInsecure and WithTransportCredentials")
	}
}
