package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The example file in configs/ must document every option with its default.
func TestExampleConfigIsCurrent(t *testing.T) {
	want := exampleYAML(defaultConfig().options())
	got, err := os.ReadFile("../../configs/glasscast.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("configs/glasscast.yaml is out of date: run `go run ./cmd/glasscast config > configs/glasscast.yaml`")
	}
}

func TestOptionNames(t *testing.T) {
	cases := map[string][2]string{
		"http.listen":                 {"http-listen", "GLASSCAST_HTTP_LISTEN"},
		"api.playbackBaseUrl":         {"api-playback-base-url", "GLASSCAST_API_PLAYBACK_BASE_URL"},
		"quotas.streamKeysPerChannel": {"quotas-stream-keys-per-channel", "GLASSCAST_QUOTAS_STREAM_KEYS_PER_CHANNEL"},
		"dataDir":                     {"data-dir", "GLASSCAST_DATA_DIR"},
	}
	for key, want := range cases {
		o := option{key: key}
		if o.flagName() != want[0] || o.envName() != want[1] {
			t.Errorf("%s: flag %s env %s, want %v", key, o.flagName(), o.envName(), want)
		}
	}
	seen := map[string]bool{}
	for _, o := range defaultConfig().options() {
		if seen[o.flagName()] {
			t.Errorf("two options share flag --%s", o.flagName())
		}
		seen[o.flagName()] = true
	}
}

// Defaults < file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(file, []byte("http:\n  listen: \":1\"\nregion: eu-west-1\nquotas:\n  channels: 7\nlogLevel: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GLASSCAST_CONFIG", file)
	t.Setenv("GLASSCAST_REGION", "ap-south-1")
	t.Setenv("GLASSCAST_LOG_LEVEL", "warn")
	cfg := defaultConfig()
	if err := load("serve", cfg.options(), []string{"--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPListen != ":1" || cfg.Region != "ap-south-1" || cfg.Quotas.Channels != 7 || cfg.LogLevel != "error" || cfg.Account != "000000000000" {
		t.Fatalf("precedence: %+v", cfg)
	}
	if err := os.WriteFile(file, []byte("nope: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := load("serve", defaultConfig().options(), nil); err == nil {
		t.Fatal("an unknown key in the file must be an error")
	}
	t.Setenv("GLASSCAST_CONFIG", "")
	if err := load("serve", defaultConfig().options(), []string{"--quotas-channels", "many"}); err == nil {
		t.Fatal("a malformed number must be an error")
	}
}
