package bus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestCheckServerVersion(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"2.9.10", false}, {"2.10.29", false}, {"1.99.99", false}, {"2.11.0", true}, {"2.11.0-RC.1", true},
		{"v2.15.2", true}, {"2.100.0", true}, {"3.0.0", true}, {"", false}, {"2.x.0", false}, {"2.11", false},
	} {
		err := CheckServerVersion(tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("%q: got %v, want ok=%v", tc.v, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), MinServerVersion) {
			t.Errorf("%q: the error does not name the minimum: %v", tc.v, err)
		}
	}
}

func TestParseReplication(t *testing.T) {
	r, err := ParseReplication(3, " region:a, ,az:1 ")
	if err != nil || r.Replicas != 3 || len(r.Tags) != 2 || r.Tags[0] != "region:a" || r.Tags[1] != "az:1" {
		t.Fatalf("got %+v %v", r, err)
	}
	if r, _ := ParseReplication(0, ""); r.Replicas != 1 || r.Tags != nil {
		t.Fatalf("default: %+v", r)
	}
	for _, n := range []int{-1, 6} {
		if _, err := ParseReplication(n, ""); err == nil {
			t.Errorf("replicas %d accepted", n)
		}
	}
}

func TestAuthValidate(t *testing.T) {
	for _, a := range []Auth{{User: "u"}, {Password: "p"}, {User: "u", Password: "p", Token: "t"}, {Token: "t", NkeySeedFile: "f"}} {
		if err := a.validate(); err == nil {
			t.Errorf("%+v accepted", a)
		}
	}
}

func TestTransient(t *testing.T) {
	for _, err := range []error{nats.ErrNoResponders, nats.ErrTimeout, context.DeadlineExceeded, jetstream.ErrNoStreamResponse,
		&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}} {
		if !Transient(err) {
			t.Errorf("%v is not transient", err)
		}
	}
	for _, err := range []error{nil, jetstream.ErrKeyExists, jetstream.ErrKeyNotFound, errors.New("boom"), nats.ErrConnectionClosed} {
		if Transient(err) {
			t.Errorf("%v is transient", err)
		}
	}
}

// A listening embedded server requires a login of everyone else, while this process's own
// in-process connection logs in with it.
func TestListeningServerRequiresLogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	listen := freeAddr(t)
	if _, err := Open(ctx, Config{DataDir: dir, Listen: listen, Name: "t"}, quiet()); err == nil {
		t.Fatal("listening without credentials was accepted")
	}
	a, created, err := LoadOrCreateCredentials(dir)
	if err != nil || !created || a.User == "" || len(a.Password) != 64 {
		t.Fatalf("credentials: %+v %v %v", a, created, err)
	}
	if st, err := os.Stat(filepath.Join(dir, CredentialsFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	if again, created, err := LoadOrCreateCredentials(dir); err != nil || created || again != a {
		t.Fatalf("second load: %+v %v %v", again, created, err)
	}
	b, err := Open(ctx, Config{DataDir: dir, Listen: listen, Name: "t", Auth: a}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kv, err := b.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "secrets"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(b.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(err.Error(), "Authorization") {
		t.Fatalf("unexpected refusal: %v", err)
	}
	if nc, err := nats.Connect(b.ClientURL(), nats.UserInfo(a.User, "wrong")); err == nil {
		nc.Close()
		t.Fatal("a client with a wrong password connected")
	}
	nc, err := nats.Connect(b.ClientURL(), nats.UserInfo(a.User, a.Password))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A wrong login to an external server fails at once instead of retrying until ctx ends.
func TestWrongLoginFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	a := Auth{User: "u", Password: "p"}
	b, err := Open(ctx, Config{DataDir: dir, Listen: freeAddr(t), Name: "t", Auth: a}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	start := time.Now()
	_, err = Open(ctx, Config{URL: b.ClientURL(), Auth: Auth{User: "u", Password: "wrong"}, Name: "c"}, quiet())
	if err == nil || !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("wrong password: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	c, err := Open(ctx, Config{URL: b.ClientURL(), Auth: a, Name: "c"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
