package control

import (
	"context"
	"sync"
	"testing"

	"glasscast/auth"
	"glasscast/store"
)

// run calls an operation with a JSON body.
func run(ctx context.Context, o op, body string) (any, error) {
	return o(ctx, &request{body: []byte(body)})
}

func newChannel(t *testing.T, srv *Server, ctx context.Context) (arn, id string) {
	t.Helper()
	out, err := run(ctx, srv.createChannel, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	a := out.(map[string]any)["channel"].(channelJSON).Arn
	p, _ := parseARN(a)
	return a, p.ID
}

// TestAttachRacesDeleteIfUnused races an operation that makes a record refer to a resource with
// the deletion of that resource if unused, round after round. Either may win, but no record may
// end up referring to a deleted resource.
func TestAttachRacesDeleteIfUnused(t *testing.T) {
	srv, ctx := chatServer(t)
	chARN, chID := newChannel(t, srv, ctx)
	out, err := run(ctx, srv.createRoom, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	room := out.(roomJSON)
	channelRef := func(field string, get func(store.Channel) string) func(string) string {
		return func(a string) string {
			_, err := run(ctx, srv.updateChannel, `{"arn":"`+chARN+`","`+field+`":"`+a+`"}`)
			if err != nil {
				return err.Error()
			}
			c, _ := srv.store.Channels.Get(chID)
			return get(c)
		}
	}
	deleteBy := func(o op, field string) func(string) {
		return func(a string) { _, _ = run(ctx, o, `{"`+field+`":"`+a+`"}`) }
	}
	cases := []struct {
		name, service, typ string
		put                func(id string) error
		exists             func(id string) bool
		del                func(a string)
		// attach sets the reference to a ("" clears it) and returns what the record then holds.
		attach func(a string) string
	}{
		{
			name: "recording configuration", service: "ivs", typ: "recording-configuration",
			put: func(id string) error {
				return srv.store.RecordingConfigs.Create(ctx, id, store.RecordingConfiguration{ID: id, BucketName: "bkt", State: "ACTIVE"})
			},
			exists: func(id string) bool { _, ok := srv.store.RecordingConfigs.Get(id); return ok },
			del:    deleteBy(srv.deleteRecordingConfiguration, "arn"),
			attach: channelRef("recordingConfigurationArn", func(c store.Channel) string { return c.RecordingConfigurationArn }),
		},
		{
			name: "ad configuration", service: "ivs", typ: "ad-configuration",
			put: func(id string) error {
				return srv.store.AdConfigs.Create(ctx, id, store.AdConfiguration{ID: id})
			},
			exists: func(id string) bool { _, ok := srv.store.AdConfigs.Get(id); return ok },
			del:    deleteBy(srv.deleteAdConfiguration, "arn"),
			attach: channelRef("adConfigurationArn", func(c store.Channel) string { return c.AdConfigurationArn }),
		},
		{
			name: "playback restriction policy", service: "ivs", typ: playbackPolicyType,
			put: func(id string) error {
				return srv.store.PlaybackPolicies.Create(ctx, id, store.PlaybackRestrictionPolicy{ID: id})
			},
			exists: func(id string) bool { _, ok := srv.store.PlaybackPolicies.Get(id); return ok },
			del:    deleteBy(srv.deletePlaybackPolicy, "arn"),
			attach: channelRef("playbackRestrictionPolicyArn", func(c store.Channel) string { return c.PlaybackRestrictionPolicyArn }),
		},
		{
			name: "logging configuration", service: "ivschat", typ: "logging-configuration",
			put: func(id string) error {
				return srv.store.ChatLogging.Create(ctx, id, store.ChatLoggingConfiguration{ID: id, State: "ACTIVE"})
			},
			exists: func(id string) bool { _, ok := srv.store.ChatLogging.Get(id); return ok },
			del:    deleteBy(srv.deleteLoggingConfiguration, "identifier"),
			attach: func(a string) string {
				ids := `[]`
				if a != "" {
					ids = `["` + a + `"]`
				}
				if _, err := run(ctx, srv.updateRoom, `{"identifier":"`+room.Arn+`","loggingConfigurationIdentifiers":`+ids+`}`); err != nil {
					return err.Error()
				}
				rm, _ := srv.store.Rooms.Get(room.ID)
				if len(rm.LoggingConfigurations) == 0 {
					return ""
				}
				return srv.arn("ivschat", "logging-configuration", rm.LoggingConfigurations[0])
			},
		},
	}
	const rounds = 100
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dangling := 0
			for i := range rounds {
				id := auth.NewID()
				if err := tc.put(id); err != nil {
					t.Fatal(err)
				}
				a := srv.arn(tc.service, tc.typ, id)
				var wg sync.WaitGroup
				var held string
				wg.Go(func() { held = tc.attach(a) })
				wg.Go(func() { tc.del(a) })
				wg.Wait()
				if held == a && !tc.exists(id) {
					dangling++
					t.Logf("round %d: the record refers to deleted %s", i, a)
				}
				if got := tc.attach(""); got != "" {
					t.Fatalf("round %d: detaching left %q", i, got)
				}
			}
			if dangling > 0 {
				t.Errorf("%d of %d rounds left a reference to a deleted %s", dangling, rounds, tc.name)
			}
		})
	}
}

