package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// tlsFlags are the TLS flags. Connecting, -cacert replaces the system's
// roots; listening, it makes a client certificate signed by it required.
type tlsFlags struct {
	on         bool
	cacert     string
	cert, key  string
	insecure   bool
	servername string
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.on, "tls", false, "use TLS (with -l, needs -cert and -key)")
	fs.StringVar(&t.cacert, "cacert", "", "trust the CA certificates in PEM `FILE` (with -l: require client certificates signed by them)")
	fs.StringVar(&t.cert, "cert", "", "certificate chain in PEM `FILE`: the client's, or with -l the server's")
	fs.StringVar(&t.key, "key", "", "private key in PEM `FILE` for -cert")
	fs.BoolVar(&t.insecure, "insecure", false, "do not verify the server's certificate (prints a warning)")
	fs.StringVar(&t.servername, "servername", "", "server `NAME` to send and verify (default: the host of HOST:PORT)")
}

// check reports a usage error in the TLS flags.
func (t *tlsFlags) check(listen bool) error {
	switch {
	case !t.on && (t.cacert != "" || t.cert != "" || t.key != "" || t.insecure || t.servername != ""):
		return usagef("-cacert, -cert, -key, -insecure and -servername need -tls")
	case (t.cert == "") != (t.key == ""):
		return usagef("-cert and -key go together")
	case listen && t.on && t.cert == "":
		return usagef("-l with -tls needs -cert and -key")
	case listen && (t.insecure || t.servername != ""):
		return usagef("-insecure and -servername are for connecting, not -l")
	}
	return nil
}

// client returns the TLS configuration for connecting, or nil without -tls.
func (t *tlsFlags) client(log *logger) (*tls.Config, error) {
	if !t.on {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: t.servername, InsecureSkipVerify: t.insecure}
	if t.insecure {
		log.print("warning: -insecure: the server's certificate is not verified")
	}
	if t.cacert != "" {
		pool, err := loadPool(t.cacert)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if t.cert != "" {
		cert, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, fmt.Errorf("load -cert and -key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// server returns the TLS configuration for listening, or nil without -tls.
func (t *tlsFlags) server() (*tls.Config, error) {
	if !t.on {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("load -cert and -key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if t.cacert != "" {
		pool, err := loadPool(t.cacert)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load -cacert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("load -cacert: no PEM certificate in " + file)
	}
	return pool, nil
}
