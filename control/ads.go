package control

import (
	"context"
	"errors"
	"regexp"
	"time"

	"glasscast/auth"
	"glasscast/ingestctl"
	"glasscast/store"
)

// IVS's bounds on InsertAdBreak's durationSeconds.
const (
	minAdBreakSeconds = 1
	maxAdBreakSeconds = 300
)

var reMediaTailorARN = regexp.MustCompile(`^arn:aws:mediatailor:([a-z0-9-]+):([0-9]+):playbackConfiguration/[a-zA-Z0-9_-]+$`)

// adConfigJSON is IVS's AdConfiguration shape (also its AdConfigurationSummary).
type adConfigJSON struct {
	Arn                               string                `json:"arn"`
	Name                              string                `json:"name"`
	MediaTailorPlaybackConfigurations []mediaTailorConfJSON `json:"mediaTailorPlaybackConfigurations"`
	Tags                              map[string]string     `json:"tags"`
}

type mediaTailorConfJSON struct {
	PlaybackConfigurationArn *string `json:"playbackConfigurationArn"`
}

func (s *Server) adConfigOut(c store.AdConfiguration) adConfigJSON {
	out := adConfigJSON{Arn: s.arn("ivs", "ad-configuration", c.ID), Name: c.Name, Tags: tagsOut(c.Tags),
		MediaTailorPlaybackConfigurations: []mediaTailorConfJSON{}}
	for _, a := range c.PlaybackConfigurationArns {
		out.MediaTailorPlaybackConfigurations = append(out.MediaTailorPlaybackConfigurations, mediaTailorConfJSON{&a})
	}
	return out
}

func (s *Server) createAdConfiguration(ctx context.Context, r *request) (any, error) {
	var in struct {
		Name                              *string
		MediaTailorPlaybackConfigurations []mediaTailorConfJSON
		Tags                              map[string]string
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("mediaTailorPlaybackConfigurations", in.MediaTailorPlaybackConfigurations != nil); err != nil {
		return nil, err
	}
	if len(in.MediaTailorPlaybackConfigurations) == 0 {
		return nil, errValidation("1 validation error detected: Value '[]' at 'mediaTailorPlaybackConfigurations' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	c := store.AdConfiguration{ID: auth.NewID(), Tags: in.Tags, CreatedAt: time.Now().UTC()}
	for _, m := range in.MediaTailorPlaybackConfigurations {
		field := "mediaTailorPlaybackConfigurations.member.playbackConfigurationArn"
		if m.PlaybackConfigurationArn == nil {
			return nil, required(field, false)
		}
		v := *m.PlaybackConfigurationArn
		sm := reMediaTailorARN.FindStringSubmatch(v)
		if sm == nil {
			return nil, constraint(field, v, "Member must satisfy regular expression pattern: ^arn:aws:mediatailor:[a-z0-9-]+:[0-9]+:playbackConfiguration/[a-zA-Z0-9_-]+$")
		}
		if sm[1] != s.cfg.Region || sm[2] != s.cfg.Account {
			return nil, errValidation("%s %s must be in the same region and account as the ad configuration", field, v)
		}
		c.PlaybackConfigurationArns = append(c.PlaybackConfigurationArns, v)
	}
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	if in.Name != nil {
		c.Name = *in.Name
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	if q := s.cfg.Quotas.AdConfigurations; q > 0 && s.store.AdConfigs.Len() >= q {
		return nil, errQuota("maximum number of ad configurations (%d) reached", q)
	}
	if err := s.store.AdConfigs.Create(ctx, c.ID, c); err != nil {
		return nil, err
	}
	return map[string]any{"adConfiguration": s.adConfigOut(c)}, nil
}

func (s *Server) adConfigByARN(field, v string) (store.AdConfiguration, error) {
	return byARN(s, s.store.AdConfigs, "ad-configuration", "ad configuration", field, v)
}

func (s *Server) getAdConfiguration(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	c, err := s.adConfigByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"adConfiguration": s.adConfigOut(c)}, nil
}

func (s *Server) listAdConfigurations(ctx context.Context, r *request) (any, error) {
	return listAll(r, s.store.AdConfigs, 100, "adConfigurations", s.adConfigOut)
}

func (s *Server) deleteAdConfiguration(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	c, err := s.adConfigByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	full := s.arn("ivs", "ad-configuration", c.ID)
	err = s.withRefs(func() error {
		for _, it := range s.store.Channels.List() {
			if it.Value.AdConfigurationArn == full {
				return errConflict("ad configuration %s is used by channel %s; detach it first", full, s.channelARN(it.Key))
			}
		}
		return s.store.AdConfigs.Delete(ctx, c.ID)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("ad configuration %s not found", resARN)
		}
		return nil, err
	}
	return noContent{}, nil
}

// checkChannelAdConfig checks a channel's adConfigurationArn: its form, then that it exists.
func (s *Server) checkChannelAdConfig(v string, exists bool) error {
	if v == "" {
		return nil
	}
	a, ok := parseARN(v)
	if !ok || a.Service != "ivs" || a.Type != "ad-configuration" {
		return constraint("adConfigurationArn", v, "Member must satisfy regular expression pattern: ^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:ad-configuration/[a-zA-Z0-9-]+$")
	}
	if exists {
		if _, found := s.store.AdConfigs.Get(a.ID); !found || !s.ownARN(a) {
			return errNotFound("ad configuration %s not found", v)
		}
	}
	return nil
}

// insertAdBreak is InsertAdBreak: the ingest holding the channel places the break at its next
// segment boundary and the playlists of every rendition, and the recording, carry it.
func (s *Server) insertAdBreak(ctx context.Context, r *request) (any, error) {
	var in struct {
		ChannelArn      *string
		DurationSeconds *int64
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("channelArn", in.ChannelArn != nil); err != nil {
		return nil, err
	}
	if err := required("durationSeconds", in.DurationSeconds != nil); err != nil {
		return nil, err
	}
	if d := *in.DurationSeconds; d < minAdBreakSeconds || d > maxAdBreakSeconds {
		return nil, errValidation("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between %d and %d", d, minAdBreakSeconds, maxAdBreakSeconds)
	}
	c, err := s.channelByARN("channelArn", *in.ChannelArn)
	if err != nil {
		return nil, err
	}
	if c.AdConfigurationArn == "" {
		return nil, errValidation("channel %s has no adConfigurationArn: attach an ad configuration with UpdateChannel first", *in.ChannelArn)
	}
	if _, ok := s.live(c.ID); !ok {
		return nil, errNotBroadcasting(*in.ChannelArn)
	}
	id := auth.NewID()
	ab := ingestctl.AdBreak{ID: id, Duration: time.Duration(*in.DurationSeconds) * time.Second}
	if err := s.broadcasts.InsertAdBreak(ctx, c.ID, ab); err != nil {
		return nil, s.broadcastError(*in.ChannelArn, err)
	}
	return map[string]any{"adBreakId": id}, nil
}
