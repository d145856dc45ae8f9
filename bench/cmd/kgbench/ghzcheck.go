package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/keygate/keygate/bench"
)

// recorder is a gRPC server that keeps the raw bytes of every request it
// gets (any method) and answers with an empty message.
type recorder struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (r *recorder) handle(_ any, stream grpc.ServerStream) error {
	var msg []byte
	if err := stream.RecvMsg(&msg); err != nil {
		return err
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
	return stream.SendMsg([]byte{})
}

// verifyGhzPayload runs ghz with the request file against a recorder and
// checks that what ghz sends is exactly want (ghz decodes -B files by
// heuristics; see bench.GhzFile).
func (h *harness) verifyGhzPayload(ctx context.Context, file string, want []byte) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	rec := &recorder{}
	g := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(rec.handle))
	go g.Serve(lis)
	defer g.Stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := []string{"--insecure", "--protoset", h.protoset, "--call", bench.CheckMethod, "-B", file,
		"--disable-template-functions", "--disable-template-data", "-c", "1", "-n", "3", "-O", "summary", lis.Addr().String()}
	if out, err := exec.CommandContext(ctx, h.cfg.ghz, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ghz payload check: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var wantReq authv3.CheckRequest
	if err := proto.Unmarshal(want, &wantReq); err != nil {
		return err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) != 3 {
		return fmt.Errorf("ghz payload check: recorder got %d requests, want 3", len(rec.msgs))
	}
	for _, m := range rec.msgs {
		var got authv3.CheckRequest
		if err := proto.Unmarshal(m, &got); err != nil || !proto.Equal(&got, &wantReq) {
			return errors.New("ghz does not send the request as written (see bench.GhzFile)")
		}
	}
	return nil
}
