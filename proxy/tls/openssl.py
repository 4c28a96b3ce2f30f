"""What Python's `ssl` module has no call for, done on its own OpenSSL objects
through cffi: TLS 1.3 cipher suites, the groups (curves) and signature
algorithms lists, and a session-ticket key callback.

The functions are looked up in the libssl/libcrypto that the `_ssl` extension
itself loaded (read from /proc/self/maps), so they act on the very SSL_CTX a
`ssl.SSLContext` wraps. Python keeps that pointer as the first field after the
object header; `ctx_pointer()` reads it there and checks it is the context by
comparing the options OpenSSL reports with the ones Python reports. When any
of this is not available (another OpenSSL, another Python layout), `unavailable()`
says why and the configuration refuses what needs it, with that reason.
"""

from __future__ import annotations

import ssl
import sys
from typing import Callable, Optional

from cffi import FFI

_CDEF = """
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_mac_ctx_st EVP_MAC_CTX;
typedef struct evp_cipher_st EVP_CIPHER;
typedef struct engine_st ENGINE;
typedef struct {
    const char *key;
    unsigned int data_type;
    void *data;
    size_t data_size;
    size_t return_size;
} OSSL_PARAM;

uint64_t SSL_CTX_get_options(const SSL_CTX *ctx);
int SSL_CTX_set_ciphersuites(SSL_CTX *ctx, const char *str);
int SSL_CTX_set_session_id_context(SSL_CTX *ctx, const unsigned char *sid_ctx,
                                   unsigned int sid_ctx_len);
long SSL_CTX_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg);
int SSL_CTX_set_tlsext_ticket_key_evp_cb(SSL_CTX *ctx,
    int (*fp)(SSL *, unsigned char *, unsigned char *, EVP_CIPHER_CTX *, EVP_MAC_CTX *, int));

const EVP_CIPHER *EVP_aes_128_cbc(void);
const EVP_CIPHER *EVP_aes_256_cbc(void);
int EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
                       const unsigned char *key, const unsigned char *iv);
int EVP_DecryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
                       const unsigned char *key, const unsigned char *iv);
int EVP_MAC_CTX_set_params(EVP_MAC_CTX *ctx, const OSSL_PARAM params[]);
int RAND_bytes(unsigned char *buf, int num);
void ERR_clear_error(void);
"""
SSL_CTRL_SET_GROUPS_LIST = 92
SSL_CTRL_SET_SIGALGS_LIST = 98
SSL_CTRL_SET_CLIENT_SIGALGS_LIST = 102
OSSL_PARAM_UTF8_STRING = 4
OSSL_PARAM_OCTET_STRING = 5
UNMODIFIED = (1 << 64) - 1
TICKET_CB = "int(SSL *, unsigned char *, unsigned char *, EVP_CIPHER_CTX *, EVP_MAC_CTX *, int)"

ffi = FFI()
ffi.cdef(_CDEF)
_state = {}          # "ssl", "crypto": the libraries; "why": why not


def _loaded_paths():
    import _ssl  # noqa: F401  (loads libssl and libcrypto if they are not yet)
    found = {}
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(None, 5)[-1]
                name = path.rsplit("/", 1)[-1]
                for lib in ("libssl", "libcrypto"):
                    if name.startswith(lib + ".so") and lib not in found:
                        found[lib] = path
    except OSError:
        pass
    return found


def unavailable() -> Optional[str]:
    """None when the calls below work here; else why not (for a refusal's hint)."""
    if "why" not in _state:
        _state["why"] = _open()
    return _state["why"]


def _open() -> Optional[str]:
    if not sys.platform.startswith("linux"):
        return "only on Linux"
    if sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount") or \
            getattr(sys, "_is_gil_enabled", lambda: True)() is False:
        return "only on a standard CPython build"
    if ssl.OPENSSL_VERSION_INFO < (3, 0):
        return "Python's ssl module uses %s; this needs OpenSSL 3" % ssl.OPENSSL_VERSION
    paths = _loaded_paths()
    if "libssl" not in paths or "libcrypto" not in paths:
        return "Python's ssl module is not linked to a shared libssl/libcrypto"
    try:
        _state["ssl"] = ffi.dlopen(paths["libssl"])
        _state["crypto"] = ffi.dlopen(paths["libcrypto"])
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _ctx_pointer(probe)
        # Callbacks need writable and executable memory, which some hosts refuse
        # (SELinux deny_execmem, PaX): then OpenSSL keeps its own ticket keys.
        ffi.callback(TICKET_CB, lambda *args: 0)
    except (OSError, AttributeError, ValueError, MemoryError) as exc:
        _state.pop("ssl", None)
        return "cannot reach Python's OpenSSL (%s)" % exc
    return None


def _ctx_pointer(ctx: ssl.SSLContext):
    lib = _state["ssl"]
    header = object.__basicsize__            # the object header: the SSL_CTX * follows
    ptr = ffi.cast("SSL_CTX **", id(ctx) + header)[0]
    if ptr == ffi.NULL:
        raise ValueError("no SSL_CTX")
    # The pointer is the context's only if OpenSSL sees the options Python set:
    # checked with two different values.
    saved = ctx.options
    try:
        for flip in (ssl.OP_NO_TICKET, 0):
            ctx.options = saved ^ flip
            if lib.SSL_CTX_get_options(ptr) != int(ctx.options):
                raise ValueError("the SSLContext layout is not the expected one")
    finally:
        ctx.options = saved
    return ptr


def ctx_pointer(ctx: ssl.SSLContext):
    why = unavailable()
    if why:
        raise ValueError(why)
    return _ctx_pointer(ctx)


