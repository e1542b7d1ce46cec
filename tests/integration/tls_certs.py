"""A throwaway PKI for the TLS tests, made with the `openssl` command line tool (EC P-256 keys,
so it takes a few tens of milliseconds).

    pki = make_pki(tmpdir)                    # CA, server cert, client cert "alice", ...
    pki.client("bob")                         # another client cert from the same CA
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    ctx.load_cert_chain(pki.client_cert, pki.client_key)

Everything is PEM. Keys are unencrypted PKCS#8. The server certificate is valid for
127.0.0.1, ::1 and localhost (subjectAltName IP and DNS entries, CN=localhost).
"""

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field

CURVE = "P-256"
DAYS = 30


def _openssl(*args, cwd=None):
    """Runs `openssl args...`; raises RuntimeError with openssl's stderr on failure."""
    p = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({p.returncode}): "
                           f"{p.stderr.decode(errors='replace').strip()}")
    return p.stdout


def _serial():
    return "0x" + secrets.token_hex(8)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


_SERVER_EXT = ("basicConstraints=critical,CA:FALSE\n"
               "keyUsage=critical,digitalSignature\n"
               "extendedKeyUsage=serverAuth\n"
               "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
               "authorityKeyIdentifier=keyid\n")
_CLIENT_EXT = ("basicConstraints=critical,CA:FALSE\n"
               "keyUsage=critical,digitalSignature\n"
               "extendedKeyUsage=clientAuth\n"
               "authorityKeyIdentifier=keyid\n")


def make_ca(directory, name, cn):
    """A self-signed CA: returns (cert path, key path) = <dir>/<name>.crt, <dir>/<name>.key."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}",
             "-nodes", "-keyout", key, "-out", cert, "-subj", f"/CN={cn}",
             "-days", str(DAYS), "-set_serial", _serial(),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def _csr(directory, name, cn):
    key = os.path.join(directory, f"{name}.key")
    csr = os.path.join(directory, f"{name}.csr")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}",
             "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
    return csr, key


def make_leaf(directory, name, cn, ca_cert, ca_key, server=False):
    """A certificate signed by (ca_cert, ca_key), valid from now for DAYS days: a server
    certificate (serverAuth, SAN 127.0.0.1/::1/localhost) or a client one (clientAuth).
    Returns (cert path, key path) = <dir>/<name>.crt, <dir>/<name>.key."""
    csr, key = _csr(directory, name, cn)
    cert = os.path.join(directory, f"{name}.crt")
    ext = _write(os.path.join(directory, f"{name}.ext"), _SERVER_EXT if server else _CLIENT_EXT)
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", _serial(), "-days", str(DAYS), "-sha256",
             "-extfile", ext, "-out", cert)
    os.remove(ext)
    os.remove(csr)
    return cert, key


def make_dated_leaf(directory, name, cn, ca_cert, ca_key, start, end):
    """A client certificate with an explicit validity window (UTC, "YYYYMMDDHHMMSSZ"), e.g. an
    expired one or one not valid yet. `openssl x509` can't set notBefore in OpenSSL 3.0, so this
    goes through `openssl ca` with a minimal config and database (removed afterwards)."""
    csr, key = _csr(directory, name, cn)
    cert = os.path.join(directory, f"{name}.crt")
    db = os.path.join(directory, f"{name}-ca")
    os.makedirs(db, exist_ok=True)
    _write(os.path.join(db, "index.txt"), "")
    _write(os.path.join(db, "serial"), secrets.token_hex(8).upper() + "\n")
    conf = _write(os.path.join(db, "ca.cnf"), f"""\
[ ca ]
default_ca = testca
[ testca ]
dir = {db}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
[ client_ext ]
{_CLIENT_EXT}""")
    _openssl("ca", "-batch", "-notext", "-config", conf, "-cert", ca_cert, "-keyfile", ca_key,
             "-in", csr, "-out", cert, "-startdate", start, "-enddate", end,
             "-extensions", "client_ext")
    os.remove(csr)
    shutil.rmtree(db, ignore_errors=True)
    return cert, key


@dataclass
class Pki:
    """Paths of a test PKI made by make_pki()."""
    directory: str
    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str
    client_cn: str
    client_cert: str
    client_key: str
    # A second CA unrelated to the first: trusting it must fail to verify the server, and a
    # client certificate it signed (same CN as the good client) must be refused by the broker.
    other_ca_cert: str
    other_ca_key: str
    other_client_cert: str
    other_client_key: str
    # Client certificates signed by the good CA (CN = client_cn) outside their validity window.
    expired_client_cert: str
    expired_client_key: str
    future_client_cert: str
    future_client_key: str
    _extra: dict = field(default_factory=dict, repr=False)

    def client(self, cn):
        """Another client certificate from the good CA with the given CN: (cert, key)."""
        if cn not in self._extra:
            name = "client-" + "".join(ch if ch.isalnum() else "_" for ch in cn) \
                + f"-{len(self._extra)}"
            self._extra[cn] = make_leaf(self.directory, name, cn, self.ca_cert, self.ca_key)
        return self._extra[cn]


def make_pki(directory, client_cn="alice"):
    """Creates the whole PKI in `directory` (which must exist) and returns a Pki."""
    directory = os.path.abspath(directory)
    ca_cert, ca_key = make_ca(directory, "ca", "Starling Test CA")
    server_cert, server_key = make_leaf(directory, "server", "localhost", ca_cert, ca_key,
                                        server=True)
    client_cert, client_key = make_leaf(directory, "client", client_cn, ca_cert, ca_key)
    other_ca_cert, other_ca_key = make_ca(directory, "other-ca", "Unrelated Test CA")
    other_client_cert, other_client_key = make_leaf(directory, "other-client", client_cn,
                                                    other_ca_cert, other_ca_key)
    expired = make_dated_leaf(directory, "expired-client", client_cn, ca_cert, ca_key,
                              "20200101000000Z", "20200201000000Z")
    future = make_dated_leaf(directory, "future-client", client_cn, ca_cert, ca_key,
                             "20991201000000Z", "20991231000000Z")
    return Pki(directory=directory, ca_cert=ca_cert, ca_key=ca_key,
               server_cert=server_cert, server_key=server_key,
               client_cn=client_cn, client_cert=client_cert, client_key=client_key,
               other_ca_cert=other_ca_cert, other_ca_key=other_ca_key,
               other_client_cert=other_client_cert, other_client_key=other_client_key,
               expired_client_cert=expired[0], expired_client_key=expired[1],
               future_client_cert=future[0], future_client_key=future[1])


if __name__ == "__main__":
    import sys
    import tempfile
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="starling-pki-")
    print(make_pki(d))
