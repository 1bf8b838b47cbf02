package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	rpprof "runtime/pprof"
	"time"
)

// startCPUProfile writes a CPU profile of this daemon, from now until the
// returned stop is called, to path (`go tool pprof BINARY PATH` reads it).
// Unlike --pprof it needs no request timed to the work: the whole run is
// in it, which is what a benchmark's timed part wants (cmd/bench -profiles).
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := rpprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		rpprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// serveProfiles serves Go's runtime profiles on addr until ctx ends. It
// accepts only loopback addresses: profiles show paths and contents in
// memory, and the endpoint has no authentication.
func serveProfiles(ctx context.Context, addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("give a loopback address such as 127.0.0.1:6060; profiles must not be reachable from the network")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profile server stopped", "addr", addr, "err", err)
		}
	}()
	log.Info(fmt.Sprintf("serving runtime profiles on http://%s/debug/pprof/", ln.Addr()))
	return nil
}
