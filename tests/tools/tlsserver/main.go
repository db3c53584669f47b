// tlsserver: an independent TLS server (Go crypto/tls, X25519MLKEM768 by
// default since Go 1.24, session tickets on) for qsplice's end-to-end
// tests of `qsplice loadgen`'s HTTPS client.
//
// It serves HTTPS on -addr with -cert/-key: every request gets a
// -body-bytes body (Content-Length, keep-alive), and one JSON line per
// request on stdout: TLS version, key-exchange group, whether the session
// resumed, the request path. "listening" is printed first, once the
// socket is bound. It exits by itself after -d seconds.
//
//	tlsserver -addr 10.10.2.11:8444 -cert leaf.pem -key leaf.key [-body-bytes 100] [-d 60]
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

type line struct {
	Version string `json:"version"`
	Group   string `json:"group"`
	Resumed bool   `json:"resumed"`
	Path    string `json:"path"`
}

func main() {
	addr := flag.String("addr", "", "host:port to listen on")
	certFile := flag.String("cert", "", "certificate chain (PEM)")
	keyFile := flag.String("key", "", "private key (PEM)")
	bodyBytes := flag.Int("body-bytes", 100, "response body size")
	secs := flag.Float64("d", 60, "exit after this many seconds")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsserver:", err)
		os.Exit(2)
	}
	body := bytes.Repeat([]byte{'g'}, *bodyBytes)
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := r.TLS
		l := line{Path: r.URL.Path}
		if st != nil {
			l.Version = tls.VersionName(st.Version)
			l.Group = st.CurveID.String()
			l.Resumed = st.DidResume
		}
		mu.Lock()
		_ = enc.Encode(l)
		mu.Unlock()
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsserver:", err)
		os.Exit(2)
	}
	srv := &http.Server{
		Handler:   handler,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		// HTTP/1.1 only: the load generator speaks HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	time.AfterFunc(time.Duration(*secs*float64(time.Second)), func() { os.Exit(0) })
	fmt.Println("listening")
	if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "tlsserver:", err)
		os.Exit(1)
	}
}
