package transcode

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	for _, c := range []struct {
		typ, preset string
		in          Input
		want        string // name WxH@fps kb/s, highest first
	}{
		{TypeStandard, "", Input{1920, 1080, 60},
			"source 1920x1080@60 0, 720p60 1280x720@60 3500, 480p30 854x480@30/2 1200, 360p30 640x360@30/2 630, 160p30 284x160@30/2 230"},
		{TypeStandard, "", Input{1280, 720, 30},
			"source 1280x720@30 0, 480p30 854x480@30 1200, 360p30 640x360@30 630, 160p30 284x160@30 230"},
		{TypeStandard, "", Input{1280, 720, 29.97},
			"source 1280x720@29.97 0, 480p30 854x480@29.97 1200, 360p30 640x360@29.97 630, 160p30 284x160@29.97 230"},
		{TypeStandard, "", Input{2560, 1440, 30},
			"1080p30 1920x1080@30 4500, 720p30 1280x720@30 2500, 480p30 854x480@30 1200, 360p30 640x360@30 630, 160p30 284x160@30 230"},
		{TypeStandard, "", Input{1280, 720, 120},
			"720p60 1280x720@60/2 3500, 480p60 854x480@60/2 1500, 360p60 640x360@60/2 800, 160p60 284x160@60/2 300"},
		{TypeStandard, "", Input{720, 1280, 30},
			"source 720x1280@30 0, 480p30 480x854@30 1200, 360p30 360x640@30 630, 160p30 160x284@30 230"},
		{TypeStandard, "", Input{256, 144, 30}, "source 256x144@30 0"},
		{TypeAdvancedHD, PresetHigher, Input{1920, 1080, 60},
			"720p60 1280x720@60 4375, 480p30 854x480@30/2 1500, 360p30 640x360@30/2 788, 160p30 284x160@30/2 288"},
		{TypeAdvancedHD, "", Input{1920, 1080, 30},
			"720p30 1280x720@30 3125, 480p30 854x480@30 1500, 360p30 640x360@30 788, 160p30 284x160@30 288"},
		{TypeAdvancedSD, PresetConstrained, Input{1920, 1080, 30},
			"480p30 854x480@30 720, 360p30 640x360@30 378, 160p30 284x160@30 138"},
		{TypeAdvancedSD, PresetHigher, Input{1280, 720, 60},
			"480p60 854x480@60 1875, 360p30 640x360@30/2 788, 160p30 284x160@30/2 288"},
		{TypeAdvancedSD, PresetConstrained, Input{640, 360, 25},
			"360p25 640x360@25 378, 160p25 284x160@25 138"},
		{TypeAdvancedHD, PresetHigher, Input{200, 120, 30}, "120p30 200x120@30 161"},
	} {
		t.Run(fmt.Sprintf("%s %s %dx%d@%g", c.typ, c.preset, c.in.Width, c.in.Height, c.in.FrameRate), func(t *testing.T) {
			rungs, err := Plan(c.typ, c.preset, c.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rungs {
				half := ""
				if r.HalfRate {
					half = "/2"
				}
				got = append(got, fmt.Sprintf("%s %dx%d@%g%s %d", r.Name, r.Width, r.Height, r.FrameRate, half, r.VideoBitrate/1000))
				if r.Source != (r.Name == SourceName) || r.Width%2 != 0 && !r.Source || r.Height%2 != 0 && !r.Source {
					t.Errorf("rung %+v", r)
				}
			}
			if g := strings.Join(got, ", "); g != c.want {
				t.Errorf("got  %s\nwant %s", g, c.want)
			}
		})
	}
}

func TestPlanRefuses(t *testing.T) {
	for _, c := range []struct {
		typ, preset string
		in          Input
	}{
		{TypeBasic, "", Input{1280, 720, 30}},
		{"", "", Input{1280, 720, 30}},
		{TypeStandard, "", Input{0, 720, 30}},
		{TypeStandard, "", Input{1280, -1, 30}},
		{TypeStandard, "", Input{1280, 720, 0}},
		{TypeStandard, "", Input{1280, 720, math.NaN()}},
		{TypeStandard, "", Input{1280, 720, math.Inf(1)}},
		{TypeAdvancedHD, "FASTEST", Input{1280, 720, 30}},
	} {
		if rungs, err := Plan(c.typ, c.preset, c.in); err == nil {
			t.Errorf("Plan(%q, %q, %+v) = %+v, want an error", c.typ, c.preset, c.in, rungs)
		}
	}
}
