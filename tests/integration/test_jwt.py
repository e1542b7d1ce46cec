"""[auth.jwt]: the CONNECT's password carries a JSON Web Token. Tokens are made here with PyJWT
(python3-jwt) and keys with python3-cryptography: HS256 with the config's secret, RS256 with
its public key file, ES256 from a JWKS served by the harness's HookService (with rotation);
expired and not-yet-valid tokens, a bad signature, a password that is no token, the user name
and the ACL rules the claims carry (%u, %c), and the 0xA0 DISCONNECT when a connected
client's token expires.
"""

import json
import os
import tempfile
import time
import unittest

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness import BrokerTestCase, metric, unique, wait_until
from hook_service import HookService
from mqtt_raw import DISCONNECT, PUBACK, PUBLISH, RawClient

RC_SUCCESS = 0x00
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_BAD_USERNAME_OR_PASSWORD = 0x86
RC_NOT_AUTHORIZED = 0x87
RC_MAXIMUM_CONNECT_TIME = 0xA0

SECRET = "a-shared-secret-of-enough-length-for-hs256"


def ec_jwk(private_key, kid):
    """The public JWK of a P-256 key (RFC 7518 6.2)."""
    numbers = private_key.public_key().public_numbers()
    b64 = lambda n: jwt.utils.base64url_encode(n.to_bytes(32, "big")).decode()
    return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(numbers.x), "y": b64(numbers.y)}


def rsa_jwk(private_key, kid):
    numbers = private_key.public_key().public_numbers()
    b64 = lambda n: jwt.utils.base64url_encode(
        n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(numbers.n),
            "e": b64(numbers.e)}


