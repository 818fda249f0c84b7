package control

import (
	"context"
	"errors"
	"maps"

	"glasscast/store"
)

// withTags applies fn to the tags of whatever resource a tagging ARN names.
func (s *Server) withTags(ctx context.Context, resARN string, fn func(tags map[string]string) (map[string]string, error)) (map[string]string, error) {
	a, ok := parseARN(resARN)
	if !ok {
		return nil, constraint("resourceArn", resARN, "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]/[a-zA-Z0-9-]+")
	}
	if !s.ownARN(a) || a.Service != "ivs" {
		return nil, errNotFound("resource %s not found", resARN)
	}
	var err error
	var tags map[string]string
	switch a.Type {
	case "channel":
		tags, err = updateTags(ctx, s.store.Channels, a.ID, func(c *store.Channel) *map[string]string { return &c.Tags }, fn)
	case "stream-key":
		tags, err = updateTags(ctx, s.store.StreamKeys, a.ID, func(k *store.StreamKey) *map[string]string { return &k.Tags }, fn)
	case "playback-key":
		tags, err = updateTags(ctx, s.store.PlaybackKeyPairs, a.ID, func(k *store.PlaybackKeyPair) *map[string]string { return &k.Tags }, fn)
	case "recording-configuration":
		tags, err = updateTags(ctx, s.store.RecordingConfigs, a.ID, func(c *store.RecordingConfiguration) *map[string]string { return &c.Tags }, fn)
	case playbackPolicyType:
		tags, err = updateTags(ctx, s.store.PlaybackPolicies, a.ID, func(p *store.PlaybackRestrictionPolicy) *map[string]string { return &p.Tags }, fn)
	case "ad-configuration":
		tags, err = updateTags(ctx, s.store.AdConfigs, a.ID, func(c *store.AdConfiguration) *map[string]string { return &c.Tags }, fn)
	default:
		return nil, errNotFound("resource %s not found", resARN)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("resource %s not found", resARN)
	}
	return tags, err
}

func updateTags[T any](ctx context.Context, t *store.Table[T], id string, field func(*T) *map[string]string,
	fn func(map[string]string) (map[string]string, error)) (map[string]string, error) {
	if fn == nil { // read only
		v, ok := t.Get(id)
		if !ok {
			return nil, store.ErrNotFound
		}
		return tagsOut(*field(&v)), nil
	}
	v, err := t.Update(ctx, id, func(v *T) error {
		tags, err := fn(maps.Clone(tagsOut(*field(v))))
		if err != nil {
			return err
		}
		*field(v) = tags
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tagsOut(*field(&v)), nil
}

func (s *Server) tagResource(ctx context.Context, r *request) (any, error) {
	var in struct{ Tags map[string]string }
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("tags", in.Tags != nil); err != nil {
		return nil, err
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	_, err := s.withTags(ctx, r.resARN, func(tags map[string]string) (map[string]string, error) {
		maps.Copy(tags, in.Tags)
		if len(tags) > 50 {
			return nil, errValidation("a resource can have at most 50 tags")
		}
		return tags, nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (s *Server) untagResource(ctx context.Context, r *request) (any, error) {
	keys, ok := r.query["tagKeys"]
	if err := required("tagKeys", ok); err != nil {
		return nil, err
	}
	if len(keys) > 50 {
		return nil, errValidation("1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, k := range keys {
		if err := checkTagKey("tagKeys", k); err != nil {
			return nil, err
		}
	}
	_, err := s.withTags(ctx, r.resARN, func(tags map[string]string) (map[string]string, error) {
		for _, k := range keys {
			delete(tags, k)
		}
		return tags, nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (s *Server) listTagsForResource(ctx context.Context, r *request) (any, error) {
	tags, err := s.withTags(ctx, r.resARN, nil)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": tags}, nil
}