def _call_ok(result) -> bool:
    if result != 1:
        _state["crypto"].ERR_clear_error()
        return False
    return True


def set_ciphersuites(ctx: ssl.SSLContext, text: str) -> bool:
    """TLS 1.3 suites (`ciphersuites`); False when OpenSSL takes none of them."""
    ptr = ctx_pointer(ctx)
    return _call_ok(_state["ssl"].SSL_CTX_set_ciphersuites(ptr, text.encode()))


def set_session_context(ctx: ssl.SSLContext, context: bytes) -> bool:
    """The session-id context (at most 32 bytes): OpenSSL resumes a session or a
    ticket only where it was made with the same one (Python gives every context
    the same, "Python")."""
    ptr = ctx_pointer(ctx)
    return _call_ok(_state["ssl"].SSL_CTX_set_session_id_context(ptr, context[:32],
                                                                 len(context[:32])))


def set_groups(ctx: ssl.SSLContext, text: str) -> bool:
    """The key-exchange groups (`curves`), in order of preference."""
    ptr = ctx_pointer(ctx)
    return _call_ok(_state["ssl"].SSL_CTX_ctrl(ptr, SSL_CTRL_SET_GROUPS_LIST, 0,
                                               ffi.new("char[]", text.encode())))


def set_sigalgs(ctx: ssl.SSLContext, text: str, client: bool = False) -> bool:
    """`sigalgs` (what this side accepts from the peer), or `client-sigalgs`."""
    cmd = SSL_CTRL_SET_CLIENT_SIGALGS_LIST if client else SSL_CTRL_SET_SIGALGS_LIST
    ptr = ctx_pointer(ctx)
    return _call_ok(_state["ssl"].SSL_CTX_ctrl(ptr, cmd, 0, ffi.new("char[]", text.encode())))


class TicketKey:
    """One session-ticket key as HAProxy's files hold it: 16 bytes of name, then
    the AES key and the HMAC-SHA256 key (16 + 16: AES-128, or 32 + 32: AES-256)."""

    __slots__ = ("raw", "name", "_aes", "_cipher", "_params", "_keep")

    def __init__(self, raw: bytes):
        if len(raw) not in (48, 80):
            raise ValueError("a ticket key is 48 or 80 bytes, not %d" % len(raw))
        self.raw = raw
        half = (len(raw) - 16) // 2
        self.name = raw[:16]
        self._aes = ffi.new("unsigned char[]", raw[16:16 + half])
        hmac = ffi.new("unsigned char[]", raw[16 + half:])
        digest = ffi.new("char[]", b"SHA256")
        names = (ffi.new("char[]", b"key"), ffi.new("char[]", b"digest"))
        params = ffi.new("OSSL_PARAM[3]")
        params[0] = (names[0], OSSL_PARAM_OCTET_STRING, hmac, half, UNMODIFIED)
        params[1] = (names[1], OSSL_PARAM_UTF8_STRING, digest, 6, UNMODIFIED)
        params[2] = (ffi.NULL, 0, ffi.NULL, 0, 0)
        self._params = params
        self._keep = (hmac, digest, names)
        self._cipher = 128 if half == 16 else 256

    def start(self, cipher_ctx, mac_ctx, iv, encrypt: bool) -> bool:
        crypto = _state["crypto"]
        cipher = crypto.EVP_aes_128_cbc() if self._cipher == 128 else crypto.EVP_aes_256_cbc()
        init = crypto.EVP_EncryptInit_ex if encrypt else crypto.EVP_DecryptInit_ex
        return (init(cipher_ctx, cipher, ffi.NULL, self._aes, iv) == 1
                and crypto.EVP_MAC_CTX_set_params(mac_ctx, self._params) == 1)


def use_ticket_keys(ctx: ssl.SSLContext, ring: Callable[[], tuple]) -> None:
    """Session tickets of `ctx` sealed with keys of our own: `ring()` gives the keys
    in HAProxy's order (oldest, the one that encrypts, the next), all of which
    decrypt. A ticket sealed with another than the encrypting key is renewed."""
    # Whatever fails inside (none is expected) answers 0: no ticket is issued, or
    # the ticket is not opened (a full handshake); the handshake itself goes on,
    # and no traceback is printed (onerror).
    callback = ffi.callback(TICKET_CB, _ticket_callback(ring), error=0,
                            onerror=lambda *exc: None)
    ctx.keepwarm_ticket_callback = callback          # lives exactly as long as ctx
    ptr = ctx_pointer(ctx)
    if _state["ssl"].SSL_CTX_set_tlsext_ticket_key_evp_cb(ptr, callback) != 1:
        raise ValueError("OpenSSL refused the ticket key callback")


def _ticket_callback(ring):
    def seal_or_open(_ssl, name, iv, cipher_ctx, mac_ctx, encrypt):
        keys = ring()
        if not keys:
            return 0                       # no ticket (encrypt) / full handshake
        if encrypt:
            key = keys[1] if len(keys) > 1 else keys[0]
            ffi.memmove(name, key.name, 16)
            if _state["crypto"].RAND_bytes(iv, 16) != 1:
                return 0
            return 1 if key.start(cipher_ctx, mac_ctx, iv, True) else 0
        wanted = bytes(ffi.buffer(name, 16))
        for i, key in enumerate(keys):
            if key.name == wanted:
                if not key.start(cipher_ctx, mac_ctx, iv, False):
                    return 0
                return 1 if i == min(1, len(keys) - 1) else 2
        return 0
    return seal_or_open