class JwtTest(BrokerTestCase):
    broker_scope = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.ec_old = ec.generate_private_key(ec.SECP256R1())
        cls.ec_new = ec.generate_private_key(ec.SECP256R1())
        cls.rsa_jwks_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def setUp(self):
        super().setUp()
        self.service = HookService()
        self.addCleanup(self.service.close)
        self.service.jwks = {"keys": [ec_jwk(self.ec_old, "old"),
                                      rsa_jwk(self.rsa_jwks_key, "rsa-1")]}
        tmp = tempfile.mkdtemp(prefix="jwt-")
        self.addCleanup(lambda: [os.remove(os.path.join(tmp, f)) for f in os.listdir(tmp)]
                        and os.rmdir(tmp))
        self.pem = os.path.join(tmp, "issuer.pem")
        with open(self.pem, "wb") as f:
            f.write(self.rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.broker = self.new_broker(http=True, config_text=f"""
[auth.jwt]
secret = "{SECRET}"
public_key_file = "{self.pem}"
jwks_url = "{self.service.url('/jwks')}"
jwks_refresh_s = 1
""")
        self.port, self.http_port = self.broker.port, self.broker.http_port

    def token(self, alg="HS256", key=None, kid=None, lifetime=300, **claims):
        now = int(time.time())
        payload = {"sub": "alice", "iat": now, "exp": now + lifetime, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        if key is None:
            key = {"HS256": SECRET, "RS256": self.rsa_key}[alg]
        headers = {"kid": kid} if kid else None
        return jwt.encode(payload, key, algorithm=alg, headers=headers)

    def connect(self, password, client_id=None, username="ignored"):
        c = RawClient(self.port, 5)
        self.addCleanup(c.close)
        ack = c.connect(client_id or unique("j"), username=username, password=password)
        return c, ack.reason_code

    def test_each_algorithm(self):
        for alg, key, kid in [("HS256", None, None), ("RS256", None, None),
                              ("ES256", self.ec_old, "old"), ("RS256", self.rsa_jwks_key, "rsa-1")]:
            _, rc = self.connect(self.token(alg, key, kid))
            self.assertEqual(rc, RC_SUCCESS, (alg, kid))
        self.assertEqual(metric(self.http_port, "starling_auth_jwt_total", result="accepted"), 4)

    def test_expired_and_not_yet_valid(self):
        _, rc = self.connect(self.token(lifetime=-10))
        self.assertEqual(rc, RC_BAD_USERNAME_OR_PASSWORD)
        _, rc = self.connect(self.token(nbf=int(time.time()) + 600))
        self.assertEqual(rc, RC_BAD_USERNAME_OR_PASSWORD)
        self.assertEqual(metric(self.http_port, "starling_auth_jwt_total", result="expired"), 1)
        self.assertEqual(metric(self.http_port, "starling_auth_jwt_total",
                                result="not_yet_valid"), 1)

    def test_bad_signature_and_wrong_key(self):
        good = self.token()
        head, body, sig = good.split(".")
        tampered = ".".join([head, jwt.utils.base64url_encode(json.dumps(
            {"sub": "root", "exp": int(time.time()) + 300}).encode()).decode(), sig])
        _, rc = self.connect(tampered)
        self.assertEqual(rc, RC_BAD_USERNAME_OR_PASSWORD)
        _, rc = self.connect(self.token(key="another-secret-entirely-of-some-length"))
        self.assertEqual(rc, RC_BAD_USERNAME_OR_PASSWORD)
        self.assertEqual(metric(self.http_port, "starling_auth_jwt_total",
                                result="bad_signature"), 2)
        # alg "none" is never taken.
        none = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, None, algorithm="none")
        _, rc = self.connect(none)
        self.assertEqual(rc, RC_BAD_USERNAME_OR_PASSWORD)

    def test_a_password_that_is_no_token_goes_on_down_the_chain(self):
        # No password file: nothing else can vouch for the user name.
        _, rc = self.connect(b"just-a-password")
        self.assertEqual(rc, RC_NOT_AUTHORIZED)

    def test_claims_give_user_name_and_rules(self):
        # %u is the sub claim's "bob", not the CONNECT's user name "ignored".
        acl = {"pub": ["users/%u/#"], "sub": ["devices/%c/+"]}
        c, rc = self.connect(self.token(sub="bob", acl=acl), client_id="dev-9")
        self.assertEqual(rc, RC_SUCCESS)
        c.publish("users/bob/x", b"1", qos=1, packet_id=1)
        self.assertEqual(c.expect(PUBACK).reason_code, RC_NO_MATCHING_SUBSCRIBERS)
        c.publish("users/eve/x", b"1", qos=1, packet_id=2)
        self.assertEqual(c.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        self.assertEqual(c.subscribe(["devices/dev-9/cmd", "devices/dev-8/cmd"]).reason_codes,
                         [0, RC_NOT_AUTHORIZED])

    def test_expiry_disconnects_the_client(self):
        c, rc = self.connect(self.token(lifetime=2))
        self.assertEqual(rc, RC_SUCCESS)
        d = c.expect(DISCONNECT, timeout=15)
        self.assertEqual(d.reason_code, RC_MAXIMUM_CONNECT_TIME)
        self.assertEqual(metric(self.http_port, "starling_auth_jwt_expired_disconnects_total"), 1)

    def test_jwks_rotation(self):
        new_token = lambda: self.token("ES256", self.ec_new, "new")
        _, rc = self.connect(new_token())
        self.assertEqual(rc, RC_BAD_USERNAME_OR_PASSWORD)  # no such key yet
        self.service.jwks = {"keys": [ec_jwk(self.ec_new, "new")]}  # rotated: old key gone
        wait_until(lambda: self.connect(new_token())[1] == RC_SUCCESS, 20,
                   "the new key taken from the JWKS")
        wait_until(lambda: self.connect(self.token("ES256", self.ec_old, "old"))[1]
                   == RC_BAD_USERNAME_OR_PASSWORD, 20, "the old key dropped")
        self.assertGreaterEqual(metric(self.http_port, "starling_auth_jwks_refresh_total",
                                       result="ok"), 2)


if __name__ == "__main__":
    unittest.main()
