package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSReplicasRaisedInPlace: a deployment started with one replica is raised to three by
// restarting with --nats-replicas 3 (existing buckets updated in place, data kept); a process
// started later with the default never lowers it; placement tags keep streams on tagged servers.
func TestNATSReplicasRaisedInPlace(t *testing.T) {
	c := startNATSCluster(t, natsClusterConfig{Nodes: []natsNodeConfig{
		{Name: "a1", Tags: []string{"region:a"}},
		{Name: "a2", Tags: []string{"region:a"}},
		{Name: "b1", Tags: []string{"region:b"}},
	}})
	ctx := ctxT(t, 3*time.Minute)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	replicas := func(stream string) (int, []string) {
		t.Helper()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		var peers []string
		if info.Cluster != nil {
			peers = append(peers, info.Cluster.Leader)
			for _, r := range info.Cluster.Replicas {
				peers = append(peers, r.Name)
			}
		}
		return info.Config.Replicas, peers
	}
	args := append(c.JoinArgs(), "--api-access-key-id", testAccessKey, "--api-secret-access-key", testSecret)

	ctl := startRole(t, "control", args...)
	if _, err := ctl.ivsClient().CreateChannel(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := replicas("KV_glasscast_channels"); r != 1 {
		t.Fatalf("default replicas %d, want 1", r)
	}
	ctl.stop()

	ctl.args = append(ctl.args, "--nats-replicas", "3")
	ctl.start()
	for _, s := range []string{"KV_glasscast_channels", "KV_glasscast_secrets", "KV_glasscast_live", "GLASSCAST_EVENTS"} {
		if r, _ := replicas(s); r != 3 {
			t.Errorf("%s has %d replicas after raising to 3", s, r)
		}
	}
	out, err := ctl.ivsClient().ListChannels(ctx, nil)
	if err != nil || len(out.Channels) != 1 {
		t.Fatalf("channels after raising replicas: %v %v", out, err)
	}
	ctl.stop()

	// Another process with the default (1) leaves them at 3.
	other := startRole(t, "control", args...)
	if r, _ := replicas("KV_glasscast_channels"); r != 3 {
		t.Errorf("a process with the default lowered the replicas to %d", r)
	}
	other.stop()

}

// TestNATSPlacementTags: --nats-placement-tags region:a puts every replica on region:a servers.
func TestNATSPlacementTags(t *testing.T) {
	c := startNATSCluster(t, natsClusterConfig{Nodes: []natsNodeConfig{
		{Name: "a1", Tags: []string{"region:a"}},
		{Name: "b1", Tags: []string{"region:b"}},
		{Name: "a2", Tags: []string{"region:a"}},
	}})
	ctx := ctxT(t, 2*time.Minute)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctl := startRole(t, "control", append(c.JoinArgs(), "--nats-replicas", "2", "--nats-placement-tags", "region:a",
		"--api-access-key-id", testAccessKey, "--api-secret-access-key", testSecret)...)
	if _, err := ctl.ivsClient().CreateChannel(ctx, nil); err != nil {
		t.Fatal(err)
	}
	lister := js.StreamNames(ctx)
	var names []string
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil || len(names) < 10 {
		t.Fatalf("streams %v: %v", names, err)
	}
	for _, name := range names {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 2 || info.Cluster == nil {
			t.Errorf("%s: %d replicas", name, info.Config.Replicas)
			continue
		}
		peers := []string{info.Cluster.Leader}
		for _, r := range info.Cluster.Replicas {
			peers = append(peers, r.Name)
		}
		if slices.Contains(peers, "b1") {
			t.Errorf("%s placed on %v, outside region:a", name, peers)
		}
	}
}
