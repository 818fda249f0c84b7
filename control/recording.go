package control

import (
	"context"
	"errors"
	"time"

	"glasscast/auth"
	"glasscast/store"
)

type recordingConfigJSON struct {
	Arn                             string                        `json:"arn"`
	Name                            string                        `json:"name"`
	DestinationConfiguration        destinationJSON               `json:"destinationConfiguration"`
	State                           string                        `json:"state"`
	Tags                            map[string]string             `json:"tags"`
	ThumbnailConfiguration          *store.ThumbnailConfiguration `json:"thumbnailConfiguration,omitempty"`
	RecordingReconnectWindowSeconds int                           `json:"recordingReconnectWindowSeconds,omitempty"`
	RenditionConfiguration          *store.RenditionConfiguration `json:"renditionConfiguration,omitempty"`
}

type destinationJSON struct {
	S3 *struct {
		BucketName *string `json:"bucketName"`
	} `json:"s3"`
}

func (s *Server) recordingConfigOut(c store.RecordingConfiguration, full bool) recordingConfigJSON {
	bucket := c.BucketName
	out := recordingConfigJSON{Arn: s.arn("ivs", "recording-configuration", c.ID), Name: c.Name, State: c.State, Tags: tagsOut(c.Tags)}
	out.DestinationConfiguration.S3 = &struct {
		BucketName *string `json:"bucketName"`
	}{&bucket}
	if full {
		out.ThumbnailConfiguration = c.Thumbnail
		out.RecordingReconnectWindowSeconds = c.ReconnectWindowSeconds
		out.RenditionConfiguration = c.Rendition
	}
	return out
}

