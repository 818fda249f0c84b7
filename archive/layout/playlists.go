package layout

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// pdt formats EXT-X-PROGRAM-DATE-TIME values as IVS does: UTC with milliseconds.
func pdt(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// Master renders master.m3u8 (byteRange false) or byte-range-multivariant.m3u8 (true): the
// Twitch-style multivariant playlist of IVS recordings, one video group per rendition.
func Master(r *Recording, byteRange bool) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	b.WriteString(`#EXT-X-SESSION-DATA:DATA-ID="net.live-video.content.id",VALUE="` + r.ChannelID + "\"\n")
	b.WriteString(`#EXT-X-SESSION-DATA:DATA-ID="net.live-video.customer.id",VALUE="` + r.Account + "\"\n")
	uri := MediaPlaylist
	if byteRange {
		uri = ByteRangeVariant
	}
	for i, rd := range r.Renditions {
		def := "NO"
		if i == 0 {
			def = "YES"
		}
		name := rd.Name
		if rd.Height > 0 {
			name = strconv.Itoa(rd.Height) + "p"
		}
		b.WriteString(`#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID="` + rd.Name + `",NAME="` + name + `",AUTOSELECT=YES,DEFAULT=` + def + "\n")
		b.WriteString("#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH=" + strconv.Itoa(max(rd.Bandwidth, 1)))
		if rd.Codecs != "" {
			b.WriteString(`,CODECS="` + rd.Codecs + `"`)
		}
		if rd.Width > 0 && rd.Height > 0 {
			b.WriteString(",RESOLUTION=" + strconv.Itoa(rd.Width) + "x" + strconv.Itoa(rd.Height))
		}
		b.WriteString(`,VIDEO="` + rd.Name + "\"\n")
		b.WriteString(rd.Name + "/" + uri + "\n")
	}
	return []byte(b.String())
}

// targetDuration is the playlist's EXT-X-TARGETDURATION: at least IVS's 12 (so it holds still
// while an EVENT playlist grows with ≈10 s files) and never below a listed duration.
func targetDuration(ds []time.Duration, floor int) int {
	t := floor
	for _, d := range ds {
		t = max(t, int(math.Ceil(d.Seconds()-0.0005)))
	}
	return t
}

// Media renders a rendition's playlist.m3u8: EVENT while recording, with EXT-X-ENDLIST once
// ended. now stamps #ID3-EQUIV-TDTG, the time the playlist was written.
func Media(rd *Rendition, ended bool, now time.Time) []byte {
	var ds []time.Duration
	var total time.Duration
	for i := range rd.Files {
		if !rd.Files[i].Dropped {
			d := rd.Files[i].Duration()
			ds = append(ds, d)
			total += d
		}
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n")
	b.WriteString("#EXT-X-TARGETDURATION:" + strconv.Itoa(targetDuration(ds, 12)) + "\n")
	b.WriteString("#ID3-EQUIV-TDTG:" + now.UTC().Format("2006-01-02T15:04:05") + "\n")
	b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n")
	b.WriteString("#EXT-X-TWITCH-ELAPSED-SECS:0.000\n")
	b.WriteString("#EXT-X-TWITCH-TOTAL-SECS:" + secs(total) + "\n")
	listed(rd, &b, func(f *File) {
		b.WriteString("#EXT-X-PROGRAM-DATE-TIME:" + pdt(f.Chunks[0].PDT) + "\n")
		writeAdMarkers(&b, f)
		b.WriteString("#EXTINF:" + secs(f.Duration()) + ",\n")
		b.WriteString(SegmentName(f.N) + "\n")
	})
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// ByteRange renders a rendition's byte-range-variant.m3u8: one entry per key frame interval
// (chunk) over the same TS files, offsets restarting at 0 in each file.
func ByteRange(rd *Rendition, ended bool) []byte {
	var ds []time.Duration
	for i := range rd.Files {
		if !rd.Files[i].Dropped {
			for _, c := range rd.Files[i].Chunks {
				ds = append(ds, c.Duration)
			}
		}
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:4\n")
	b.WriteString("#EXT-X-TARGETDURATION:" + strconv.Itoa(targetDuration(ds, 1)) + "\n")
	if ended {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	b.WriteString("#EXT-X-MEDIA-SEQUENCE:0\n")
	listed(rd, &b, func(f *File) {
		for i, c := range f.Chunks {
			b.WriteString("#EXT-X-PROGRAM-DATE-TIME:" + pdt(c.PDT) + "\n")
			if i == 0 {
				writeAdMarkers(&b, f)
			}
			b.WriteString("#EXTINF:" + secs(c.Duration) + ",\n")
			b.WriteString("#EXT-X-BYTERANGE:" + strconv.FormatInt(c.Length, 10) + "@" + strconv.FormatInt(c.Offset, 10) + "\n")
			b.WriteString(SegmentName(f.N) + "\n")
		}
	})
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// writeAdMarkers writes the ad-break tags in front of a file's first entry, after its
// program date time (which EXT-X-DATERANGE needs).
func writeAdMarkers(b *strings.Builder, f *File) {
	for _, m := range f.AdMarkers {
		b.WriteString(m + "\n")
	}
}

// listed calls entry for every file a playlist lists, in order, writing EXT-X-DISCONTINUITY in
// front of one whose media does not follow the previous listed file's: after a reconnect, or
// after a file that was lost.
func listed(rd *Rendition, b *strings.Builder, entry func(f *File)) {
	disc, n := false, 0
	for i := range rd.Files {
		f := &rd.Files[i]
		if f.Dropped || len(f.Chunks) == 0 {
			disc = disc || f.Dropped
			continue
		}
		if (f.Discontinuity || disc) && n > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		disc = false
		n++
		entry(f)
	}
}
