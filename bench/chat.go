package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/fasthttp/websocket"
)

// ChatConfig describes a chat load run.
type ChatConfig struct {
	URL  string // chat WebSocket URL (ws://host:8080/chat)
	URL2 string // optional second edge: every other client connects there
	// API is the control API endpoint that creates rooms and mints tokens, with its credentials.
	API, Region, AccessKeyID, SecretAccessKey string
	Rooms, Clients                            int
	Rate                                      float64       // messages per second, over all rooms
	Senders                                   int           // clients per room that send (the others only read)
	Duration                                  time.Duration // how long messages are sent
	ConnectRate                               float64       // new connections per second while ramping up
	ServerPID                                 int           // when set, the server's resident memory is sampled
	Progress                                  io.Writer     // live progress once a second (nil: none)
}

// ChatReport is the outcome of a chat run.
type ChatReport struct {
	Clients, Connected    int
	ConnectTime           time.Duration
	Sent, Delivered       int64
	Elapsed               time.Duration // sending plus a 2 s drain
	SendTime              time.Duration
	Latency, Local, Cross latencySummary // all, same edge as the sender, the other edge
	Errors                map[string]int64
	ServerRSSBefore       int64 // bytes, with ServerPID
	ServerRSSConnected    int64
}

type latencySummary struct {
	N                  int64
	P50, P95, P99, Max time.Duration
	present            bool
}

func (l latencySummary) String() string {
	if !l.present {
		return "no deliveries"
	}
	return fmt.Sprintf("p50 %v  p95 %v  p99 %v  max %v  (%d deliveries)", l.P50, l.P95, l.P99, l.Max, l.N)
}

func (r ChatReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chat clients:      %d connected of %d in %v\n", r.Connected, r.Clients, r.ConnectTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "messages sent:     %d (%.1f/s)\n", r.Sent, float64(r.Sent)/r.SendTime.Seconds())
	fmt.Fprintf(&b, "deliveries:        %d (%.0f/s)\n", r.Delivered, float64(r.Delivered)/r.SendTime.Seconds())
	fmt.Fprintf(&b, "delivery latency:  %s\n", r.Latency)
	if r.Cross.present {
		fmt.Fprintf(&b, "  same edge:       %s\n", r.Local)
		fmt.Fprintf(&b, "  other edge:      %s\n", r.Cross)
	}
	if r.ServerRSSBefore > 0 && r.Connected > 0 {
		fmt.Fprintf(&b, "server memory:     %.1f MiB before, %.1f MiB with %d clients: %.1f KiB per connection\n",
			float64(r.ServerRSSBefore)/(1<<20), float64(r.ServerRSSConnected)/(1<<20), r.Connected,
			float64(r.ServerRSSConnected-r.ServerRSSBefore)/1024/float64(r.Connected))
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		b.WriteString("errors:            none\n")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "error %-28s %d\n", k+":", r.Errors[k])
	}
	return b.String()
}

// histogram is a log-linear latency histogram (about 3% resolution) safe for concurrent use.
type histogram struct {
	counts [64 * 32]atomic.Int64
	max    atomic.Int64
}

