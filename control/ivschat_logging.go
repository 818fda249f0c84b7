package control

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"glasscast/auth"
	"glasscast/store"
)

// chatDestinationJSON is the destinationConfiguration union: exactly one member is set.
type chatDestinationJSON struct {
	S3 *struct {
		BucketName *string `json:"bucketName"`
	} `json:"s3,omitempty"`
	CloudWatchLogs *struct {
		LogGroupName *string `json:"logGroupName"`
	} `json:"cloudWatchLogs,omitempty"`
	Firehose *struct {
		DeliveryStreamName *string `json:"deliveryStreamName"`
	} `json:"firehose,omitempty"`
}

type loggingConfigJSON struct {
	Arn                      string              `json:"arn"`
	ID                       string              `json:"id"`
	Name                     string              `json:"name"`
	CreateTime               string              `json:"createTime"`
	UpdateTime               string              `json:"updateTime"`
	DestinationConfiguration chatDestinationJSON `json:"destinationConfiguration"`
	State                    string              `json:"state"`
	Tags                     map[string]string   `json:"tags"`
}

func (s *Server) loggingConfigOut(c store.ChatLoggingConfiguration) loggingConfigJSON {
	out := loggingConfigJSON{Arn: s.arn("ivschat", "logging-configuration", c.ID), ID: c.ID, Name: c.Name,
		CreateTime: chatTime(c.CreatedAt), UpdateTime: chatTime(c.UpdatedAt), State: c.State, Tags: tagsOut(c.Tags)}
	d := &out.DestinationConfiguration
	switch {
	case c.S3Bucket != "":
		d.S3 = &struct {
			BucketName *string `json:"bucketName"`
		}{&c.S3Bucket}
	case c.LogGroupName != "":
		d.CloudWatchLogs = &struct {
			LogGroupName *string `json:"logGroupName"`
		}{&c.LogGroupName}
	case c.DeliveryStreamName != "":
		d.Firehose = &struct {
			DeliveryStreamName *string `json:"deliveryStreamName"`
		}{&c.DeliveryStreamName}
	}
	return out
}

// applyDestination checks the union and sets c's destination from it.
func applyDestination(c *store.ChatLoggingConfiguration, d *chatDestinationJSON) error {
	const field = "destinationConfiguration"
	n := 0
	for _, set := range []bool{d.S3 != nil, d.CloudWatchLogs != nil, d.Firehose != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return chatInvalid(field, "1 validation error detected: Value at '%s' failed to satisfy constraint: exactly one of s3, cloudWatchLogs and firehose must be set", field)
	}
	c.S3Bucket, c.LogGroupName, c.DeliveryStreamName = "", "", ""
	switch {
	case d.S3 != nil:
		v := d.S3.BucketName
		if v == nil || len(*v) < 3 || len(*v) > 63 || !reBucketName.MatchString(*v) {
			return chatInvalid(field+".s3.bucketName", "1 validation error detected: Value at '%s.s3.bucketName' failed to satisfy constraint: Member must be 3 to 63 characters matching [a-z0-9-.]+", field)
		}
		c.S3Bucket = *v
	case d.CloudWatchLogs != nil:
		v := d.CloudWatchLogs.LogGroupName
		if v == nil || len(*v) < 1 || len(*v) > 512 || !reLogGroup.MatchString(*v) {
			return chatInvalid(field+".cloudWatchLogs.logGroupName", "1 validation error detected: Value at '%s.cloudWatchLogs.logGroupName' failed to satisfy constraint: Member must be 1 to 512 characters matching [\\.\\-_/#A-Za-z0-9]+", field)
		}
		c.LogGroupName = *v
	case d.Firehose != nil:
		v := d.Firehose.DeliveryStreamName
		if v == nil || len(*v) < 1 || len(*v) > 64 || !reDelivery.MatchString(*v) {
			return chatInvalid(field+".firehose.deliveryStreamName", "1 validation error detected: Value at '%s.firehose.deliveryStreamName' failed to satisfy constraint: Member must be 1 to 64 characters matching [a-zA-Z0-9_.-]+", field)
		}
		c.DeliveryStreamName = *v
	}
	return nil
}

