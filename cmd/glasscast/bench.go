package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"glasscast/bench"
)

const benchUsage = `Usage:
  glasscast bench viewers --url <playback URL> [--viewers N] [--duration D] [--ramp D] [--max-error-rate F] [--json] [--cpuprofile FILE]
  glasscast bench viewers --url <playback URL> --find-max [--viewers START] [--max-viewers N] [--confirm K] [--duration D]
  glasscast bench pollers --url <playback URL> [--pollers N] [--every D] [--duration D] [--gzip=false]
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
		gzipOn := fs.Bool("gzip", true, "ask for gzip-encoded playlists, as browsers do (false: unencoded, without the client's inflate on shared cores)")
		findMax := fs.Bool("find-max", false, "search the highest viewer count that passes (p99 part delay under one part target, no stall, no error), starting at --viewers")
		maxViewers := fs.Int("max-viewers", 20000, "upper bound of --find-max")
		confirm := fs.Int("confirm", 2, "--find-max's count must pass this many runs in all (one that fails a rerun is the new upper bound)")
		asJSON := fs.Bool("json", false, "print the report as JSON")
		cpuProfile := fs.String("cpuprofile", "", "write the load client's own CPU profile to this file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		if cfg.URL == "" {
			return errors.New("--url is required")
		}
		cfg.NoGzip = !*gzipOn
		cfg.Progress = os.Stderr
		// The client shares the cores of the server it measures: trade memory for less GC.
		debug.SetGCPercent(400)
		if *findMax {
			n, rep, err := bench.FindMax(ctx, cfg, *maxViewers, max(1, *confirm))
			fmt.Printf("highest passing viewer count: %d\n", n)
			if n > 0 {
				fmt.Print(rep)
			}
			return err
		}
		rep, err := bench.Viewers(ctx, cfg)
		if *asJSON {
			_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"viewers": cfg.Viewers, "delayP50Ms": ms(rep.DelayP50),
				"delayP99Ms": ms(rep.DelayP99), "stallMaxMs": ms(rep.StallMax), "errors": rep.ErrorCount(),
				"partTargetMs": ms(rep.PartTarget), "pass": rep.Pass, "requests": rep.Requests, "parts": rep.Parts})
		} else {
			fmt.Print(rep)
		}
		if err == nil && !rep.Pass {
			err = errors.New("the run did not pass")
		}
		return err
	case "pollers":
		var cfg bench.PollersConfig
		fs := flag.NewFlagSet("bench pollers", flag.ContinueOnError)
		fs.StringVar(&cfg.URL, "url", "", "playback (multivariant) URL; its first variant's media playlist is polled")
		fs.IntVar(&cfg.Pollers, "pollers", 1000, "concurrent plain HLS players (no LL-HLS directives, as Amazon's IVS player)")
		fs.DurationVar(&cfg.Every, "every", time.Second, "how often each reloads the playlist (the IVS player: once a segment)")
		fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long each polls")
		gzipOn := fs.Bool("gzip", true, "ask for gzip-encoded playlists, as browsers do")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if cfg.URL == "" {
			return errors.New("--url is required")
		}
		cfg.NoGzip = !*gzipOn
		debug.SetGCPercent(400)
		rep, err := bench.Pollers(ctx, cfg)
		fmt.Print(rep)
		return err
	case "chat":
		return runChatBench(ctx, args[1:])
	}
	fmt.Fprint(os.Stderr, benchUsage)
	return fmt.Errorf("unknown bench %q", args[0])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