func (s *Server) createRecordingConfiguration(ctx context.Context, r *request) (any, error) {
	var in struct {
		Name                     *string
		DestinationConfiguration *destinationJSON
		Tags                     map[string]string
		ThumbnailConfiguration   *struct {
			RecordingMode         *string
			TargetIntervalSeconds *int64
			Resolution            *string
			Storage               []string
		}
		RecordingReconnectWindowSeconds *int
		RenditionConfiguration          *struct {
			RenditionSelection *string
			Renditions         []string
		}
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("destinationConfiguration", in.DestinationConfiguration != nil); err != nil {
		return nil, err
	}
	if in.DestinationConfiguration.S3 == nil || in.DestinationConfiguration.S3.BucketName == nil {
		return nil, required("destinationConfiguration.s3.bucketName", false)
	}
	bucket := *in.DestinationConfiguration.S3.BucketName
	if len(bucket) < 3 || len(bucket) > 63 || !reBucketName.MatchString(bucket) {
		return nil, constraint("destinationConfiguration.s3.bucketName", bucket, "Member must be 3 to 63 characters matching [a-z0-9-.]+")
	}
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	// CREATING until the archive role, which holds the S3 settings, has reached the bucket.
	c := store.RecordingConfiguration{ID: auth.NewID(), BucketName: bucket, Tags: in.Tags, State: "CREATING", CreatedAt: time.Now().UTC(),
		Thumbnail: &store.ThumbnailConfiguration{RecordingMode: "INTERVAL", TargetIntervalSeconds: 60, Storage: []string{"SEQUENTIAL"}},
		Rendition: &store.RenditionConfiguration{RenditionSelection: "ALL"}}
	if in.Name != nil {
		c.Name = *in.Name
	}
	if w := in.RecordingReconnectWindowSeconds; w != nil {
		if *w < 0 || *w > 300 {
			return nil, errValidation("1 validation error detected: Value '%d' at 'recordingReconnectWindowSeconds' failed to satisfy constraint: Member must have value between 0 and 300", *w)
		}
		c.ReconnectWindowSeconds = *w
	}
	if t := in.ThumbnailConfiguration; t != nil {
		if err := checkEnum("thumbnailConfiguration.recordingMode", t.RecordingMode, "INTERVAL", "DISABLED"); err != nil {
			return nil, err
		}
		if err := checkEnum("thumbnailConfiguration.resolution", t.Resolution, "SD", "HD", "FULL_HD", "LOWEST_RESOLUTION"); err != nil {
			return nil, err
		}
		if t.RecordingMode != nil {
			c.Thumbnail.RecordingMode = *t.RecordingMode
		}
		if v := t.TargetIntervalSeconds; v != nil {
			if *v < 1 || *v > 60 {
				return nil, errValidation("1 validation error detected: Value '%d' at 'thumbnailConfiguration.targetIntervalSeconds' failed to satisfy constraint: Member must have value between 1 and 60", *v)
			}
			c.Thumbnail.TargetIntervalSeconds = *v
		}
		if t.Resolution != nil {
			c.Thumbnail.Resolution = *t.Resolution
		}
		if t.Storage != nil {
			for i := range t.Storage {
				if err := checkEnum("thumbnailConfiguration.storage", &t.Storage[i], "SEQUENTIAL", "LATEST"); err != nil {
					return nil, err
				}
			}
			c.Thumbnail.Storage = t.Storage
		}
	}
	if rc := in.RenditionConfiguration; rc != nil {
		if err := checkEnum("renditionConfiguration.renditionSelection", rc.RenditionSelection, "ALL", "NONE", "CUSTOM"); err != nil {
			return nil, err
		}
		for i := range rc.Renditions {
			if err := checkEnum("renditionConfiguration.renditions", &rc.Renditions[i], "SD", "HD", "FULL_HD", "LOWEST_RESOLUTION"); err != nil {
				return nil, err
			}
		}
		if rc.RenditionSelection != nil {
			c.Rendition.RenditionSelection = *rc.RenditionSelection
		}
		if c.Rendition.RenditionSelection == "CUSTOM" {
			if len(rc.Renditions) == 0 {
				return nil, errValidation("renditionConfiguration.renditions is required when renditionSelection is CUSTOM")
			}
			c.Rendition.Renditions = rc.Renditions
		} else if len(rc.Renditions) > 0 {
			return nil, errValidation("renditionConfiguration.renditions is allowed only when renditionSelection is CUSTOM")
		}
	}
	if q := s.cfg.Quotas.RecordingConfigurations; q > 0 && s.store.RecordingConfigs.Len() >= q {
		return nil, errQuota("maximum number of recording configurations (%d) reached", q)
	}
	if err := s.store.RecordingConfigs.Create(ctx, c.ID, c); err != nil {
		return nil, err
	}
	return map[string]any{"recordingConfiguration": s.recordingConfigOut(c, true)}, nil
}

func (s *Server) recordingConfigByARN(field, v string) (store.RecordingConfiguration, error) {
	return byARN(s, s.store.RecordingConfigs, "recording-configuration", "recording configuration", field, v)
}

func (s *Server) getRecordingConfiguration(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	c, err := s.recordingConfigByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"recordingConfiguration": s.recordingConfigOut(c, true)}, nil
}

func (s *Server) listRecordingConfigurations(ctx context.Context, r *request) (any, error) {
	return listAll(r, s.store.RecordingConfigs, 100, "recordingConfigurations", func(c store.RecordingConfiguration) recordingConfigJSON { return s.recordingConfigOut(c, false) })
}

func (s *Server) deleteRecordingConfiguration(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	c, err := s.recordingConfigByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	full := s.arn("ivs", "recording-configuration", c.ID)
	err = s.withRefs(func() error {
		for _, it := range s.store.Channels.List() {
			if it.Value.RecordingConfigurationArn == full {
				return errConflict("recording configuration %s is used by channel %s; detach it first", full, s.channelARN(it.Key))
			}
		}
		return s.store.RecordingConfigs.Delete(ctx, c.ID)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("recording configuration %s not found", resARN)
		}
		return nil, err
	}
	return noContent{}, nil
}
