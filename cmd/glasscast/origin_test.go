package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"glasscast/bus"
	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/origintest"
	"glasscast/store"
)

// A process with an origin and no edge serves playback on its HTTP listeners from the origin,
// which checks no tokens: a private channel's broadcast is refused there, a public one plays.
func TestOriginOnlyServesPublicChannelsOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Name: "origin-only-test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	const region, account = "us-east-1", "000000000000"
	org := origin.New(origin.Config{Region: region, Account: account})
	defer org.Close()
	for _, ch := range []store.Channel{{ID: "pub", LatencyMode: "LOW", Type: "BASIC"}, {ID: "priv", Authorized: true, LatencyMode: "LOW", Type: "BASIC"}} {
		if err := st.Channels.Create(ctx, ch.ID, ch); err != nil {
			t.Fatal(err)
		}
		pub := origintest.New(org, origintest.Config{ChannelID: ch.ID, Backfill: 2, FirstMSN: 100})
		if err := pub.Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := publicOnly(org, st)
	for id, want := range map[string]int{"pub": http.StatusOK, "priv": http.StatusForbidden} {
		mv := media.MultivariantPath(region, account, id)
		for _, p := range []string{mv, strings.TrimSuffix(mv, ".m3u8") + "/720p/index.m3u8"} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
			if w.Code != want {
				t.Errorf("%s: %d, want %d (%s)", p, w.Code, want, w.Header().Get("X-Glasscast-Reason"))
			}
		}
	}
}
