package main

import (
	"log/slog"

	"glasscast/ingest"
	"glasscast/ingest/whip"
)

// startWHIP mounts the WHIP endpoint (/whip) on the HTTP listeners, publishing through the
// ingest's shared sessions; nil when WHIP is disabled or its ICE ports cannot be opened.
func (n *node) startWHIP(in *ingest.Server, log *slog.Logger) ingest.Listener {
	cfg := n.cfg
	if cfg.WHIPUDPListen == "" && cfg.WHIPTCPListen == "" {
		return nil
	}
	wh, err := whip.New(whip.Config{UDPListen: cfg.WHIPUDPListen, TCPListen: cfg.WHIPTCPListen, Hosts: splitList(cfg.WHIPHosts),
		Timeout: cfg.WHIPTimeout, KeyFrameInterval: cfg.SegmentTarget, FFmpeg: cfg.Transcode.FFmpeg,
		X264Preset: cfg.Transcode.X264Preset}, whip.FromIngest(in), log)
	if err != nil {
		// A port taken by another process must not keep the other protocols from serving.
		n.log.Warn("WHIP disabled", "err", err)
		return nil
	}
	n.mux.Handle("/whip", wh)
	n.mux.Handle("/whip/", wh)
	udp, tcp := wh.Addrs()
	if udp != nil {
		n.log.Info("ingest listening", "addr", udp.String(), "protocol", "whip ICE/UDP")
	}
	if tcp != nil {
		n.log.Info("ingest listening", "addr", tcp.String(), "protocol", "whip ICE/TCP")
	}
	return wh
}
