#!/usr/bin/env python3
"""natsjwt.py - throwaway NATS operator-mode credentials for tests, without nsc.

Usage: natsjwt.py DIR

Writes into DIR an operator JWT (operator.jwt) and credentials files, and prints a nats-server
config fragment (operator, system account, MEMORY resolver preloaded with both accounts) on
stdout:
  user.creds         a user of the account (JetStream enabled, no limits): connects
  wrong-account.creds a user signed by an account the server does not know: refused
  wrong-seed.creds   the good user's JWT with another user's seed: refused (the nonce signature
                     does not match the JWT's subject)

Keys are nkeys (github.com/nats-io/nkeys, strkey.go): a prefix byte, the 32-byte ed25519 public key
or seed, CRC-16/XMODEM little-endian, base32 without padding; a seed carries two prefix bytes
(seed | type). JWTs follow github.com/nats-io/jwt v2 (claims.go): header {"typ":"JWT",
"alg":"ed25519-nkey"}, base64url without padding, signed by the issuer's ed25519 key over
"header.payload"; jti is the base32 SHA-512/256 of the claims with an empty jti.
"""
import base64
import hashlib
import json
import os
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX_SEED = 18 << 3
PREFIX_OPERATOR = 14 << 3
PREFIX_ACCOUNT = 0
PREFIX_USER = 20 << 3


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def b32(raw):
    return base64.b32encode(raw).decode().rstrip("=")


def with_crc(raw):
    return raw + crc16(raw).to_bytes(2, "little")


class NKey:
    def __init__(self, prefix):
        self.seed_bytes = os.urandom(32)
        self.key = Ed25519PrivateKey.from_private_bytes(self.seed_bytes)
        pub = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = b32(with_crc(bytes([prefix]) + pub))
        seed_prefix = bytes([PREFIX_SEED | (prefix >> 5), (prefix & 31) << 3])
        self.seed = b32(with_crc(seed_prefix + self.seed_bytes))


def b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwt(issuer, subject, name, nats):
    header = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    claims = {"jti": "", "iat": int(time.time()), "iss": issuer.public, "name": name,
              "sub": subject.public, "nats": nats}
    digest = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode())
    claims["jti"] = b32(digest.digest())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = issuer.key.sign(("%s.%s" % (header, payload)).encode())
    return "%s.%s.%s" % (header, payload, b64url(signature))


def creds(user_jwt, seed):
    return ("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
            "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n"
            % (user_jwt, seed))


def user_jwt(account, user, name):
    return jwt(account, user, name, {"pub": {}, "sub": {}, "subs": -1, "data": -1,
                                     "payload": -1, "type": "user", "version": 2})


def account_jwt(operator, account, name):
    limits = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
              "wildcards": True, "conn": -1, "leaf": -1, "mem_storage": -1,
              "disk_storage": -1, "streams": -1, "consumer": -1}
    return jwt(operator, account, name, {"limits": limits, "type": "account", "version": 2})


def main():
    out = sys.argv[1]
    operator = NKey(PREFIX_OPERATOR)
    system = NKey(PREFIX_ACCOUNT)  # JetStream needs a system account in operator mode
    account = NKey(PREFIX_ACCOUNT)
    stranger = NKey(PREFIX_ACCOUNT)  # never given to the server
    user = NKey(PREFIX_USER)
    other = NKey(PREFIX_USER)
    files = {
        "operator.jwt": jwt(operator, operator, "itest",
                            {"system_account": system.public, "type": "operator",
                             "version": 2}),
        "user.creds": creds(user_jwt(account, user, "ingestd"), user.seed),
        "wrong-account.creds": creds(user_jwt(stranger, other, "stranger"), other.seed),
        "wrong-seed.creds": creds(user_jwt(account, user, "ingestd"), other.seed),
    }
    for name, text in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)
    print('operator: "%s"' % os.path.join(out, "operator.jwt"))
    print("system_account: %s" % system.public)
    print("resolver: MEMORY")
    print("resolver_preload: {")
    print('  %s: "%s"' % (system.public, jwt(operator, system, "SYS",
                                             {"type": "account", "version": 2})))
    print('  %s: "%s"' % (account.public, account_jwt(operator, account, "ingest")))
    print("}")


if __name__ == "__main__":
    main()
