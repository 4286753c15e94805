#!/bin/sh
# Verify an XML message signed by the econsulat hub with xmlsec1 and openssl.
#
#   verify-xml.sh MESSAGE.xml CA_CERT_PEM CRL_PEM [NAMESPACE:LOCALNAME ...]
#
# 1. xmlsec1 checks every reference digest, the signature, the signer certificate's chain to our
#    CA and its validity dates. SOAP Body and wsu:Timestamp are declared as carrying Id attributes;
#    add NAMESPACE:LOCALNAME for any other signed header (e.g. http://x-road.eu/xsd/xroad.xsd:id).
# 2. For a SOAP message, the script checks there is exactly one Body and that its Id is one of the
#    signed references (xmlsec1 alone does not say *what* was signed: signature wrapping).
# 3. openssl checks the signer certificate against the CRL (xmlsec1 1.2 has no --crl-pem).
# Exit status 0 means all three passed. Tested with xmlsec1 1.2.37 and OpenSSL 3.
set -eu

MSG=$1
CA=$2
CRL=$3
shift 3
SOAP=http://schemas.xmlsoap.org/soap/envelope/
WSU=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

set -- --id-attr:Id "$SOAP:Body" --id-attr:Id "$WSU:Timestamp" \
    $(for element in "$@"; do printf -- '--id-attr:Id %s ' "$element"; done)
xmlsec1 --verify --trusted-pem "$CA" "$@" "$MSG"

# Flatten to one line so a start tag split over lines still matches.
tr '\n\r' '  ' < "$MSG" > "$WORK/flat.xml"
BODIES=$(grep -o "<[A-Za-z0-9_.-]*:\{0,1\}Body[ >/]" "$WORK/flat.xml" | wc -l)
if grep -q "Envelope" "$WORK/flat.xml" && [ "$BODIES" -ne 0 ]; then
    [ "$BODIES" -eq 1 ] || { echo "refused: $BODIES Body elements" >&2; exit 1; }
    BODY_ID=$(sed -n 's/.*<\([A-Za-z0-9_.-]*:\)\{0,1\}Body [^>]*Id="\([^"]*\)".*/\2/p' "$WORK/flat.xml")
    [ -n "$BODY_ID" ] || { echo "refused: the Body has no Id, it cannot be signed" >&2; exit 1; }
    grep -q "URI=\"#$BODY_ID\"" "$WORK/flat.xml" \
        || { echo "refused: the signature does not cover the Body" >&2; exit 1; }
    echo "Body #$BODY_ID is signed"
fi

{
    echo "-----BEGIN CERTIFICATE-----"
    sed -n 's/.*<\([A-Za-z0-9_.-]*:\)\{0,1\}X509Certificate>\([^<]*\)<.*/\2/p' "$WORK/flat.xml" \
        | tr -d ' ' | fold -w 64
    echo
    echo "-----END CERTIFICATE-----"
} > "$WORK/signer.pem"
openssl verify -crl_check -CAfile "$CA" -CRLfile "$CRL" "$WORK/signer.pem"
