package etcd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
)

// certs are the files of a test certificate authority and what it signs.
type certs struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// writeCerts creates in dir a certificate authority, a server certificate
// for 127.0.0.1 and a client certificate, both signed by it.
func writeCerts(t *testing.T, dir string) certs {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kalamdb etcd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (cert, key string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
			NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	c := certs{ca: write("ca.pem", "CERTIFICATE", caDER)}
	c.serverCert, c.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	c.clientCert, c.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return c
}

// TestTLS: against members that serve clients over TLS and ask them for a
// certificate, the backend works with tls_ca_file, tls_cert_file and
// tls_key_file; without the client certificate, or without the authority
// that signs the members' certificates, it cannot connect.
func TestTLS(t *testing.T) {
	files := writeCerts(t, t.TempDir())
	c := etcdtest.StartT(t, etcdtest.Options{
		Members: 1, TLSCertFile: files.serverCert, TLSKeyFile: files.serverKey, TLSClientCAFile: files.ca,
	})
	cfg := testConfig(c)
	require.Regexp(t, "^https://", cfg.Endpoints[0])
	cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = files.ca, files.clientCert, files.clientKey
	ctx := context.Background()
	b, err := OpenWith(ctx, cfg)
	require.NoError(t, err)
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	got, err := b.Get(ctx, p, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v", string(got))

	for name, edit := range map[string]func(*Config){
		"no client certificate": func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "", "" },
		"the system roots":      func(c *Config) { c.TLSCAFile = "" },
	} {
		bad := cfg
		edit(&bad)
		bad.DialTimeout, bad.RequestTimeout = Duration(time.Second), Duration(time.Second)
		_, err := OpenWith(ctx, bad)
		require.Error(t, err, name)
	}
}
