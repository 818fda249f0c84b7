package control

import (
	"context"
	"testing"

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
