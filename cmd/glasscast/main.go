// Command glasscast is the single Glasscast binary: `glasscast serve` runs every role in one
// process; the other subcommands run one role each or help operate a deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `glasscast — self-hosted live streaming compatible with AWS IVS

Usage:
  glasscast serve    [flags]   run every role in one process (API, ingest, origin, edge, chat)
  glasscast control  [flags]   run the control API alone, joined to others by --nats-url
  glasscast ingest   [flags]   run an RTMP/RTMPS ingest that pushes to --ingest-origin-urls
  glasscast origin   [flags]   run an origin that listens on --origin-listen
  glasscast edge     [flags]   run an edge (caching proxy) in front of --edge-upstream or live origins
  glasscast director [flags]   run a playback director: multivariant requests go to the nearest healthy edge
  glasscast archive  [flags]   record live channels to S3 in IVS's layout, joined to others by --nats-url
  glasscast recordings list|url [flags]   list a bucket's recordings, or print where one plays from
  glasscast bench    viewers   simulated LL-HLS viewers against a playback URL, with a latency report
  glasscast events   tail      follow IVS EventBridge events (stream, health, recording) as JSON lines
  glasscast config             print every configuration option, documented, as YAML
  glasscast version            print the version

Run 'glasscast <command> -h' for a command's flags.
`

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1], os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "glasscast %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "serve":
		return runNode(ctx, "serve", args, rolesAll)
	case "control":
		return runNode(ctx, "control", args, roleControl)
	case "ingest":
		return runNode(ctx, "ingest", args, roleIngest)
	case "origin":
		return runNode(ctx, "origin", args, roleOrigin)
	case "edge":
		return runNode(ctx, "edge", args, roleEdge)
	case "director":
		return runNode(ctx, "director", args, roleDirector)
	case "archive":
		return runNode(ctx, "archive", args, roleArchive)
	case "recordings":
		return runRecordings(ctx, args)
	case "bench":
		return runBench(ctx, args)
	case "events":
		return runEvents(ctx, args)
	case "config":
		fmt.Print(exampleYAML(defaultConfig().options()))
		return nil
	case "version":
		fmt.Println("glasscast", version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
