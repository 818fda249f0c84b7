package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/golang-jwt/jwt/v5"
)

// playbackToken imports a new playback key pair through the API and signs a viewer token for
// channelARN with it, as an IVS customer's backend does.
func playbackToken(t *testing.T, ctx context.Context, c *ivs.Client, channelARN string, extra ...jwt.MapClaims) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if _, err := c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(pub)}); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"aws:channel-arn": channelARN, "aws:access-control-allow-origin": "*", "exp": time.Now().Add(time.Hour).Unix()}
	for _, e := range extra {
		for k, v := range e {
			claims[k] = v
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodES384, claims).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
