// tlsclient: a second, independent TLS client for qsplice's end-to-end
// tests (Go crypto/tls: X25519MLKEM768 by default since Go 1.24).
//
// It makes -n HTTPS GET requests to -addr (one connection each, sharing a
// session cache so later connections try to resume) and prints one JSON
// line per connection: version, cipher suite, key-exchange group, whether
// the session resumed, the HTTP status and the body length.
//
//	go run . -addr 10.10.1.1:443 -name vip.test -ca ca.pem -n 2 [-groups X25519]
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type result struct {
	Version string `json:"version"`
	Suite   string `json:"suite"`
	Group   string `json:"group"`
	Resumed bool   `json:"resumed"`
	Status  int    `json:"status"`
	Bytes   int64  `json:"bytes"`
	Backend string `json:"backend"`
	Error   string `json:"error,omitempty"`
}

func main() {
	addr := flag.String("addr", "", "host:port to connect to")
	name := flag.String("name", "vip.test", "server name (SNI, verification)")
	caFile := flag.String("ca", "", "CA certificate (PEM)")
	n := flag.Int("n", 1, "connections")
	groups := flag.String("groups", "", "comma-separated groups (X25519MLKEM768, X25519, P256, ...); empty: Go's default")
	path := flag.String("path", "/", "request path")
	maxVersion := flag.String("max-version", "1.3", "1.2 or 1.3")
	conc := flag.Int("c", 0, "load mode: concurrent clients (0: -n sequential connections)")
	secs := flag.Float64("d", 5, "load mode: seconds")
	resume := flag.Bool("resume", false, "load mode: resume sessions (tickets) after each client's first handshake")
	renew := flag.Int("renew", 0, "load mode with -resume: each client starts a new session every N connections (0: never)")
	srcs := flag.String("src", "", "load mode: comma-separated local addresses, client i binds the i-th (mod count)")
	flag.Parse()

	pool := x509.NewCertPool()
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		pool.AppendCertsFromPEM(pem)
	}
	cfg := &tls.Config{
		ServerName:         *name,
		RootCAs:            pool,
		ClientSessionCache: tls.NewLRUClientSessionCache(16),
		NextProtos:         []string{"http/1.1"},
	}
	if *maxVersion == "1.2" {
		cfg.MaxVersion = tls.VersionTLS12
	}
	if *groups != "" {
		for _, g := range strings.Split(*groups, ",") {
			id, ok := map[string]tls.CurveID{
				"X25519MLKEM768": tls.X25519MLKEM768,
				"X25519":         tls.X25519,
				"P256":           tls.CurveP256,
				"P384":           tls.CurveP384,
			}[g]
			if !ok {
				fmt.Fprintln(os.Stderr, "unknown group", g)
				os.Exit(2)
			}
			cfg.CurvePreferences = append(cfg.CurvePreferences, id)
		}
	}
	if *conc > 0 {
		var local []string
		if *srcs != "" {
			local = strings.Split(*srcs, ",")
		}
		load(*addr, *path, cfg, *conc, time.Duration(*secs*float64(time.Second)), *resume, *renew, local)
		return
	}
	failed := false
	for i := 0; i < *n; i++ {
		r := once(*addr, *path, cfg)
		if r.Error != "" {
			failed = true
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	if failed {
		os.Exit(1)
	}
}

func once(addr, path string, cfg *tls.Config) (r result) {
	return onceFrom(addr, path, cfg, "")
}

func onceFrom(addr, path string, cfg *tls.Config, src string) (r result) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		r.Error = err.Error()
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	st := c.ConnectionState()
	r.Version = tls.VersionName(st.Version)
	r.Suite = tls.CipherSuiteName(st.CipherSuite)
	r.Group = st.CurveID.String()
	r.Resumed = st.DidResume
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, cfg.ServerName)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		r.Error = err.Error()
		return
	}
	r.Status = resp.StatusCode
	r.Backend = resp.Header.Get("X-Backend")
	r.Bytes, err = io.Copy(io.Discard, resp.Body)
	if err != nil {
		r.Error = err.Error()
	}
	return
}

// load runs c clients for d: each loops connect (TLS handshake) + GET +
// close, and prints one JSON summary: connections/s, errors, resumed,
// groups, latency percentiles of connect+request, and per backend (its
// X-Backend header) the new sessions (full handshakes) and resumptions.
func load(addr, path string, base *tls.Config, c int, d time.Duration, resume bool, renew int, local []string) {
	type stat struct {
		ok, errs, resumed int
		attempts          int
		groups            map[string]int
		fresh, again      map[string]int
		lat               []float64
		lastErr           string
	}
	stats := make([]stat, c)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < c; i++ {
		wg.Add(1)
		src := ""
		if len(local) > 0 {
			src = local[i%len(local)]
		}
		go func(st *stat, src string) {
			defer wg.Done()
			cfg := base.Clone()
			if resume {
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			} else {
				cfg.ClientSessionCache = nil
				cfg.SessionTicketsDisabled = true
			}
			st.groups = map[string]int{}
			st.fresh = map[string]int{}
			st.again = map[string]int{}
			for n := 0; time.Now().Before(deadline); n++ {
				if resume && renew > 0 && n%renew == 0 {
					cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
				}
				offered := resume && ((renew == 0 && n > 0) || (renew > 0 && n%renew != 0))
				t := time.Now()
				r := onceFrom(addr, path, cfg, src)
				if r.Error != "" || r.Status != 200 {
					st.errs++
					st.lastErr = r.Error
					time.Sleep(10 * time.Millisecond)
					continue
				}
				st.ok++
				if offered {
					st.attempts++
				}
				st.lat = append(st.lat, float64(time.Since(t).Microseconds())/1000)
				st.groups[r.Group]++
				if r.Resumed {
					st.resumed++
					st.again[r.Backend]++
				} else {
					st.fresh[r.Backend]++
				}
			}
		}(&stats[i], src)
	}
	wg.Wait()
	var ok, errs, resumed, attempts int
	groups := map[string]int{}
	fresh := map[string]int{}
	again := map[string]int{}
	var lat []float64
	lastErr := ""
	for _, st := range stats {
		ok += st.ok
		errs += st.errs
		resumed += st.resumed
		attempts += st.attempts
		for g, k := range st.groups {
			groups[g] += k
		}
		for b, k := range st.fresh {
			fresh[b] += k
		}
		for b, k := range st.again {
			again[b] += k
		}
		lat = append(lat, st.lat...)
		if st.lastErr != "" {
			lastErr = st.lastErr
		}
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	out := map[string]any{
		"conns": ok, "per_s": float64(ok) / d.Seconds(), "errors": errs, "resumed": resumed, "attempts": attempts,
		"groups": groups, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "last_error": lastErr,
		"new_by_backend": fresh, "resumed_by_backend": again,
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
