package whip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/ingest"
)

// FromIngest attaches WHIP publishers to the ingest's shared sessions: stream-key auth, one
// publisher per channel whatever its protocol, health, events, metrics and recording.
func FromIngest(in *ingest.Server) Ingest { return ingestAttacher{in} }

type ingestAttacher struct{ in *ingest.Server }

func (a ingestAttacher) Authorize(key string, secure bool) error {
	if _, _, err := a.in.Authorize(key, secure); err != nil {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	return nil
}

func (a ingestAttacher) Attach(ctx context.Context, key string, secure bool, close func(), log *slog.Logger) (Session, error) {
	ch, keyID, err := a.in.Authorize(key, secure)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	log = log.With("channel", ch.ID, "streamKey", keyID)
	s, err := a.in.Attach(ctx, ingest.Publisher{Channel: ch, Close: close, Log: log})
	if err != nil {
		// The channel is live already (here, over another protocol, or on another ingest) or
		// its previous broadcast is still ending.
		return nil, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return ingestSession{Session: s, channel: ch.ID}, nil
}

type ingestSession struct {
	*ingest.Session
	channel string
}

func (s ingestSession) ChannelID() string { return s.channel }

// Detach ends the stream at once after a DELETE; a broken connection waits the reconnect grace.
func (s ingestSession) Detach(ctx context.Context, err error) {
	if errors.Is(err, ErrDeleted) {
		err = ingest.ErrPublisherEnded
	}
	s.Session.Detach(ctx, err)
}

func (s ingestSession) Start(ctx context.Context, video, audio mp4codecs.Codec, sentVideo, sentAudio string) error {
	return s.Session.Start(ctx, ingest.Tracks{Video: video, Audio: audio,
		Encoder: ingest.Encoder{Name: "WHIP", SentVideo: sentVideo, SentAudio: sentAudio}})
}
