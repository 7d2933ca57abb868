package policyd

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DefaultTimeout is the deadline given to a call whose context has none. It matches the
// daemon's default request deadline (defaults.deadline_ms: 30000).
const DefaultTimeout = 30 * time.Second

// DefaultServiceConfig retries a call that failed with UNAVAILABLE (the daemon restarting,
// draining on SIGTERM, or not up yet) up to 3 more times with exponential backoff. Other
// codes are answers and are never retried.
const DefaultServiceConfig = `{
  "methodConfig": [{
    "name": [{"service": "policyd.v1.PolicyService"}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// DefaultKeepalive pings an idle connection that has calls in flight every 5 minutes, the
// shortest interval gRPC servers accept by default without answering "too many pings".
var DefaultKeepalive = keepalive.ClientParameters{Time: 5 * time.Minute, Timeout: 20 * time.Second}

// Option configures Dial.
type Option func(*config)

type config struct {
	timeout       time.Duration
	token         string
	plaintext     bool
	creds         credentials.TransportCredentials
	keepalive     keepalive.ClientParameters
	serviceConfig string
	extra         []grpc.DialOption
}

func defaults() config {
	return config{timeout: DefaultTimeout, keepalive: DefaultKeepalive, serviceConfig: DefaultServiceConfig}
}

// WithInsecure uses plaintext HTTP/2, for a daemon on localhost or in the same pod. Without
// it (or WithTransportCredentials) Dial uses TLS with the system's roots.
func WithInsecure() Option { return func(c *config) { c.plaintext = true } }

// WithTransportCredentials uses these credentials (e.g. mutual TLS) instead of the default TLS.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(c *config) { c.creds = creds }
}

// WithToken sends "authorization: Bearer <token>" with every call. Over a plaintext
// connection this is allowed only because WithInsecure says the link is trusted.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithTimeout sets the deadline of calls whose context has none (default DefaultTimeout);
// 0 leaves such calls without a deadline.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithKeepalive replaces DefaultKeepalive.
func WithKeepalive(p keepalive.ClientParameters) Option { return func(c *config) { c.keepalive = p } }

// WithServiceConfig replaces DefaultServiceConfig (JSON, as in gRPC's service config).
func WithServiceConfig(json string) Option { return func(c *config) { c.serviceConfig = json } }

// WithDialOptions appends raw gRPC dial options (interceptors, stats handlers, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.extra = append(c.extra, opts...) }
}

func (c config) dialOptions() ([]grpc.DialOption, error) {
	if c.plaintext && c.creds != nil {
		return nil, errors.New("policyd: WithInsecure and WithTransportCredentials exclude each other")
	}
	creds := c.creds
	switch {
	case c.plaintext:
		creds = insecure.NewCredentials()
	case creds == nil:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(c.keepalive),
		grpc.WithDefaultServiceConfig(c.serviceConfig),
	}
	if c.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: c.token, requireTLS: !c.plaintext}))
	}
	if c.timeout > 0 {
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(unaryDeadline(c.timeout)),
			grpc.WithChainStreamInterceptor(streamDeadline(c.timeout)))
	}
	return append(opts, c.extra...), nil
}

// bearer is a token sent as per-RPC credentials.
type bearer struct {
	token      string
	requireTLS bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.requireTLS }

func unaryDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func streamDeadline(d time.Duration) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if _, ok := ctx.Deadline(); ok {
			return streamer(ctx, desc, cc, method, opts...)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		stream, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		return &cancelOnEnd{ClientStream: stream, cancel: cancel}, nil
	}
}

// cancelOnEnd releases the stream's deadline timer once the stream has ended.
type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}
