package bus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"glasscast/auth"
)

// Auth is how NATS clients log in: a user and password, a token, or an nkey seed file. At most
// one kind is set; none means no login (an external cluster that needs none, or a CredsFile).
type Auth struct {
	User, Password string
	Token          string
	// NkeySeedFile holds an nkey user seed ("SU..."); its public key is the identity.
	NkeySeedFile string
}

// IsZero reports whether no credentials are set.
func (a Auth) IsZero() bool { return a == Auth{} }

func (a Auth) validate() error {
	kinds := 0
	if a.User != "" || a.Password != "" {
		if a.User == "" || a.Password == "" {
			return errors.New("nats user and password must be set together")
		}
		kinds++
	}
	if a.Token != "" {
		kinds++
	}
	if a.NkeySeedFile != "" {
		kinds++
	}
	if kinds > 1 {
		return errors.New("set only one of nats user/password, nats token and nats nkey seed")
	}
	return nil
}

func (a Auth) clientOptions() ([]nats.Option, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	switch {
	case a.User != "":
		return []nats.Option{nats.UserInfo(a.User, a.Password)}, nil
	case a.Token != "":
		return []nats.Option{nats.Token(a.Token)}, nil
	case a.NkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed: %w", err)
		}
		return []nats.Option{o}, nil
	}
	return nil, nil
}

// serverOptions makes the embedded server require a. A server that listens always requires a
// login: the NATS port carries every secret Glasscast keeps, so there is no way to open it to
// anyone.
func (a Auth) serverOptions(o *server.Options) error {
	if err := a.validate(); err != nil {
		return err
	}
	switch {
	case a.User != "":
		o.Users = []*server.User{{Username: a.User, Password: a.Password}}
	case a.Token != "":
		o.Authorization = a.Token
	case a.NkeySeedFile != "":
		seed, err := os.ReadFile(a.NkeySeedFile)
		if err != nil {
			return fmt.Errorf("nats nkey seed: %w", err)
		}
		kp, err := nkeys.ParseDecoratedNKey(seed)
		if err != nil {
			return fmt.Errorf("nats nkey seed %s: %w", a.NkeySeedFile, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return fmt.Errorf("nats nkey seed %s: %w", a.NkeySeedFile, err)
		}
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	default:
		return errors.New("the embedded NATS server listens only with credentials (nats.user and nats.password, nats.token or nats.nkeySeed)")
	}
	return nil
}

// CredentialsFile is where LoadOrCreateCredentials keeps the embedded server's generated login.
const CredentialsFile = "nats-credentials.json"

// LoadOrCreateCredentials reads the embedded server's login kept in dir, creating one (user
// "glasscast", a 256-bit random password, mode 0600) on first start. created tells the caller
// to show it once.
func LoadOrCreateCredentials(dir string) (a Auth, created bool, err error) {
	type stored struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	c, created, err := auth.LoadOrCreateSecretFile(dir, CredentialsFile, "nats credentials",
		func() (stored, error) {
			secret := make([]byte, 32)
			if _, err := rand.Read(secret); err != nil {
				return stored{}, err
			}
			return stored{User: "glasscast", Password: hex.EncodeToString(secret)}, nil
		},
		func(c stored) bool { return c.User != "" && c.Password != "" })
	return Auth{User: c.User, Password: c.Password}, created, err
}

// clientTLS is the TLS a client of an external cluster uses: the cluster's CA, and a client
// certificate when one is configured. Servers announced as tls:// are verified either way.
func clientTLS(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("nats TLS client certificate needs both a certificate and a key")
		}
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	if len(opts) > 0 || strings.Contains(cfg.URL, "tls://") {
		opts = append(opts, nats.Secure())
	}
	return opts, nil
}

// isLoopback reports whether a listen host reaches only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
