package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"glasscast/bench"
)

const benchUsage = `Usage:
  glasscast bench viewers --url <playback URL> [--viewers N] [--duration D] [--ramp D] [--max-error-rate F]
  glasscast bench chat --url ws://host:8080/chat --api http://host:8080 [--rooms R] [--clients N] [--rate M] [--duration D]
`

// runBench runs a load generator against a deployment.
func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, benchUsage)
		return errors.New("bench needs a kind of load")
	}
	switch args[0] {
	case "viewers":
		fs := flag.NewFlagSet("bench viewers", flag.ContinueOnError)
		var cfg bench.ViewersConfig
		fs.StringVar(&cfg.URL, "url", "", "playback (multivariant) URL, with ?token= for a private channel")
		fs.IntVar(&cfg.Viewers, "viewers", 100, "concurrent simulated LL-HLS players")
		fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long each viewer plays")
		fs.DurationVar(&cfg.Ramp, "ramp", 2*time.Second, "spread viewer start-ups over this long")
		fs.Float64Var(&cfg.MaxErrorRate, "max-error-rate", 0.01, "fail (exit 1) when errors exceed this fraction of requests")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if cfg.URL == "" {
			return errors.New("--url is required")
		}
		cfg.Progress = os.Stderr
		rep, err := bench.Viewers(ctx, cfg)
		fmt.Print(rep)
		return err
	case "chat":
		return runChatBench(ctx, args[1:])
	}
	fmt.Fprint(os.Stderr, benchUsage)
	return fmt.Errorf("unknown bench %q", args[0])
}
