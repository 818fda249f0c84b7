package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"glasscast/bus"
	"glasscast/control"
	"glasscast/edge"
	"glasscast/media"
	"glasscast/netlimit"
	"glasscast/origin"
	"glasscast/store"
)

// role is a bit set of the roles a process runs.
type role uint

const (
	roleControl role = 1 << iota
	roleIngest
	roleOrigin
	roleEdge
	roleArchive
	// roleDirector is not in rolesAll: serve and edge run it when director.enabled is set.
	roleDirector
	rolesAll = roleControl | roleIngest | roleOrigin | roleEdge | roleArchive
)

// node is one glasscast process: the roles it runs and what they share (NATS, the store, the
// HTTP listeners). Each role's start function lives in a file named after the role.
type node struct {
	cfg   *Config
	roles role
	log   *slog.Logger
	bus   *bus.Bus
	store *store.Store

	// mux serves what is not playback on the HTTP and HTTPS listeners (API, health, chat,
	// metrics); playback goes to the edge, or to the origin when this process has no edge.
	mux      *http.ServeMux
	api      http.Handler                   // the control API, chosen by request shape
	apiMatch func(*http.Request) bool       // reports whether a request is for the API
	playback http.Handler                   // playback on net/http
	fastPB   func(ctx *fasthttp.RequestCtx) // playback on fasthttp
	fastExt  map[string]fasthttp.RequestHandler

	localOrigin  *origin.Origin // the origin role in this process, if any
	originPublic string         // its base URL for other processes, if it listens
	edge         *edge.Edge
	chatAPI      control.ChatBackend // IVS Chat's side of the control API, when this process runs it
	mon          *monitoring         // /metrics, events and meters (monitoring.go)

	wg      sync.WaitGroup // role goroutines
	cleanup []func()       // run in reverse at shutdown
}

func (n *node) defer_(f func()) { n.cleanup = append(n.cleanup, f) }

