"""Precision: public keys and placeholders stay untouched, private halves do not (issue 21).

A scanner that redacts a public key or a documentation placeholder destroys what a session
needs to be read later (which recipient a file was encrypted to, which host key was
trusted) and teaches its users to ignore it.  Each benign text here must come out byte for
byte, as text and inside a tree, on every engine; each private half next to it must be
redacted.  All keys are made up (random characters in each format's alphabet).
"""

from __future__ import annotations

import json
import random
import string
from typing import cast

import pytest

from sessionseal._sanitize import JSONValue, Sanitizer

_R = random.Random(21)
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B64 = string.ascii_letters + string.digits + "+/"
_B64URL = string.ascii_letters + string.digits + "-_"


def _rnd(alphabet: str, n: int) -> str:
    return "".join(_R.choice(alphabet) for _ in range(n))


AGE_RECIPIENT = "age1" + _rnd(_BECH32, 58)
NPUB = "npub1" + _rnd(_BECH32, 58)
XPUB = "xpub6CUGRUonZSQ4" + _rnd(_B58, 95)
WG_PUBLIC = _rnd(_B64, 43) + "="
JWK_X, JWK_Y, JWK_N = _rnd(_B64URL, 43), _rnd(_B64URL, 43), _rnd(_B64URL, 342)

