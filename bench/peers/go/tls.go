// The Go peer of weft's TLS echo server: crypto/tls over the same echo loop, with Go's
// defaults (TLS 1.2 and 1.3, session tickets on; the cipher suite is whatever the client
// limits it to: bench/echo_client and s_time offer AES-128-GCM only, so every server agrees).
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
)

func tlsEcho(certFile, keyFile, port string) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		panic(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		panic(err)
	}
	// The handshake runs on the connection's first Read, in its own goroutine.
	listener := tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}})
	fmt.Printf("listening %s (GOMAXPROCS %d, crypto/tls)\n", port, runtime.GOMAXPROCS(0))
	serveEcho(listener)
}