// goRole runs f until the node stops.
func (n *node) goRole(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// runNode starts the given roles with shared NATS and HTTP listeners and runs until ctx ends.
func runNode(ctx context.Context, name string, args []string, roles role) error {
	started := time.Now()
	cfg := defaultConfig()
	if err := load(name, cfg.options(), args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := cfg.logger()
	if err != nil {
		return err
	}
	gogc, memLimit, err := tuneRuntime(cfg.GCPercent, cfg.MemoryLimit)
	if err != nil {
		return err
	}
	log.Debug("go runtime", "gogc", gogc, "memoryLimitMB", memLimit>>20)
	if roles&roleEdge != 0 && int64(cfg.EdgeCacheMB)<<20 > memLimit/2 {
		// A heap that is mostly cache, near the limit, is collected over and over.
		log.Warn("edge.cacheMb is more than half of the Go memory limit: lower it, or raise runtime.memoryLimit",
			"cacheMb", cfg.EdgeCacheMB, "memoryLimitMb", memLimit>>20)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if cfg.Director.Enabled {
		roles |= roleDirector
	}
	n := &node{cfg: cfg, roles: roles, log: log, mux: http.NewServeMux(), fastExt: map[string]fasthttp.RequestHandler{}}

	busCfg, err := natsBusConfig(cfg)
	if err != nil {
		return err
	}
	repl, err := bus.ParseReplication(cfg.NATS.Replicas, cfg.NATS.PlacementTags)
	if err != nil {
		return err
	}
	n.bus, err = bus.Open(ctx, busCfg, log)
	if err != nil {
		return err
	}
	defer n.bus.Close()
	// The store's watchers live as long as the process, and stop before the bus closes.
	storeCtx, stopStore := context.WithCancel(context.Background())
	defer stopStore()
	if n.store, err = store.Open(storeCtx, n.bus.JS, repl); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	n.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	roleCtx, stopRoles := context.WithCancel(ctx)
	defer func() {
		stopRoles()
		n.wg.Wait()
		for i := len(n.cleanup) - 1; i >= 0; i-- {
			n.cleanup[i]()
		}
	}()
	for _, start := range []struct {
		r     role
		start func(context.Context) error
	}{
		{rolesAll, n.startMonitoring},
		{roleOrigin, n.startOrigin},
		{roleEdge, n.startEdge},
		{roleEdge | roleControl, n.startChat},
		{roleControl, n.startControl},
		{roleIngest, n.startIngest},
		{roleArchive, n.startArchive},
		{roleDirector, n.startDirector}, // after the edge, whose playback it wraps
	} {
		if roles&start.r != 0 {
			if err := start.start(roleCtx); err != nil {
				return err
			}
		}
	}
	n.announce(roleCtx)

	servers, err := n.listen()
	if err != nil {
		return err
	}
	log.Info("glasscast ready", "roles", name, "http", cfg.HTTPListen, "https", cfg.HTTPSListen,
		"nats", natsDescription(cfg, n.bus), "dataDir", cfg.DataDir, "startup", time.Since(started).Round(time.Millisecond))

	select {
	case <-ctx.Done():
	case err := <-servers.errc:
		return err
	}
	log.Info("shutting down")
	// Publishers go first so their broadcasts end cleanly while playback still answers.
	stopRoles()
	n.wg.Wait()
	servers.shutdown()
	return nil
}

// recovered answers 500 for a request whose handler panics, logged with its stack (the
// path, never the query, which can carry a token), rather than net/http's dropped connection
// or, through fasthttp's adaptor, a panic in a worker that does not recover. A handler that
// gives up with http.ErrAbortHandler still does so.
func recovered(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Error("http handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		}()
		h.ServeHTTP(w, r)
	})
}

// servers are the node's HTTP listeners.
type servers struct {
	errc     chan error
	shutdown func()
}

// headerTimeout bounds how long a client may take to send a request's headers.
const headerTimeout = 10 * time.Second

// maxStreams caps concurrent HTTP/2 streams per connection: a player needs a few (a playlist,
// a part, a hinted part), a browser page some tens; RFC 9113 asks for at least 100.
const maxStreams = 100

// listen opens the HTTP (fasthttp, HTTP/1.1) and HTTPS (net/http, HTTP/2) listeners. Both
// answer the same paths: playback from the edge, everything else from the shared mux.
//
// Nothing is authenticated before a request is read, so both bound what a client can make
// them hold: connections per address and in total (netlimit), the time to send headers and a
// body (http.bodyTimeout), and body memory: only the API takes a body, no larger than its
// limit, buffered as it arrives, never at the size a client announces.
func (n *node) listen() (*servers, error) {
	root := recovered(n.log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case n.apiMatch != nil && n.apiMatch(r):
			n.api.ServeHTTP(w, r)
		case n.playback != nil && strings.HasPrefix(r.URL.Path, media.PlaybackPrefix):
			n.playback.ServeHTTP(w, r)
		default:
			n.mux.ServeHTTP(w, r)
		}
	}))
	body := bodyLimit{timeout: n.cfg.HTTPBodyTimeout, log: n.log}
	if api, ok := n.api.(*control.Server); ok {
		body.max = api.MaxBodyBytes()
		body.refuse = fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { api.RefuseTooLarge(w) }))
	}
	viaNetHTTP := fasthttpadaptor.NewFastHTTPHandler(root)
	fastRoot := func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path() // not copied: every playback request passes here
		if n.fastPB != nil && bytes.HasPrefix(path, []byte(media.PlaybackPrefix)) && !ctx.IsPost() {
			n.fastPB(ctx)
			return
		}
		if h, ok := n.fastExt[string(path)]; ok {
			h(ctx)
			return
		}
		// The adaptor would read a streamed body whole, however large: buffer it here, capped.
		if ctx.Request.IsBodyStream() && !body.buffer(ctx) {
			return
		}
		viaNetHTTP(ctx)
	}
	guarded := func(ctx *fasthttp.RequestCtx) {
		// fasthttp's workers do not recover: a handler's panic (or the adaptor's, which
		// panics again for a net/http handler that did) would end the process, and with it
		// every role and every viewer of this node.
		defer func() {
			if v := recover(); v != nil {
				n.log.Error("http handler panicked", "method", string(ctx.Method()), "path", string(ctx.Path()), "panic", v, "stack", string(debug.Stack()))
				ctx.Response.Reset()
				ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
				ctx.SetConnectionClose()
			}
		}()
		fastRoot(ctx)
	}
	limits := netlimit.New(n.cfg.HTTPMaxConns, n.cfg.HTTPMaxConnsPerIP, func(ip string, perIP bool) {
		n.log.Debug("http connection refused: cap reached", "remote", ip, "perIp", perIP)
	})
	n.monitorListeners(limits)
	s := &servers{errc: make(chan error, 2)}
	var closers []func()

	ln, err := net.Listen("tcp", n.cfg.HTTPListen)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	fs := &fasthttp.Server{
		Handler:     guarded,
		Name:        "glasscast",
		ReadTimeout: headerTimeout, // from a request's first byte; a body gets its own below
		// From the end of the handler: a client that stops reading does not hold its
		// connection and goroutine for ever (a handler that streams longer sets its own).
		WriteTimeout: n.cfg.HTTPWriteTimeout,
		IdleTimeout:  120 * time.Second,
		// Bodies stream: fasthttp otherwise allocates the announced Content-Length before
		// reading a byte of it, for any path, before anything is authenticated.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,                  // it would read a multipart body whole
		MaxRequestBodySize:           int(max(body.max, 1)), // a backstop: body.config sets it per request
		HeaderReceived:               body.config,
		ErrorHandler:                 body.parseError,
		Logger:                       slogPrintf{n.log},
		ReadBufferSize:               8 << 10, // bounds request headers; a chat connection keeps it for life
		NoDefaultDate:                false,
		CloseOnShutdown:              true,
		ConnState: func(c net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateClosed || st == fasthttp.StateHijacked {
				limits.Release(c)
			}
		},
	}
	go func() {
		if err := fs.Serve(limits.Listen(ln)); err != nil {
			s.errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	closers = append(closers, func() { _ = fs.Shutdown() })

	if n.cfg.HTTPSListen != "" {
		tlsCfg, err := n.tlsConfig()
		if err != nil {
			return nil, err
		}
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		hl, err := net.Listen("tcp", n.cfg.HTTPSListen)
		if err != nil {
			return nil, fmt.Errorf("https listen: %w", err)
		}
		// No ReadTimeout: it would also end the context of a long blocking playlist request
		// on HTTP/1.1. The body deadline is set per request that has a body.
		// WriteTimeout counts from the request (per stream on HTTP/2) and includes a blocking
		// reload's wait, seconds at most. Without it, an HTTP/2 client that grants no flow-control
		// window held a handler per stream for ever; streams per connection are capped as well.
		hs := &http.Server{Handler: body.deadline(root), TLSConfig: tlsCfg, ReadHeaderTimeout: headerTimeout, IdleTimeout: 120 * time.Second,
			WriteTimeout: n.cfg.HTTPWriteTimeout, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
			ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
			ConnState: func(c net.Conn, st http.ConnState) {
				if st == http.StateClosed || st == http.StateHijacked {
					limits.Release(c)
				}
			}}
		go func() {
			if err := hs.ServeTLS(limits.Listen(hl), "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.errc <- fmt.Errorf("https server: %w", err)
			}
		}()
		closers = append(closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(ctx)
		})
	}
	s.shutdown = func() {
		for _, c := range closers {
			c()
		}
	}
	return s, nil
}

