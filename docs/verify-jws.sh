#!/bin/sh
# Verify an ES256 compact JWS from the econsulat hub with nothing but openssl and a POSIX shell.
#
#   verify-jws.sh TOKEN_FILE SIGNER_CERT_PEM [PAYLOAD_FILE]
#
# TOKEN_FILE holds the compact JWS (header.payload.signature). For a detached JWS
# (header..signature) give the payload bytes in PAYLOAD_FILE. Checks that the header's kid is the
# certificate's SHA-256 thumbprint, then the signature; prints the header and payload on success.
# Exit status 0 means verified. The certificate itself (chain to the hub CA, dates, CRL) is checked
# with `openssl verify -crl_check -CAfile ca.cert.pem -CRLfile crl.pem SIGNER_CERT_PEM`.
set -eu

TOKEN=$(tr -d ' \r\n' < "$1")
CERT=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

b64url_decode() {
    s=$(printf '%s' "$1" | tr '_-' '/+')
    while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done
    printf '%s' "$s" | base64 -d
}
b64url_encode_file() { base64 < "$1" | tr -d '\n=' | tr '/+' '_-'; }

H=${TOKEN%%.*}
S=${TOKEN##*.}
P=${TOKEN#*.}
P=${P%.*}
if [ -n "${3:-}" ]; then
    [ -z "$P" ] || { echo "token is not detached but a payload file was given" >&2; exit 2; }
    P=$(b64url_encode_file "$3")
fi

HEADER=$(b64url_decode "$H")
case "$HEADER" in
    *'"alg":"ES256"'*) ;;
    *) echo "refused: alg is not ES256" >&2; exit 1 ;;
esac
KID=$(openssl x509 -in "$CERT" -outform DER | openssl dgst -sha256 -binary | base64 | tr -d '=\n' | tr '/+' '_-')
case "$HEADER" in
    *"\"kid\":\"$KID\""*) ;;
    *) echo "refused: kid is not the thumbprint of $CERT" >&2; exit 1 ;;
esac

printf '%s.%s' "$H" "$P" > "$WORK/signing-input"
HEX=$(b64url_decode "$S" | od -An -v -tx1 | tr -d ' \n')
[ ${#HEX} -eq 128 ] || { echo "refused: not an ES256 signature" >&2; exit 1; }
printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' \
    "$(echo "$HEX" | cut -c1-64)" "$(echo "$HEX" | cut -c65-128)" > "$WORK/sig.cnf"
openssl asn1parse -genconf "$WORK/sig.cnf" -out "$WORK/sig.der" -noout
openssl x509 -in "$CERT" -pubkey -noout > "$WORK/signer.pub"
openssl dgst -sha256 -verify "$WORK/signer.pub" -signature "$WORK/sig.der" "$WORK/signing-input"
printf '%s\n' "$HEADER"
[ -n "${3:-}" ] || { b64url_decode "$P"; echo; }