func (h *histogram) add(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(us)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// bucketOf is exact below 64 µs; above, a value of n bits goes by its top 6 bits into one of 32
// buckets per power of two.
func bucketOf(us uint64) int {
	if us < 64 {
		return int(us)
	}
	n := bits.Len64(us)
	return (n-5)*32 + int(us>>(n-6)) - 32
}

// bucketValue is the largest value a bucket holds, in microseconds.
func bucketValue(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	n := i/32 + 5
	top := uint64(i%32) + 32
	return (top+1)<<(n-6) - 1
}

func (h *histogram) summary() latencySummary {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	s := latencySummary{N: total, present: total > 0, Max: time.Duration(h.max.Load())}
	if total == 0 {
		return s
	}
	at := func(q float64) time.Duration {
		want := int64(q * float64(total))
		var run int64
		for i := range h.counts {
			run += h.counts[i].Load()
			if run > want {
				return min(time.Duration(bucketValue(i))*time.Microsecond, s.Max)
			}
		}
		return s.Max
	}
	s.P50, s.P95, s.P99 = at(0.50), at(0.95), at(0.99)
	return s
}

type chatRun struct {
	cfg               ChatConfig
	all, local, cross histogram
	sent, delivered   atomic.Int64
	errMu             sync.Mutex
	errors            map[string]int64
}

func (r *chatRun) fail(kind string) {
	r.errMu.Lock()
	r.errors[kind]++
	r.errMu.Unlock()
}

type chatClient struct {
	run   *chatRun
	conn  *websocket.Conn
	edge  int
	wmu   sync.Mutex
	seq   int
	user  string
	alive atomic.Bool
}

// benchFrame is the part of a server frame the bench reads.
type benchFrame struct {
	Type       string
	ErrorCode  int
	Attributes map[string]string
}

func (c *chatClient) read() {
	defer c.alive.Store(false)
	var buf bytes.Buffer
	for {
		_, r, err := c.conn.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		b := buf.Bytes()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.run.fail("closed " + strconv.Itoa(ce.Code))
			} else if !errors.Is(err, net.ErrClosed) {
				c.run.fail("connection lost")
			}
			return
		}
		now := time.Now()
		// MESSAGE frames are read without a full JSON decode: with thousands of clients on the
		// same machine as the server, the load generator must cost less than what it measures.
		if bytes.HasPrefix(b, []byte(`{"Type":"MESSAGE"`)) {
			ns, edge, ok := stamp(b)
			if !ok {
				continue
			}
			d := now.Sub(time.Unix(0, ns))
			c.run.delivered.Add(1)
			c.run.all.add(d)
			if edge == c.edge {
				c.run.local.add(d)
			} else {
				c.run.cross.add(d)
			}
			continue
		}
		var f benchFrame
		if json.Unmarshal(b, &f) != nil {
			c.run.fail("bad frame")
			continue
		}
		if f.Type == "ERROR" {
			c.run.fail("ERROR " + strconv.Itoa(f.ErrorCode))
		}
	}
}

// stamp finds the send time and edge the sender put in a MESSAGE's attributes.
func stamp(b []byte) (ns int64, edge int, ok bool) {
	get := func(key string) string {
		i := bytes.Index(b, []byte(`"`+key+`":"`))
		if i < 0 {
			return ""
		}
		rest := b[i+len(key)+4:]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return ""
		}
		return string(rest[:j])
	}
	ns, err := strconv.ParseInt(get("t"), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	edge, _ = strconv.Atoi(get("e"))
	return ns, edge, true
}

func (c *chatClient) send() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.seq++
	msg := map[string]any{"Action": "SEND_MESSAGE", "RequestId": c.user + "-" + strconv.Itoa(c.seq),
		"Content":    "benchmark message number " + strconv.Itoa(c.seq),
		"Attributes": map[string]string{"t": strconv.FormatInt(time.Now().UnixNano(), 10), "e": strconv.Itoa(c.edge)}}
	b, _ := json.Marshal(msg)
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.run.fail("send failed")
		return
	}
	c.run.sent.Add(1)
}