BENIGN: dict[str, str] = {
    "age recipient": (
        f"age -r {AGE_RECIPIENT} -o secrets.age secrets.txt\n# public key: {AGE_RECIPIENT}\n"
        f"recipients:\n  - {AGE_RECIPIENT}"
    ),
    "ssh public key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + _rnd(_B64, 43) + " dev@laptop",
    "authorized_keys with options": (
        'command="/usr/local/bin/backup-only",no-port-forwarding,no-X11-forwarding,no-pty ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ'
        + _rnd(_B64, 200)
        + " backup@host\n"
        + 'from="10.0.0.0/8",restrict ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB'
        + _rnd(_B64, 87)
        + "= ops"
    ),
    "known_hosts": (
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + _rnd(_B64, 43) + "\n"
        "|1|"
        + _rnd(_B64, 27)
        + "=|"
        + _rnd(_B64, 27)
        + "= ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB"
        + _rnd(_B64, 87)
        + "=\n[git.corp.internal]:2222 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ"
        + _rnd(_B64, 120)
    ),
    "PGP public key block": (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ"
        + _rnd(_B64, 59)
        + "\n"
        + _rnd(_B64, 64)
        + "\n="
        + _rnd(_B64, 4)
        + "\n-----END PGP PUBLIC KEY BLOCK-----"
    ),
    "X.509 certificate": (
        "-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgII"
        + _rnd(_B64, 44)
        + "\n"
        + _rnd(_B64, 64)
        + "\n-----END CERTIFICATE-----"
    ),
    "JWKS public keys": json.dumps(
        {
            "keys": [
                {"kty": "RSA", "use": "sig", "kid": "2024-05", "alg": "RS256", "n": JWK_N, "e": "AQAB"},
                {"kty": "EC", "crv": "P-256", "kid": "ec-1", "x": JWK_X, "y": JWK_Y},
            ]
        }
    ),
    "WireGuard peer": f"[Peer]\nPublicKey = {WG_PUBLIC}\nAllowedIPs = 10.0.0.0/24\nEndpoint = vpn.corp.internal:51820",
    "minisign public key": "untrusted comment: minisign public key 8A2C1E4F7B3D9A05\nRWQ" + _rnd(_B64, 53),
    "signify public key": "untrusted comment: signify public key\nRWR" + _rnd(_B64, 53),
    "Nostr npub": f"follow me on nostr: {NPUB}\nNOSTR_PUBLIC_KEY={NPUB}",
    "Ethereum address": (
        "send to 0x"
        + _rnd("0123456789abcdefABCDEF", 40)
        + " (my wallet)\nWALLET_ADDRESS=0x"
        + _rnd("0123456789abcdef", 40)
    ),
    "Bitcoin xpub": f"watch-only wallet: {XPUB}\nXPUB={XPUB}",
    "placeholders": (
        "API_KEY=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
        "SECRET=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
        "TOKEN=11111111111111111111111111111111\n"
        "PASSWORD=00000000000000000000\n"
        "api_key: <your-key>\n"
        "OPENAI_API_KEY=YOUR_API_KEY_HERE\n"
        "STRIPE_SECRET_KEY=sk_live_XXXXXXXXXXXXXXXXXXXXXXXX\n"
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
        "AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX\n"
        "DB_PASSWORD=${SECRET}\n"
        "password: {{ .Values.secret }}\n"
        "password = %(password)s\n"
        'export API_TOKEN="$API_TOKEN"\n'
        'client_secret: "{{ client_secret }}"\n'
        'api_key = os.environ["API_KEY"]\n'
        "SECRET_KEY=<secret-key>\n"
        'token: "********"\n'
        "AUTH_TOKEN=your-auth-token-here\n"
        "E2B_API_KEY=e2b_1111111111111111111111111111111111111111\n"
        "HEYGEN_API_KEY=sk_V2_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    ),
}

PRIVATE: dict[str, tuple[str, str, str]] = {
    # name: (text, the secret, the rule that must find it)
    "age secret key": (
        f"# public key: {AGE_RECIPIENT}\n{(s := 'AGE-SECRET-KEY-1' + _rnd(_BECH32, 58).upper())}",
        s,
        "age-secret-key",
    ),
    "Nostr nsec": (f"nostr: {(s := 'nsec1' + _rnd(_BECH32, 58))}", s, "nostr-private-key"),
    "Bitcoin xprv": (f"master key: {(s := 'xprv9s21ZrQH143K' + _rnd(_B58, 95))}", s, "bitcoin-extended-private-key"),
    "JWK private member": (
        json.dumps({"kty": "EC", "crv": "P-256", "x": JWK_X, "y": JWK_Y, "d": (s := _rnd(_B64URL, 43))}),
        s,
        "jwk-private-key",
    ),
    "WireGuard private key": (
        f"[Interface]\nPrivateKey = {(s := _rnd(_B64, 43) + '=')}\nAddress = 10.0.0.2/32",
        s,
        "wireguard-private-key",
    ),
    "minisign secret key": (
        f"untrusted comment: minisign encrypted secret key\n{(s := 'RWRTY0Iy' + _rnd(_B64, 150))}",
        s,
        "minisign-secret-key",
    ),
    "Hardhat account key": (
        f"networks: {{ sepolia: {{ url: RPC_URL, accounts: ['{(s := '0x' + _rnd('0123456789abcdef', 64))}'] }} }}",
        s,
        "ethereum-private-key-accounts",
    ),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_public_keys_and_placeholders_stay_untouched(san: Sanitizer, name: str) -> None:
    text = BENIGN[name]
    result = san.sanitize_text(text)
    assert result.text == text, f"{name}: {result.counts}"
    assert result.counts == {}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_public_keys_and_placeholders_stay_untouched_in_a_tree(san: Sanitizer, name: str) -> None:
    text = BENIGN[name]
    doc = cast("JSONValue", {"tool": "cat", "output": text, "lines": text.split("\n")})
    if name == "JWKS public keys":
        doc = cast("JSONValue", json.loads(text))
    assert san.sanitize_tree(doc) == (doc, {})


@pytest.mark.parametrize("name", sorted(PRIVATE))
def test_private_halves_are_redacted(san: Sanitizer, name: str) -> None:
    text, secret, rule_id = PRIVATE[name]
    result = san.sanitize_text(text)
    assert secret not in result.text
    assert result.counts.get(rule_id, 0) >= 1, result.counts
    # The public half next to it is kept.
    for public in (AGE_RECIPIENT, JWK_X, JWK_Y):
        if public in text:
            assert public in result.text


def test_a_private_jwk_stored_as_a_tree_loses_its_private_members(san: Sanitizer) -> None:
    # A JWK's members have one-letter names; the key type says which of them are private.
    rsa = {"kty": "RSA", "n": JWK_N, "e": "AQAB"} | {m: _rnd(_B64URL, 171) for m in ("d", "p", "q", "dp", "dq", "qi")}
    oct_key = {"kty": "oct", "k": _rnd(_B64URL, 43), "alg": "HS256"}
    doc = cast("JSONValue", {"keys": [rsa, oct_key], "d": "not a key: no kty here"})
    clean, counts = san.sanitize_tree(doc)
    assert clean == {
        "keys": [
            {"kty": "RSA", "n": JWK_N, "e": "AQAB"}
            | dict.fromkeys(("d", "p", "q", "dp", "dq", "qi"), "[REDACTED:secret-named-value]"),
            {"kty": "oct", "k": "[REDACTED:secret-named-value]", "alg": "HS256"},
        ],
        "d": "not a key: no kty here",
    }
    assert counts == {"secret-named-value": 7}
