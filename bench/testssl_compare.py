"""What testssl.sh sees of HAProxy 2.6 and of keepwarm with the same TLS lines
(Debian's default haproxy.cfg: ssl-default-bind-ciphers/-ciphersuites/-options),
the same generated certificate, on 127.0.0.1; writes both reports and their diff.

    python3 -m bench.testssl_compare [--out bench/results/testssl-....txt]

Needs `haproxy`, `testssl` (Debian package) and `openssl`. Each report is
`testssl --quiet --color 0 --warnings batch -p -P -E`: protocols, the server's
cipher preference, and the ciphers of each protocol.
"""

import argparse
import datetime
import difflib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN_TLS = """global
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:\
TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:%(port)d ssl crt %(pem)s
    http-request return status 200
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the proxy did not listen on %d" % port)


def report(name, cmd, port, cfg_text, work):
    cfg = os.path.join(work, name + ".cfg")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    proc = subprocess.Popen(cmd + [cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT)
    try:
        wait_port(port, proc)
        out = subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "batch",
                              "-p", "-P", "-E", "127.0.0.1:%d" % port],
                             capture_output=True, text=True, timeout=600)
        return [line.rstrip() for line in out.stdout.splitlines()
                if line.strip() and not line.startswith((" Start", " Done", "Start", "Done"))]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(
        ROOT, "bench", "results", "testssl-debian-defaults-%s.txt"
        % datetime.date.today().strftime("%Y%m%d")))
    args = ap.parse_args()
    for tool in ("haproxy", "testssl", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit("%s is not installed" % tool)
    with tempfile.TemporaryDirectory() as work:
        pem = os.path.join(work, "site.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", pem + ".key", "-out", pem],
                       check=True, capture_output=True)
        with open(pem, "ab") as f, open(pem + ".key", "rb") as key:
            f.write(key.read())
        ports = free_port(), free_port()
        ha = report("haproxy", ["haproxy", "-db", "-f"], ports[0],
                    DEBIAN_TLS % {"port": ports[0], "pem": pem}, work)
        kw = report("keepwarm", [sys.executable, "-m", "proxy", "run", "-f"], ports[1],
                    DEBIAN_TLS % {"port": ports[1], "pem": pem}, work)
    version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    diff = list(difflib.unified_diff(ha, kw, "haproxy", "keepwarm", lineterm="", n=0))
    with open(args.out, "w") as f:
        f.write("# testssl -p -P -E against %s and keepwarm %s, same certificate (RSA 2048),\n"
                "# Debian's default haproxy.cfg TLS lines, %s (python3 -m bench.testssl_compare)\n"
                "# diff of the two reports: %s\n\n"
                % (version.splitlines()[0] if version else "haproxy", commit,
                   datetime.date.today().isoformat(), "none" if not diff else "below"))
        f.write("## HAProxy\n" + "\n".join(ha) + "\n\n## keepwarm\n" + "\n".join(kw) + "\n")
        if diff:
            f.write("\n## diff\n" + "\n".join(diff) + "\n")
    print("wrote %s (%s)" % (args.out, "identical" if not diff else "%d diff lines" % len(diff)))


if __name__ == "__main__":
    main()
