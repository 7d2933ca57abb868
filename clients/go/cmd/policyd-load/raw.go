package main

// A lean gRPC unary client for -raw: the same Complete call on the wire (HTTP/2, the same
// headers and message), with the request's frames encoded once and only the stream id
// patched per call. It stands in for many remote callers at a fraction of grpc-go's CPU per
// request, which matters when the load generator shares two cores with the daemon it measures.
// Each answer is still read whole: the trailers' grpc-status and the decoded response status.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/policyd/policyd/clients/go/policydv1"
)

const maxWindow = 1<<31 - 1

type rawStream struct {
	data   []byte
	status string
	done   chan error
}

type rawConn struct {
	mu      sync.Mutex
	conn    net.Conn
	next    uint32
	frames  []byte // HEADERS + DATA of one call, stream id 1
	dataAt  int    // where the DATA frame starts in frames
	auth    string
	streams map[uint32]*rawStream
	err     error
}

// requestFrames encodes a call's HEADERS and DATA frames once, for stream 1. Header fields are
// literals never indexed, so the block leaves the server's HPACK table unchanged and can be resent.
func requestFrames(authority string, request []byte) ([]byte, int) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/policyd.v1.PolicyService/Complete"},
		{":authority", authority}, {"content-type", "application/grpc"}, {"te", "trailers"},
		{"grpc-timeout", "10S"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	message := make([]byte, 5+len(request))
	binary.BigEndian.PutUint32(message[1:5], uint32(len(request)))
	copy(message[5:], request)
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	_ = fr.WriteData(1, true, message)
	frames := out.Bytes()
	return frames, 9 + (int(frames[0])<<16 | int(frames[1])<<8 | int(frames[2]))
}

func dialRaw(addr string, request []byte, c *conn) (*rawConn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		c.port.Store(int64(tcp.Port))
	}
	r := &rawConn{conn: nc, next: 1, auth: addr, streams: map[uint32]*rawStream{}}
	r.frames, r.dataAt = requestFrames(addr, request)
	var hello bytes.Buffer
	hello.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&hello, nil)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxWindow})
	_ = fr.WriteWindowUpdate(0, maxWindow-65535) // answers never wait for a window update
	if _, err := nc.Write(hello.Bytes()); err != nil {
		nc.Close()
		return nil, err
	}
	go r.read()
	return r, nil
}

// Sending does not track the server's flow-control window: a call's DATA is about 60 bytes
// and policyd's gRPC server returns the window as it reads (2,945 calls on one connection, no
// error), so a bench never comes near it.

// call sends one Complete (request: its message, or nil for the one given at dial) and waits
// for its whole answer; true when it was accepted.
func (r *rawConn) call(request []byte) bool {
	s := &rawStream{done: make(chan error, 1)}
	r.mu.Lock()
	if r.err != nil {
		r.mu.Unlock()
		return false
	}
	id := r.next
	r.next += 2
	r.streams[id] = s
	frames, dataAt := r.frames, r.dataAt
	if request != nil {
		frames, dataAt = requestFrames(r.auth, request)
	}
	binary.BigEndian.PutUint32(frames[5:9], id) // the HEADERS frame's stream id
	binary.BigEndian.PutUint32(frames[dataAt+5:dataAt+9], id)
	_, err := r.conn.Write(frames)
	r.mu.Unlock()
	if err != nil {
		r.fail(err)
		return false
	}
	if err := <-s.done; err != nil || s.status != "0" || len(s.data) < 5 {
		return false
	}
	var resp policydv1.CompleteResponse
	if proto.Unmarshal(s.data[5:], &resp) != nil {
		return false
	}
	st := resp.GetStatus()
	return st == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED ||
		st == policydv1.OutcomeStatus_OUTCOME_STATUS_ACCEPTED_UNVALIDATED
}

func (r *rawConn) read() {
	fr := http2.NewFramer(r.conn, bufio.NewReaderSize(r.conn, 64<<10))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			r.fail(err)
			return
		}
		switch f := frame.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.write(func(w *http2.Framer) error { return w.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				r.write(func(w *http2.Framer) error { return w.WritePing(true, f.Data) })
			}
		case *http2.GoAwayFrame:
			r.fail(fmt.Errorf("GOAWAY %v", f.ErrCode))
			return
		case *http2.DataFrame:
			if s := r.stream(f.StreamID, false); s != nil {
				s.data = append(s.data, f.Data()...)
			}
		case *http2.MetaHeadersFrame:
			if v := f.PseudoValue("status"); v != "" && v != "200" {
				if s := r.stream(f.StreamID, true); s != nil {
					s.done <- fmt.Errorf("HTTP status %s", v)
				}
				continue
			}
			if f.StreamEnded() {
				if s := r.stream(f.StreamID, true); s != nil {
					s.status = "missing"
					for _, field := range f.RegularFields() {
						if field.Name == "grpc-status" {
							s.status = field.Value
						}
					}
					s.done <- nil
				}
			}
		case *http2.RSTStreamFrame:
			if s := r.stream(f.StreamID, true); s != nil {
				s.done <- errors.New("stream reset: " + strconv.Itoa(int(f.ErrCode)))
			}
		}
	}
}

func (r *rawConn) stream(id uint32, remove bool) *rawStream {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.streams[id]
	if remove {
		delete(r.streams, id)
	}
	return s
}

func (r *rawConn) write(frame func(*http2.Framer) error) {
	var b bytes.Buffer
	_ = frame(http2.NewFramer(&b, nil))
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.conn.Write(b.Bytes()); err != nil && r.err == nil {
		r.err = err
	}
}

func (r *rawConn) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	for id, s := range r.streams {
		s.done <- err
		delete(r.streams, id)
	}
	r.conn.Close()
}