// TestDeleteChannelRacesCreateStreamKey races CreateStreamKey with DeleteChannel: whichever
// wins, no stream key of the deleted channel may survive it.
func TestDeleteChannelRacesCreateStreamKey(t *testing.T) {
	srv, ctx := chatServer(t)
	const rounds = 100
	orphans := 0
	for i := range rounds {
		chARN, chID := newChannel(t, srv, ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = run(ctx, srv.createStreamKey, `{"channelArn":"`+chARN+`"}`) })
		wg.Go(func() {
			if _, err := run(ctx, srv.deleteChannel, `{"arn":"`+chARN+`"}`); err != nil {
				t.Errorf("round %d: delete channel: %v", i, err)
			}
		})
		wg.Wait()
		for _, it := range srv.store.StreamKeys.List() {
			if it.Value.ChannelID == chID {
				orphans++
				t.Logf("round %d: stream key %s outlived its channel", i, it.Key)
			}
		}
	}
	if orphans > 0 {
		t.Errorf("%d stream keys outlived their channel in %d rounds", orphans, rounds)
	}
}

// TestUpdateChannelKeepsDanglingReference: a reference that UpdateChannel does not mention is
// left as it is and not checked, as in IVS, so one left dangling (by a delete on another node)
// does not block unrelated updates. A reference the call sets is still checked.
func TestUpdateChannelKeepsDanglingReference(t *testing.T) {
	srv, ctx := chatServer(t)
	cases := []struct {
		name, field string
		set         func(c *store.Channel, a string)
		get         func(c store.Channel) string
		arn         string
	}{
		{"recording configuration", "recordingConfigurationArn",
			func(c *store.Channel, a string) { c.RecordingConfigurationArn = a },
			func(c store.Channel) string { return c.RecordingConfigurationArn },
			srv.arn("ivs", "recording-configuration", "gone")},
		{"ad configuration", "adConfigurationArn",
			func(c *store.Channel, a string) { c.AdConfigurationArn = a },
			func(c store.Channel) string { return c.AdConfigurationArn },
			srv.arn("ivs", "ad-configuration", "gone")},
		{"playback restriction policy", "playbackRestrictionPolicyArn",
			func(c *store.Channel, a string) { c.PlaybackRestrictionPolicyArn = a },
			func(c store.Channel) string { return c.PlaybackRestrictionPolicyArn },
			srv.arn("ivs", playbackPolicyType, "gone")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chARN, chID := newChannel(t, srv, ctx)
			if _, err := srv.store.Channels.Update(ctx, chID, func(c *store.Channel) error {
				tc.set(c, tc.arn)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := run(ctx, srv.updateChannel, `{"arn":"`+chARN+`","name":"renamed"}`); err != nil {
				t.Fatalf("an update that does not mention %s: %v", tc.field, err)
			}
			c, _ := srv.store.Channels.Get(chID)
			if c.Name != "renamed" || tc.get(c) != tc.arn {
				t.Errorf("after the update: name %q, %s %q; want renamed, %s", c.Name, tc.field, tc.get(c), tc.arn)
			}
			_, err := run(ctx, srv.updateChannel, `{"arn":"`+chARN+`","`+tc.field+`":"`+tc.arn+`"}`)
			if ae := asAPIError(err); err == nil || ae.Code != "ResourceNotFoundException" {
				t.Errorf("setting %s to a missing resource: %v; want ResourceNotFoundException", tc.field, err)
			}
			// Clearing the dangling reference works too.
			if _, err := run(ctx, srv.updateChannel, `{"arn":"`+chARN+`","`+tc.field+`":""}`); err != nil {
				t.Errorf("clearing %s: %v", tc.field, err)
			}
		})
	}
}