func (s *Server) createLoggingConfiguration(ctx context.Context, r *request) (any, error) {
	var in struct {
		Name                     *string              `json:"name"`
		DestinationConfiguration *chatDestinationJSON `json:"destinationConfiguration"`
		Tags                     map[string]string    `json:"tags"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if in.DestinationConfiguration == nil {
		return nil, chatInvalid("destinationConfiguration", "1 validation error detected: Value null at 'destinationConfiguration' failed to satisfy constraint: Member must not be null")
	}
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	c := store.ChatLoggingConfiguration{ID: auth.NewID(), State: "ACTIVE", Tags: in.Tags, CreatedAt: now, UpdatedAt: now}
	if in.Name != nil {
		c.Name = *in.Name
	}
	if err := applyDestination(&c, in.DestinationConfiguration); err != nil {
		return nil, err
	}
	if q := s.cfg.Quotas.ChatLoggingConfigurations; q > 0 && s.store.ChatLogging.Len() >= q {
		e := errQuota("the account may have at most %d logging configurations", q)
		e.Fields = map[string]any{"resourceId": "", "resourceType": "LOGGING_CONFIGURATION", "limit": q}
		return nil, e
	}
	if err := s.store.ChatLogging.Create(ctx, c.ID, c); err != nil {
		return nil, err
	}
	return s.loggingConfigOut(c), nil
}

func (s *Server) loggingConfigID(body []byte) (string, error) {
	var in struct {
		Identifier *string `json:"identifier"`
	}
	if err := decode(body, &in); err != nil {
		return "", err
	}
	if in.Identifier == nil {
		return "", chatInvalid("identifier", "1 validation error detected: Value null at 'identifier' failed to satisfy constraint: Member must not be null")
	}
	id, err := s.chatARN("identifier", *in.Identifier, "logging-configuration")
	if err != nil {
		return "", err
	}
	if _, ok := s.store.ChatLogging.Get(id); !ok {
		return "", chatNotFound(*in.Identifier, "LOGGING_CONFIGURATION")
	}
	return id, nil
}

func (s *Server) getLoggingConfiguration(ctx context.Context, r *request) (any, error) {
	id, err := s.loggingConfigID(r.body)
	if err != nil {
		return nil, err
	}
	c, ok := s.store.ChatLogging.Get(id)
	if !ok {
		return nil, chatNotFound(s.arn("ivschat", "logging-configuration", id), "LOGGING_CONFIGURATION")
	}
	return s.loggingConfigOut(c), nil
}

func (s *Server) updateLoggingConfiguration(ctx context.Context, r *request) (any, error) {
	id, err := s.loggingConfigID(r.body)
	if err != nil {
		return nil, err
	}
	var in struct {
		Name                     *string              `json:"name"`
		DestinationConfiguration *chatDestinationJSON `json:"destinationConfiguration"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	c, err := s.store.ChatLogging.Update(ctx, id, func(c *store.ChatLoggingConfiguration) error {
		if in.Name != nil {
			c.Name = *in.Name
		}
		if in.DestinationConfiguration != nil {
			if err := applyDestination(c, in.DestinationConfiguration); err != nil {
				return err
			}
		}
		c.UpdatedAt = time.Now().UTC()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, chatNotFound(s.arn("ivschat", "logging-configuration", id), "LOGGING_CONFIGURATION")
	}
	if err != nil {
		return nil, err
	}
	return s.loggingConfigOut(c), nil
}

func (s *Server) deleteLoggingConfiguration(ctx context.Context, r *request) (any, error) {
	id, err := s.loggingConfigID(r.body)
	if err != nil {
		return nil, err
	}
	arn := s.arn("ivschat", "logging-configuration", id)
	err = s.withRefs(func() error {
		for _, it := range s.store.Rooms.List() {
			if slices.Contains(it.Value.LoggingConfigurations, id) {
				e := errConflict("logging configuration %s is used by room %s; remove it from the room first", arn, s.arn("ivschat", "room", it.Key))
				e.Fields = map[string]any{"resourceId": arn, "resourceType": "LOGGING_CONFIGURATION"}
				return e
			}
		}
		return s.store.ChatLogging.Delete(ctx, id)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, chatNotFound(arn, "LOGGING_CONFIGURATION")
	} else if err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (s *Server) listLoggingConfigurations(ctx context.Context, r *request) (any, error) {
	var in struct {
		NextToken  *string `json:"nextToken"`
		MaxResults *int    `json:"maxResults"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	max, err := checkMaxResults(in.MaxResults, 50)
	if err != nil {
		return nil, err
	}
	items, next, err := page(s.store.ChatLogging.List(), in.NextToken, max, nil)
	if err != nil {
		return nil, err
	}
	out := make([]loggingConfigJSON, 0, len(items))
	for _, c := range items {
		out = append(out, s.loggingConfigOut(c))
	}
	return listResponse("loggingConfigurations", out, next), nil
}

// chatWithTags applies fn to the tags of the room or logging configuration resARN names.
func (s *Server) chatWithTags(ctx context.Context, resARN string, fn func(map[string]string) (map[string]string, error)) (map[string]string, error) {
	a, ok := parseARN(resARN)
	if !ok || a.Service != "ivschat" {
		return nil, chatInvalid("resourceArn", "1 validation error detected: Value '%s' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:[a-z-]/[a-zA-Z0-9-]+$", resARN)
	}
	var tags map[string]string
	var err error
	switch {
	case !s.ownARN(a):
		err = store.ErrNotFound
	case a.Type == "room":
		tags, err = updateTags(ctx, s.store.Rooms, a.ID, func(r *store.Room) *map[string]string { return &r.Tags }, fn)
	case a.Type == "logging-configuration":
		tags, err = updateTags(ctx, s.store.ChatLogging, a.ID, func(c *store.ChatLoggingConfiguration) *map[string]string { return &c.Tags }, fn)
	default:
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, chatNotFound(resARN, resourceType(a.Type))
	}
	return tags, err
}

func (s *Server) chatTagResource(ctx context.Context, r *request) (any, error) {
	var in struct {
		Tags map[string]string `json:"tags"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if in.Tags == nil {
		return nil, chatInvalid("tags", "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	_, err := s.chatWithTags(ctx, r.resARN, func(tags map[string]string) (map[string]string, error) {
		maps.Copy(tags, in.Tags)
		if len(tags) > 50 {
			return nil, chatInvalid("tags", "a resource can have at most 50 tags")
		}
		return tags, nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (s *Server) chatUntagResource(ctx context.Context, r *request) (any, error) {
	keys, ok := r.query["tagKeys"]
	if !ok {
		return nil, chatInvalid("tagKeys", "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	if len(keys) > 50 {
		return nil, chatInvalid("tagKeys", "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, k := range keys {
		if err := checkTagKey("tagKeys", k); err != nil {
			return nil, err
		}
	}
	_, err := s.chatWithTags(ctx, r.resARN, func(tags map[string]string) (map[string]string, error) {
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

func (s *Server) chatListTagsForResource(ctx context.Context, r *request) (any, error) {
	tags, err := s.chatWithTags(ctx, r.resARN, nil)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": tags}, nil
}