// Chat opens the clients (tokens minted through the API), sends at the configured rate and
// measures how long each message takes to reach every client of its room.
func Chat(ctx context.Context, cfg ChatConfig) (ChatReport, error) {
	if cfg.Rooms < 1 || cfg.Clients < cfg.Rooms {
		return ChatReport{}, errors.New("need at least one room and one client per room")
	}
	if cfg.Senders < 1 {
		cfg.Senders = 1
	}
	if cfg.ConnectRate <= 0 {
		cfg.ConnectRate = 1000
	}
	if perRoom := cfg.Rate / float64(cfg.Rooms); perRoom > 100 {
		return ChatReport{}, fmt.Errorf("%.0f messages/s per room is over IVS Chat's room maximum of 100: use more rooms", perRoom)
	}
	api := ivschat.New(ivschat.Options{Region: cfg.Region, BaseEndpoint: aws.String(cfg.API),
		Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")})
	run := &chatRun{cfg: cfg, errors: map[string]int64{}}
	rep := ChatReport{Clients: cfg.Clients}
	logf := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format, a...)
		}
	}

	rooms := make([]string, cfg.Rooms)
	for i := range rooms {
		out, err := api.CreateRoom(ctx, &ivschat.CreateRoomInput{Name: aws.String(fmt.Sprintf("bench-%d", i)),
			MaximumMessageRatePerSecond: aws.Int32(100), Tags: map[string]string{"glasscast": "bench"}})
		if err != nil {
			return rep, fmt.Errorf("create room: %w", err)
		}
		rooms[i] = *out.Arn
	}
	if cfg.ServerPID > 0 {
		rep.ServerRSSBefore = rss(cfg.ServerPID)
	}

	// Connect: mint a token per client through the API, then dial, a few at a time.
	clients := make([]*chatClient, cfg.Clients)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	pace := time.NewTicker(time.Duration(float64(time.Second) / cfg.ConnectRate))
	tick := make(chan struct{})
	go func() {
		defer close(tick)
		for i := 0; i < cfg.Clients; i++ {
			select {
			case <-pace.C:
				tick <- struct{}{}
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tick {
				i := int(next.Add(1) - 1)
				room := rooms[i%cfg.Rooms]
				user := fmt.Sprintf("bench-%d", i)
				caps := []chattypes.ChatTokenCapability{}
				if i/cfg.Rooms < cfg.Senders {
					caps = append(caps, chattypes.ChatTokenCapabilitySendMessage)
				}
				tok, err := api.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String(user), Capabilities: caps})
				if err != nil {
					run.fail("token")
					continue
				}
				url, edge := cfg.URL, 0
				if cfg.URL2 != "" && (i/cfg.Rooms)%2 == 1 { // alternate within each room
					url, edge = cfg.URL2, 1
				}
				d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, Subprotocols: []string{*tok.Token}, ReadBufferSize: 1024, WriteBufferSize: 1024}
				conn, _, err := d.DialContext(ctx, url, nil)
				if err != nil {
					run.fail("dial")
					continue
				}
				c := &chatClient{run: run, conn: conn, edge: edge, user: user}
				c.alive.Store(true)
				clients[i] = c
				go c.read()
			}
		}()
	}
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				logf("connecting: %d/%d clients\n", next.Load(), cfg.Clients)
			}
		}
	}()
	wg.Wait()
	pace.Stop()
	close(progressDone)
	rep.ConnectTime = time.Since(start)
	var senders []*chatClient
	for i, c := range clients {
		if c != nil {
			rep.Connected++
			if i/cfg.Rooms < cfg.Senders {
				senders = append(senders, c)
			}
		}
	}
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.conn.Close()
			}
		}
	}()
	if cfg.ServerPID > 0 {
		time.Sleep(time.Second)
		rep.ServerRSSConnected = rss(cfg.ServerPID)
	}
	logf("%d clients connected in %v; sending %.0f messages/s for %v\n", rep.Connected, rep.ConnectTime.Round(time.Millisecond), cfg.Rate, cfg.Duration)
	if len(senders) == 0 || cfg.Rate <= 0 {
		return rep, errors.New("no client could send")
	}

	// Send round-robin over the senders, which spreads the rate over the rooms.
	begin := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	sendTick := time.NewTicker(interval)
	report := time.NewTicker(time.Second)
	end := time.After(cfg.Duration)
	var lastDelivered int64
	i := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case <-sendTick.C:
			go senders[i%len(senders)].send()
			i++
		case <-report.C:
			d := run.delivered.Load()
			alive := 0
			for _, c := range clients {
				if c != nil && c.alive.Load() {
					alive++
				}
			}
			s := run.all.summary()
			logf("%5.0fs  clients %d  sent %d  delivered %d/s  p50 %v  p99 %v  errors %d\n", time.Since(begin).Seconds(), alive,
				run.sent.Load(), d-lastDelivered, s.P50, s.P99, run.errorCount())
			lastDelivered = d
		}
	}
	sendTick.Stop()
	report.Stop()
	rep.SendTime = time.Since(begin)
	time.Sleep(2 * time.Second) // let the last messages arrive
	rep.Elapsed = time.Since(begin)
	rep.Sent, rep.Delivered = run.sent.Load(), run.delivered.Load()
	rep.Latency, rep.Local, rep.Cross = run.all.summary(), run.local.summary(), run.cross.summary()
	if cfg.URL2 == "" {
		rep.Cross = latencySummary{}
	}
	run.errMu.Lock()
	rep.Errors = maps.Clone(run.errors)
	run.errMu.Unlock()
	for _, arn := range rooms {
		_, _ = api.DeleteRoom(context.Background(), &ivschat.DeleteRoomInput{Identifier: aws.String(arn)})
	}
	return rep, nil
}

func (r *chatRun) errorCount() int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	var n int64
	for _, v := range r.errors {
		n += v
	}
	return n
}

// rss reads a process's resident memory from /proc (Linux), 0 if unknown.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