func natsDescription(cfg *Config, b *bus.Bus) string {
	if cfg.NATSURL != "" {
		return cfg.NATSURL
	}
	if u := b.ClientURL(); u != "" {
		return "embedded, listening on " + u
	}
	return "embedded"
}

// natsBusConfig is the bus configuration. An embedded server that listens requires a login: the
// configured one, or one generated into the data folder and shown once on first start.
func natsBusConfig(cfg *Config) (bus.Config, error) {
	c := bus.Config{URL: cfg.NATSURL, CredsFile: cfg.NATSCreds, DataDir: cfg.DataDir, Listen: cfg.NATSListen, Name: cfg.NodeName,
		Auth:    bus.Auth{User: cfg.NATS.User, Password: cfg.NATS.Password, Token: cfg.NATS.Token, NkeySeedFile: cfg.NATS.NkeySeed},
		TLSCert: cfg.NATS.TLSCert, TLSKey: cfg.NATS.TLSKey, TLSCA: cfg.NATS.TLSCA}
	if c.URL != "" || c.Listen == "" || !c.Auth.IsZero() {
		return c, nil
	}
	a, created, err := bus.LoadOrCreateCredentials(cfg.DataDir)
	if err != nil {
		return c, err
	}
	c.Auth = a
	if created {
		// Printed on the terminal once, never logged, like the API access key.
		fmt.Fprintf(os.Stdout, "\nCreated NATS credentials for other processes joining this one (stored in %s/%s):\n  --nats-user %s --nats-password %s\n\n",
			cfg.DataDir, bus.CredentialsFile, a.User, a.Password)
	}
	return c, nil
}
