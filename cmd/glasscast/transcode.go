package main

import "glasscast/ingest"

// transcodeConfig is how the ingest transcodes STANDARD and ADVANCED channels.
type transcodeConfig struct {
	Enabled    bool
	FFmpeg     string
	X264Preset string
}

func defaultTranscodeConfig() transcodeConfig {
	return transcodeConfig{Enabled: true, FFmpeg: "ffmpeg", X264Preset: "veryfast"}
}

// ingest is the ingest role's part of it.
func (c transcodeConfig) ingest() ingest.TranscodeConfig {
	return ingest.TranscodeConfig{Disabled: !c.Enabled, FFmpeg: c.FFmpeg, X264Preset: c.X264Preset}
}
