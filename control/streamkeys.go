package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"glasscast/auth"
	"glasscast/store"
)

type streamKeyJSON struct {
	Arn        string            `json:"arn"`
	Value      string            `json:"value,omitempty"`
	ChannelArn string            `json:"channelArn"`
	Tags       map[string]string `json:"tags"`
}

func (s *Server) streamKeyOut(k store.StreamKey, withValue bool) streamKeyJSON {
	out := streamKeyJSON{Arn: s.arn("ivs", "stream-key", k.ID), ChannelArn: s.channelARN(k.ChannelID), Tags: tagsOut(k.Tags)}
	if withValue {
		out.Value = k.Value
	}
	return out
}

// putStreamKey stores a key and the index the ingest looks values up in (by digest: a value is
// never a key name).
func (s *Server) putStreamKey(ctx context.Context, k store.StreamKey) error {
	if err := s.store.StreamKeyValues.Create(ctx, s.store.StreamKeyDigest(k.Value), k.ID); err != nil {
		return fmt.Errorf("index stream key: %w", err)
	}
	if err := s.store.StreamKeys.Create(ctx, k.ID, k); err != nil {
		_ = s.store.StreamKeyValues.Delete(context.WithoutCancel(ctx), s.store.StreamKeyDigest(k.Value))
		return fmt.Errorf("create stream key: %w", err)
	}
	return nil
}

// removeStreamKey deletes a key record and its index; failures are logged because the key is
// already unusable once its channel no longer lists it.
func (s *Server) removeStreamKey(ctx context.Context, k store.StreamKey) {
	ctx = context.WithoutCancel(ctx)
	if err := s.store.StreamKeys.Delete(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("delete stream key record", "id", k.ID, "err", err)
	}
	if err := s.store.StreamKeyValues.Delete(ctx, s.store.StreamKeyDigest(k.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("delete stream key index", "id", k.ID, "err", err)
	}
}

func (s *Server) streamKeyByARN(field, v string) (store.StreamKey, error) {
	return byARN(s, s.store.StreamKeys, "stream-key", "stream key", field, v)
}

func (s *Server) createStreamKey(ctx context.Context, r *request) (any, error) {
	var in struct {
		ChannelArn *string
		Tags       map[string]string
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("channelArn", in.ChannelArn != nil); err != nil {
		return nil, err
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	c, err := s.channelByARN("channelArn", *in.ChannelArn)
	if err != nil {
		return nil, err
	}
	if q := s.cfg.Quotas.StreamKeysPerChannel; q > 0 && len(c.StreamKeys) >= q {
		return nil, errQuota("channel %s already has the maximum of %d stream keys", *in.ChannelArn, q)
	}
	k := store.StreamKey{ID: auth.NewID(), ChannelID: c.ID, Value: auth.NewStreamKeyValue(s.cfg.Region), Tags: in.Tags, CreatedAt: time.Now().UTC()}
	if err := s.putStreamKey(ctx, k); err != nil {
		return nil, err
	}
	// The quota is checked again inside the compare-and-set so concurrent creations cannot
	// exceed it. s.refs keeps a DeleteChannel on this node from reading the key list before
	// the key is added and deleting the channel after.
	err = s.withRefs(func() error {
		_, err := s.store.Channels.Update(ctx, c.ID, func(c *store.Channel) error {
			if q := s.cfg.Quotas.StreamKeysPerChannel; q > 0 && len(c.StreamKeys) >= q {
				return errQuota("channel %s already has the maximum of %d stream keys", *in.ChannelArn, q)
			}
			c.StreamKeys = append(c.StreamKeys, k.ID)
			return nil
		})
		return err
	})
	if err != nil {
		s.removeStreamKey(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("channel %s not found", *in.ChannelArn)
		}
		return nil, err
	}
	return map[string]any{"streamKey": s.streamKeyOut(k, true)}, nil
}

func (s *Server) getStreamKey(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	k, err := s.streamKeyByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"streamKey": s.streamKeyOut(k, true)}, nil
}

func (s *Server) batchGetStreamKey(ctx context.Context, r *request) (any, error) {
	var in struct{ Arns []string }
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if len(in.Arns) < 1 || len(in.Arns) > 50 {
		return nil, errValidation("1 validation error detected: Value at 'arns' failed to satisfy constraint: Member must have length between 1 and 50")
	}
	keys, errs := []streamKeyJSON{}, []batchError{}
	for _, a := range in.Arns {
		k, err := s.streamKeyByARN("arns", a)
		if err != nil {
			ae := asAPIError(err)
			errs = append(errs, batchError{Arn: a, Code: ae.Code, Message: ae.Message})
			continue
		}
		keys = append(keys, s.streamKeyOut(k, true))
	}
	return map[string]any{"streamKeys": keys, "errors": errs}, nil
}

func (s *Server) listStreamKeys(ctx context.Context, r *request) (any, error) {
	c, tok, max, err := s.channelPage(r, 50)
	if err != nil {
		return nil, err
	}
	var items []store.Item[store.StreamKey]
	for _, id := range c.StreamKeys {
		if k, ok := s.store.StreamKeys.Get(id); ok {
			items = append(items, store.Item[store.StreamKey]{Key: id, Value: k})
		}
	}
	slices.SortFunc(items, func(a, b store.Item[store.StreamKey]) int { return strings.Compare(a.Key, b.Key) })
	keys, next, err := page(items, tok, max, nil)
	if err != nil {
		return nil, err
	}
	out := make([]streamKeyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.streamKeyOut(k, false))
	}
	return listResponse("streamKeys", out, next), nil
}

func (s *Server) deleteStreamKey(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	k, err := s.streamKeyByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	_, err = s.store.Channels.Update(ctx, k.ChannelID, func(c *store.Channel) error {
		c.StreamKeys = slices.DeleteFunc(c.StreamKeys, func(id string) bool { return id == k.ID })
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	s.removeStreamKey(ctx, k)
	return noContent{}, nil
}
