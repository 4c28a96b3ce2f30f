"""HAProxy 2.6 keywords keepwarm knows about but does not implement (yet).

A keyword found here is refused with "not supported by keepwarm (yet)"; a word
found nowhere is refused as unknown, with a "did you mean" hint.  Keeping the
two apart tells a user whether their config is wrong or merely ahead of us.
"""

from __future__ import annotations

DOC = "docs/configuration.md"
UNSUPPORTED_HINT = "see %s for what keepwarm supports" % DOC

# Keywords of the user's seed document that HAProxy never had, and what to write.
SEED_HINTS = {
    "keepalive-timeout": "use 'timeout http-keep-alive <time>' in defaults/frontend",
    "http-server-close": ("'option http-server-close' is a switch without a value; idle "
                          "server connections are reaped by 'pool-purge-delay'"),
}

SECTIONS = ("global", "defaults", "frontend", "backend", "listen")

# Sections HAProxy has and keepwarm does not.
OTHER_SECTIONS = frozenset("""
peers resolvers mailers program ring cache fcgi-app dynamic-update
""".split())

GLOBAL = frozenset("""
51degrees-data-file 51degrees-property-name-list 51degrees-property-separator
51degrees-cache-size busy-polling ca-base chroot cluster-secret cpu-map crt-base
debug default-path description deviceatlas-json-file deviceatlas-log-level
deviceatlas-separator deviceatlas-properties-cookie expose-experimental-directives
external-check fd-hard-limit gid grace group h1-case-adjust h1-case-adjust-file
h2-workaround-bogus-websocket-clients hard-stop-after httpclient.resolvers.id
httpclient.resolvers.prefer httpclient.ssl.ca-file httpclient.ssl.verify
insecure-fork-wanted insecure-setuid-wanted issuers-chain-path localpeer
log-send-hostname log-tag lua-load lua-load-per-thread lua-prepend-path
max-spread-checks maxcompcpuusage maxcomprate maxconnrate maxpipes maxsessrate
maxsslconn maxsslrate maxzlibmem mworker-max-reloads no-memory-trimming node
noepoll noevports nogetaddrinfo nokqueue nopoll noreuseport nosplice
numa-cpu-mapping pidfile pp2-never-send-local presetenv profiling.memory
profiling.tasks quiet resetenv server-state-base server-state-file set-dumpable
set-var setenv spread-checks ssl-default-bind-ciphers ssl-default-bind-ciphersuites
ssl-default-bind-curves ssl-default-bind-options ssl-default-server-ciphers
ssl-default-server-ciphersuites ssl-default-server-options ssl-dh-param-file
ssl-engine ssl-load-extra-del-ext ssl-load-extra-files ssl-mode-async
ssl-propquery ssl-provider ssl-provider-path ssl-server-verify
ssl-skip-self-issued-ca strict-limits thread-group thread-groups uid ulimit-n
unix-bind unsetenv user wurfl-cache-size wurfl-data-file wurfl-information-list
wurfl-information-list-separator wurfl-patch-file zero-warning
""".split())

GLOBAL_PREFIXES = ("tune.", "ssl-", "51degrees-", "wurfl-", "deviceatlas-", "httpclient.")

PROXY = frozenset("""
acl backlog bind-process capture clitcpka-cnt clitcpka-idle clitcpka-intvl
compression cookie declare description disabled dispatch email-alert enabled
errorfile errorfiles errorloc errorloc302 errorloc303 error-log-format filter
force-persist fullconn grace hash-balance-factor http-after-response
http-error http-send-name-header id ignore-persist
load-server-state-from-file log-format log-format-sd log-tag
max-keep-alive-queue monitor monitor-fail monitor-net persist
rate-limit redirect server-state-file-name server-template source
srvtcpka-cnt srvtcpka-idle srvtcpka-intvl stats stick stick-table tcp-check
tcp-request tcp-response unique-id-format unique-id-header use-fcgi-app
use-server use_backend
""".split())

OPTIONS = frozenset("""
abortonclose accept-invalid-http-request accept-invalid-http-response
checkcache clitcpka contstats disable-h2-upgrade external-check
h1-case-adjust-bogus-client h1-case-adjust-bogus-server http-buffer-request
http-no-delay http-pretend-keepalive
http-restrict-req-hdr-names http-use-proxy-header idle-close-on-response
independent-streams ldap-check mysql-check nolinger persist
pgsql-check prefer-last-server redis-check smtpchk socket-stats splice-auto
splice-request splice-response spop-check srvtcpka ssl-hello-chk tcp-check
tcp-smart-accept tcp-smart-connect tcpka transparent
""".split())

# Logging options (proxy/config/logs.py; written by workers/txlog.py).
LOG_OPTIONS = frozenset("""
httplog tcplog dontlognull dontlog-normal log-health-checks log-separate-errors
logasap
""".split())

TIMEOUTS = frozenset("tarpit client-fin server-fin".split())

SERVER = frozenset("""
agent-addr agent-check agent-inter agent-port agent-send allow-0rtt alpn ca-file
check-alpn check-proto check-send-proxy check-sni check-ssl check-via-socks4
ciphers ciphersuites client-sigalgs cookie crl-file crt curves
force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 id init-addr
log-proto minconn namespace no-agent-check no-check-ssl no-send-proxy
no-send-proxy-v2 no-send-proxy-v2-ssl no-send-proxy-v2-ssl-cn no-ssl
no-ssl-reuse no-sslv3 no-tfo no-tls-tickets no-tlsv10 no-tlsv11 no-tlsv12
no-tlsv13 no-verifyhost non-stick npn
pool-low-conn proto proxy-v2-options redir resolve-net
resolve-opts resolve-prefer resolvers send-proxy send-proxy-v2
send-proxy-v2-ssl send-proxy-v2-ssl-cn shard sigalgs sni socks4
source ssl ssl-max-ver ssl-min-ver ssl-reuse stick tcp-ut tfo tls-tickets
track verify verifyhost ws
""".split())

BIND = frozenset("""
accept-netscaler-cip accept-proxy allow-0rtt alpn backlog ca-file ca-ignore-err
ca-sign-file ca-sign-pass ca-verify-file ciphers ciphersuites client-sigalgs
crl-file crt crt-ignore-err crt-list curves defer-accept expose-fd force-sslv3
force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 generate-certificates gid
group id interface level maxconn mode mss name namespace nice no-ca-names
no-sslv3 no-tls-tickets no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 npn
prefer-client-ciphers process proto quic-cc-algo quic-force-retry
severity-output shards sigalgs ssl ssl-max-ver ssl-min-ver strict-sni tcp-ut
tfo thread tls-ticket-keys transparent uid user v4v6 v6only verify
""".split())

BALANCE = frozenset("""
static-rr leastconn first source uri url_param hdr random rdp-cookie hash
""".split())

HTTP_CHECK = frozenset("""
comment connect disable-on-404 send-state set-var unset-var
""".split())
