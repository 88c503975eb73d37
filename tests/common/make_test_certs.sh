#!/usr/bin/env bash
# make_test_certs.sh DIR: a throwaway PKI for the TLS tests and benchmarks, made fresh at
# test time with the openssl tool (no key is ever committed). EC P-256 keys: quick to make.
#   ca.pem                the test CA (trusted by the tests)
#   server.pem/.key       CN=localhost, SAN localhost, 127.0.0.1, ::1, signed by the CA
#   client.pem/.key       a client certificate signed by the CA (client auth)
#   expired.pem/.key      like server.pem, but valid only in January 2020
#   wronghost.pem/.key    signed by the CA for other.example only
#   untrusted.pem/.key    localhost, signed by a CA nobody trusts (rogue-ca.pem)
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # ca NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days 30 -subj "$2" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
ca ca "/CN=weft test CA"
ca rogue-ca "/CN=weft rogue CA"

# leaf NAME CA SAN [EKU]: a key and a certificate for it signed by CA, valid for 30 days.
leaf() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=${5:-localhost}" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' "$3" "${4:-serverAuth}" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 30 -sha256 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf server ca "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf client ca "DNS:weft-client" clientAuth weft-client
leaf wronghost ca "DNS:other.example" serverAuth other.example
leaf untrusted rogue-ca "DNS:localhost,IP:127.0.0.1,IP:::1"

# An expired certificate needs dates in the past, which only `openssl ca` can set here.
mkdir -p expired-ca
: >expired-ca/index.txt
cat >expired-ca/ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = $dir/expired-ca
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
CNF
echo 01 >expired-ca/serial
key expired.key
openssl req -new -key expired.key -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" -out expired.csr
openssl ca -batch -config expired-ca/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
  -startdate 20200101000000Z -enddate 20200201000000Z -out expired.pem -notext 2>/dev/null
rm -rf expired.csr expired-ca
