package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"glasscast/media"
)

// BenchmarkListenerHit measures what the shared HTTP listener adds to an edge cache hit: a
// keep-alive client fetches a 30 KB part over loopback TCP from listen()'s fasthttp server,
// whose playback handler answers from memory as a cache hit does. The handler is a stand-in
// so that the figure moves only with the listener (limits, body handling, timeouts).
func BenchmarkListenerHit(b *testing.B) {
	addr := benchAddr(b)
	cfg := defaultConfig()
	cfg.HTTPListen, cfg.HTTPSListen = addr, ""
	n := &node{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), mux: http.NewServeMux(),
		fastExt: map[string]fasthttp.RequestHandler{}}
	part := make([]byte, 30<<10)
	n.fastPB = func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Type", "video/mp4")
		ctx.SetBody(part)
	}
	srv, err := n.listen()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.shutdown()
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 10 * time.Second}
	uri := "http://" + addr + media.PlaybackPrefix + "us-east-1.000000000000.channel.abc/720p/part100.1.m4s"
	b.SetBytes(int64(len(part)))
	b.SetParallelism(16)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(uri)
		for pb.Next() {
			if err := c.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 || len(resp.Body()) != len(part) {
				b.Errorf("status %d, %d bytes", resp.StatusCode(), len(resp.Body()))
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	// CPU per request (server and client, both in this process) moves less than req/s when
	// other work shares the cores.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
