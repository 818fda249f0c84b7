// Package bus gives every Glasscast role its NATS connection and JetStream context: either an
// embedded server that keeps JetStream data in the data folder (what `glasscast serve` uses), or
// an external NATS cluster when roles run on many machines.
package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config chooses between an embedded server and an external cluster.
type Config struct {
	// URL of an external NATS cluster ("nats://host:4222,nats://host2:4222"). Empty runs an
	// embedded server.
	URL string
	// CredsFile is an optional NATS credentials file for the external cluster.
	CredsFile string
	// Auth is what clients present (user and password, a token or an nkey seed file). With an
	// external cluster it is what this process logs in with; with an embedded server that
	// listens it is what the server requires of everyone, this process included.
	Auth Auth
	// TLSCert and TLSKey (PEM files): the embedded server serves, and requires, TLS with them;
	// a client of an external cluster presents them as its client certificate.
	TLSCert, TLSKey string
	// TLSCA (PEM file) verifies an external cluster's servers; empty uses the system roots.
	TLSCA string
	// DataDir holds the embedded server's JetStream files.
	DataDir string
	// Listen, when set ("127.0.0.1:4222"), lets other Glasscast processes join the embedded
	// server. Empty keeps it in-process only, reachable by nothing outside this process.
	Listen string
	// Name identifies this process in NATS monitoring.
	Name string
}

// Bus is an open connection to NATS with JetStream.
type Bus struct {
	Conn *nats.Conn
	JS   jetstream.JetStream
	srv  *server.Server
	log  *slog.Logger
}

// Open connects to the configured NATS, starting the embedded server first if needed.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	b := &Bus{log: log}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		// A lost server is replaced by another of the cluster at once; the wait applies only
		// between two attempts on the same server.
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// A server that vanished without closing the socket (a host crash, a cut cable) is
		// given up after about 15 s instead of the default 4 minutes.
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted(), "server", c.ConnectedServerName())
			if err := CheckServerVersion(c.ConnectedServerVersion()); err != nil {
				log.Error("nats server is too old; JetStream requests may fail", "server", c.ConnectedServerName(), "err", err)
			}
		}),
	}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg, log)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
		tlsOpts, err := clientTLS(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, tlsOpts...)
	}
	authOpts, err := cfg.Auth.clientOptions()
	if err != nil {
		b.shutdownServer()
		return nil, err
	}
	opts = append(opts, authOpts...)
	nc, err := connect(ctx, url, opts)
	if err != nil {
		b.shutdownServer()
		return nil, err
	}
	if err := CheckServerVersion(nc.ConnectedServerVersion()); err != nil {
		err = fmt.Errorf("nats server at %s: %w", nc.ConnectedUrlRedacted(), err)
		nc.Close()
		b.shutdownServer()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.Conn, b.JS = nc, js
	return b, nil
}

// connect retries until ctx ends, so roles can start before the cluster is reachable. A refused
// login or certificate is reported at once: waiting would not change it.
func connect(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		var unknownCA x509.UnknownAuthorityError
		var badCert *tls.CertificateVerificationError
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrSecureConnRequired) ||
			errors.As(err, &unknownCA) || errors.As(err, &badCert) {
			return nil, fmt.Errorf("connect to nats %q: %w", url, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to nats %q: %w", url, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	dir := filepath.Join(cfg.DataDir, "nats")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats data dir: %w", err)
	}
	o := &server.Options{
		ServerName:             cfg.Name,
		JetStream:              true,
		StoreDir:               dir,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	if cfg.Listen == "" {
		o.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		o.Host, o.Port = host, p
		// Other processes log in; this process logs in the same way over its in-process pipe.
		if err := cfg.Auth.serverOptions(o); err != nil {
			return nil, err
		}
		if cfg.TLSCert != "" || cfg.TLSKey != "" {
			if cfg.TLSCert == "" || cfg.TLSKey == "" {
				return nil, errors.New("nats TLS needs both a certificate and a key")
			}
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey})
			if err != nil {
				return nil, fmt.Errorf("nats TLS: %w", err)
			}
			o.TLS, o.TLSConfig, o.TLSTimeout = true, tc, 2
		} else if !isLoopback(host) {
			log.Warn("the embedded NATS server listens beyond this host without TLS; set nats.tlsCert and nats.tlsKey", "listen", cfg.Listen)
		}
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: log.With("component", "nats")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats did not become ready in 30s")
	}
	return srv, nil
}

// ClientURL is where other processes reach the embedded server, or "" when it does not listen.
func (b *Bus) ClientURL() string {
	if b.srv == nil || b.srv.Addr() == nil {
		return ""
	}
	return b.srv.ClientURL()
}

// Close drains the connection and stops the embedded server, flushing JetStream to disk.
func (b *Bus) Close() {
	if b.Conn != nil {
		_ = b.Conn.Drain()
		// Drain is asynchronous; wait briefly so pending publishes reach the server.
		deadline := time.Now().Add(5 * time.Second)
		for !b.Conn.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// natsLogger routes the embedded server's log lines into slog, keeping its chatter at debug.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  {}
