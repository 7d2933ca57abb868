package main

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The frames encoded once must read back as a gRPC call, and resending them (with the stream id
// patched) must decode to the same headers: literals never indexed leave the HPACK table alone.
func TestRequestFramesAreAReusableGRPCCall(t *testing.T) {
	frames, dataAt := requestFrames("127.0.0.1:50051", []byte("message"))
	copy2 := append([]byte(nil), frames...)
	binary.BigEndian.PutUint32(copy2[5:9], 3)
	binary.BigEndian.PutUint32(copy2[dataAt+5:dataAt+9], 3)
	fr := http2.NewFramer(nil, bytes.NewReader(append(append([]byte(nil), frames...), copy2...)))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for _, stream := range []uint32{1, 3} {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok || h.StreamID != stream || h.StreamEnded() {
			t.Fatalf("stream %d: want HEADERS without END_STREAM, got %v", stream, f)
		}
		if h.PseudoValue("path") != "/policyd.v1.PolicyService/Complete" || h.PseudoValue("method") != "POST" {
			t.Fatalf("stream %d: pseudo headers %v", stream, h.Fields)
		}
		got := map[string]string{}
		for _, field := range h.RegularFields() {
			got[field.Name] = field.Value
		}
		if got["content-type"] != "application/grpc" || got["te"] != "trailers" {
			t.Fatalf("stream %d: headers %v", stream, got)
		}
		f, err = fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok || d.StreamID != stream || !d.StreamEnded() {
			t.Fatalf("stream %d: want DATA with END_STREAM, got %v", stream, f)
		}
		want := append([]byte{0, 0, 0, 0, 7}, "message"...)
		if !bytes.Equal(d.Data(), want) {
			t.Fatalf("stream %d: message %q, want %q", stream, d.Data(), want)
		}
	}
}
