package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSListenRequiresLogin: serve with --nats-listen generates NATS credentials into its data
// folder (mode 0600) and prints them once; a client without them cannot connect, so it cannot
// read the secrets bucket; a process given them joins; no stream key value is a subject name.
func TestNATSListenRequiresLogin(t *testing.T) {
	natsAddr := freePort(t)
	n := startServe(t, "", "--nats-listen", natsAddr)
	ctx := ctxT(t, 2*time.Minute)

	credsPath := filepath.Join(n.DataDir, "nats-credentials.json")
	st, err := os.Stat(credsPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("nats credentials file: %v %v", st, err)
	}
	user, password := natsCredentials(t, n)
	if len(password) < 64 {
		t.Fatalf("password of %d characters, want 256 bits", len(password))
	}
	if !strings.Contains(n.Logs(), "--nats-password "+password) {
		t.Fatal("the generated credentials were not printed on first start")
	}

	for _, opts := range [][]nats.Option{nil, {nats.UserInfo(user, "wrong")}, {nats.Token(password)}} {
		nc, err := nats.Connect("nats://"+natsAddr, opts...)
		if err == nil {
			// Connected: it must at least not read the secrets.
			js, _ := jetstream.New(nc)
			if kv, err := js.KeyValue(ctx, "glasscast_secrets"); err == nil {
				if keys, err := kv.ListKeys(ctx); err == nil {
					for k := range keys.Keys() {
						t.Errorf("an unauthenticated client reads secret %q", k)
					}
				}
			}
			nc.Close()
			t.Fatalf("a client with %d wrong options connected", len(opts))
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("refused for another reason: %v", err)
		}
	}

	// A stream key made now is indexed by digest; no subject of the index names its value.
	api := n.ivsClient()
	out, err := api.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String("auth"), Type: types.ChannelTypeBasicChannelType})
	if err != nil {
		t.Fatal(err)
	}
	value := *out.StreamKey.Value
	nc, err := nats.Connect("nats://"+natsAddr, nats.UserInfo(user, password))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "KV_glasscast_stream_key_values")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) == 0 {
		t.Fatal("no stream key indexed")
	}
	for subj := range info.State.Subjects {
		if strings.Contains(subj, value) {
			t.Fatalf("subject %s names the stream key value", subj)
		}
	}

	// Restarted, it keeps the credentials and does not print them again.
	n.restart(false)
	if u2, p2 := natsCredentials(t, n); u2 != user || p2 != password {
		t.Fatal("credentials changed across a restart")
	}
	if strings.Count(n.Logs(), "--nats-password "+password) != 1 {
		t.Fatal("the credentials were printed again after a restart")
	}
	// The stream key still authorizes its channel: the ingest finds it by digest.
	publish(t, n.rtmpsURL(value), pubOptions{})
	waitLive(t, ctx, api, out.Channel.Arn)
}

// TestNATSServerTooOld: a nats-server older than 2.11.0 (Debian's 2.9.10, when installed) is
// refused at start with a message naming the minimum version.
func TestNATSServerTooOld(t *testing.T) {
	// Debian's package (which .ci/deps installs) puts it in /usr/sbin, behind the pinned one
	// in GOPATH/bin on most PATHs.
	old := "/usr/sbin/nats-server"
	if _, err := os.Stat(old); err != nil {
		if old, err = exec.LookPath("nats-server"); err != nil {
			t.Skip("no nats-server on the PATH")
		}
	}
	v, err := exec.Command(old, "--version").Output()
	if err != nil || !strings.Contains(string(v), "v2.9.") && !strings.Contains(string(v), "v2.10.") {
		t.Skipf("the nats-server on the PATH is %q, not an old one", strings.TrimSpace(string(v)))
	}
	addr := freePort(t)
	srv := exec.Command(old, "-a", "127.0.0.1", "-p", strings.Split(addr, ":")[1], "-js", "-sd", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := nats.Connect("nats://" + addr)
		if err == nil {
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old nats-server not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "control", "--data-dir", t.TempDir(), "--http-listen", freePort(t),
		"--https-listen", "", "--nats-url", "nats://"+addr).CombinedOutput()
	if err == nil {
		t.Fatalf("glasscast started on an old nats-server:\n%s", out)
	}
	t.Logf("refused: %s", lastLine(string(out)))
	if !strings.Contains(string(out), "too old") || !strings.Contains(string(out), "2.11.0") {
		t.Fatalf("the refusal does not name the minimum version:\n%s", out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
