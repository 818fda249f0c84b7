package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"glasscast/archive"
	"glasscast/archive/bucket"
	"glasscast/archive/spool"
	"glasscast/archive/thumbnail"
	"glasscast/loopback"
)

// archiveConfig is the recording part of Config.
type archiveConfig struct {
	Enabled       bool
	S3Endpoint    string
	S3Buckets     string
	S3Region      string
	S3AccessKeyID string
	S3Secret      string
	S3PathStyle   bool
	LocalDir      string
	SpoolMaxMB    int
	SpoolMaxAge   time.Duration
	OriginURL     string
}

func defaultArchiveConfig() archiveConfig {
	return archiveConfig{Enabled: true, S3PathStyle: true, SpoolMaxMB: 4096, SpoolMaxAge: 24 * time.Hour}
}

// parseBucketMap reads "bucket=http://host:9000,other=aws".
func parseBucketMap(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("archive.s3Buckets: %q is not <bucket>=<endpoint URL or aws>", pair)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// buckets opens the recording destinations the configuration describes.
func (c *Config) buckets() (*bucket.Stores, error) {
	a := c.Archive
	m, err := parseBucketMap(a.S3Buckets)
	if err != nil {
		return nil, err
	}
	region := a.S3Region
	if region == "" {
		region = c.Region
	}
	return bucket.New(bucket.Config{Endpoint: a.S3Endpoint, Buckets: m, Region: region, AccessKeyID: a.S3AccessKeyID,
		SecretAccessKey: a.S3Secret, PathStyle: a.S3PathStyle, LocalDir: c.localRecordings(),
		HTTPClient: &http.Client{Transport: http.DefaultTransport}})
}

// startArchive records live channels that have a recording configuration. Under serve it reads
// the in-process origin through a loopback transport; alone it reads the origins named by live
// registrations, or archive.originUrl.
func (n *node) startArchive(ctx context.Context) error {
	cfg := n.cfg
	if !cfg.Archive.Enabled {
		n.log.Info("archive: recording is off in this process (archive.enabled)")
		return nil
	}
	stores, err := cfg.buckets()
	if err != nil {
		return err
	}
	ac := archive.Config{
		Region: cfg.Region, Account: cfg.Account, Node: cfg.NodeName, Buckets: stores,
		Spool: spool.Config{Dir: filepath.Join(cfg.DataDir, "archive", "spool"), MaxBytes: int64(cfg.Archive.SpoolMaxMB) << 20,
			MaxAge: cfg.Archive.SpoolMaxAge},
		OriginURL: strings.TrimSuffix(cfg.Archive.OriginURL, "/"), Thumbnails: &thumbnail.Maker{},
		JS: n.bus.JS, Logger: n.log.With("role", "archive"),
	}
	ac.Events, ac.Recorded = n.monitorArchive()
	if n.localOrigin != nil {
		ac.LocalOrigin = &loopback.Transport{Handler: n.localOrigin}
	}
	a, err := archive.New(ac, n.store)
	if err != nil {
		return err
	}
	n.monitorSpool(a)
	if cfg.Archive.S3Endpoint == "" {
		n.log.Info("archive: no S3 endpoint configured; recordings are written to a local folder per bucket",
			"folder", cfg.localRecordings(), "see", "archive.s3Endpoint")
	}
	n.goRole(func() {
		if err := a.Run(ctx); err != nil {
			n.log.Error("archive stopped", "err", err)
		}
	})
	return nil
}
