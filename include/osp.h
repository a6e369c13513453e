/*
 * osp.h - the C API of object-storage-proxy (libosp.so).
 *
 * This header is the one contract between the Go proxy and its Python
 * binding. Everything crosses it as UTF-8 C strings; structured values are
 * JSON documents described below. Strings returned by the library are owned
 * by the caller and must be released with osp_free.
 *
 * The Python package's cffi builder reads its declarations from this file
 * (python/object_storage_proxy/_build_ffi.py): declarations stay plain C
 * that cffi can parse (no macros in them; a #define is an integer or, for
 * OSP_VERSION, a string).
 */
#ifndef OSP_H
#define OSP_H

#include <stddef.h>
#include <stdint.h>

/* The version of this contract and of libosp: osp_version() returns it
 * (libosp is built against this header), and a host built against it can
 * compare the two to refuse a library of another version. The Python
 * package takes its own version from here. */
#define OSP_VERSION "0.2.0"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Callbacks into the host language.
 *
 * The host registers a single trampoline. The proxy calls it, from any
 * thread, whenever it needs an answer from a host callable:
 *
 *   callable_id  the id the host gave the callable in the server config
 *                ("validator", "bucket_creds_fetcher", "hmac_fetcher",
 *                "rate_limit_fetcher")
 *   args_json    a JSON object with the call's arguments, for example
 *                {"token": "AKIA...", "bucket": "data"} for a validator or
 *                {"access_key": "AKIA..."} for an hmac_fetcher
 *   out, out_cap a buffer owned by the proxy for the answer
 *   out_len      where the trampoline stores how many bytes it wrote
 *
 * The trampoline returns one of the OSP_CB_* codes:
 *   OSP_CB_OK        the callable answered: out holds the value as text
 *                    (a secret, an API key, a JSON HMAC pair or rate limit;
 *                    empty for a validator's True)
 *   OSP_CB_NONE      the callable answered None (or False for a validator)
 *   OSP_CB_ERROR     the callable raised; out holds a short description
 *   OSP_CB_BAD_TYPE  the callable returned a value of the wrong type; out
 *                    holds a short description
 *   OSP_CB_TOO_LONG  the answer does not fit in out_cap bytes (*out_len
 *                    is then 0)
 * ------------------------------------------------------------------------- */
#define OSP_CB_OK 0
#define OSP_CB_NONE 1
#define OSP_CB_ERROR 2
#define OSP_CB_BAD_TYPE 3
#define OSP_CB_TOO_LONG 4

typedef int32_t (*osp_callback_fn)(uint64_t callable_id, const char *args_json,
                                   char *out, size_t out_cap, size_t *out_len);

/* Registers the trampoline used for every callable of every server. Passing
 * NULL unregisters it; calls then fail with an InternalError to the client. */
void osp_register_callback(osp_callback_fn fn);

/* ---------------------------------------------------------------------------
 * Servers.
 *
 * config_json is the server configuration, built by the Python package in
 * object_storage_proxy/config.py (ProxyServerConfig.to_native_json). Its
 * keys, with the type of each value; osp_config_defaults() returns every
 * one with its default, and go/internal/config (Config, Bucket) says what
 * each means (tests/test_contract.py checks this list against both):
 *   {"cos_map": {"bucket": {"host": ..., "port": ..., "region": ...,
 *                           "scheme": "https"|"http",
 *                           "addressing_style": "virtual"|"path",
 *                           "upload_framing": "aws-chunked"|"plain",
 *                           "access_key": ..., "secret_key": ...,
 *                           "api_key": ..., "ttl": seconds,
 *                           "presign_max_uses": int|null,
 *                           "presign_max_expires": seconds|null}, ...},
 *    "http_port": int|null, "https_port": int|null, "bind": str,
 *    "tls_cert_path": str|null, "tls_key_path": str|null,
 *    "verify": true|false|"/path/to/ca-bundle.pem",
 *    "hmac_keystore": {"access_key": "secret", ...},
 *    "skip_signature_validation": bool, "threads": int,
 *    "validator": callable_id|null, "bucket_creds_fetcher": callable_id|null,
 *    "hmac_fetcher": callable_id|null,
 *    "validator_identity": bool, "bucket_creds_fetcher_identity": bool,
 *    "allow_unverified_on_network": bool, "virtual_host_domains": [str],
 *    "iam_url": str, "connect_to": {"host:port": "host:port"},
 *    "callback_timeout": seconds, "cache_size": int,
 *    "client_header_timeout": seconds, "client_idle_timeout": seconds,
 *    "backend_timeout": seconds, "log_format": "text"|"json",
 *    "log_level": "debug"|"info"|"warn"|"error",
 *    "trusted_forwarded_host": bool, "metrics": bool,
 *    "admin_port": int|null, "admin_bind": str,
 *    "max_callable_calls": int, "hmac_fetcher_ttl": seconds,
 *    "state_url": str, "presign_max_uses": int, "presign_max_expires": seconds,
 *    "presign_limits_when_state_down": "deny"|"allow",
 *    "rate_limits_when_state_down": "allow"|"deny",
 *    "rate_limit": limit|null, "rate_limits": {access key: limit},
 *    "rate_limit_fetcher": callable_id|null}
 *
 * Every key is optional but a port; an unknown key, at the top or in a
 * cos_map entry, is refused with a message naming it (a typo must not drop
 * a setting silently).
 *
 * A cos_map key is a bucket name or a pattern: a prefix and one '*' at the
 * end ("team-a-*": every bucket whose name starts with "team-a-"), or "*"
 * for every other bucket, with the same fields. A request's bucket is
 * served by its own entry, else by the longest pattern it starts with
 * (byte for byte, case-sensitive). A pattern with a '*' elsewhere, two of
 * them, or a prefix no bucket name could start is refused, as is an empty
 * key. ListBuckets lists the exact entries and what each pattern's backend
 * lists that the pattern serves.
 *
 * admin_port (0: a free port) opens the admin listener on admin_bind: GET /healthz, /readyz (503 while stopping) and
 * /metrics. Without it there is none; the S3 listeners answer only S3.
 *
 * max_callable_calls bounds the callable calls of one server
 * running at once: a request that needs one more is answered 503 SlowDown
 * without calling the host. A call whose caller timed out (callback_timeout)
 * holds its slot until the trampoline returns.
 *
 * The limits (docs/limits.md): state_url is where their counts live ("":
 * this process; redis://host:port/db or rediss://, shared by a fleet, the
 * password from the URL or $OSP_STATE_PASSWORD). A limit is an object of
 * requests_per_second (a number), burst, upload_bytes_per_second and
 * download_bytes_per_second (integers), each 0 or absent for none;
 * rate_limit applies to every client key that rate_limits does not name
 * and rate_limit_fetcher (which answers a limit as JSON, or None) does not
 * give one. presign_max_uses (0: none) and presign_max_expires (0: 7 days)
 * of a cos_map entry override the server's. The *_when_state_down keys say
 * what the limits do while the store does not answer.
 *
 * hmac_fetcher_ttl (seconds; 0: not cached) is how long a
 * secret from hmac_fetcher is kept. osp_server_reload starts with empty
 * caches of every callable's answers.
 *
 * osp_server_start binds the listeners and starts serving in the
 * background. It returns a handle > 0, or 0 and sets *err to a message
 * (free it with osp_free).
 * ------------------------------------------------------------------------- */
int64_t osp_server_start(char *config_json, char **err);

/* Swaps the configuration of a running server (cos_map, keystore, TTLs,
 * callables, logging, max_callable_calls...): requests in flight finish with
 * the old one; new ones start with empty caches of callable answers (a
 * revoked client key is refused from the next request on). Ports (admin_port
 * too), bind addresses and TLS files cannot change. Returns NULL on success or an
 * error message (free it with osp_free); on error the old configuration
 * stays. */
char *osp_server_reload(int64_t handle, char *config_json);

/* The bound addresses of a running server as JSON:
 * {"http_port": int|null, "https_port": int|null, "admin_port": int|null}.
 * NULL for an unknown handle. Free the result with osp_free. */
char *osp_server_ports(int64_t handle);

/* Stops a server gracefully: listeners close at once, in-flight requests get
 * up to timeout_ms to finish, then connections are closed and the library
 * waits (a few seconds at most) for their handlers to return: once it
 * returns NULL, no callable of this server is called again. Returns NULL on
 * a clean stop or an error message (free it with osp_free). The handle is
 * invalid afterwards. */
char *osp_server_stop(int64_t handle, int64_t timeout_ms);

/* Every configuration key with its default, as JSON: {"config": {key:
 * default, ...}, "bucket": {cos_map entry key: default, ...}}; a key with
 * no default (a port, a callable, a credential) is null or empty. Free the
 * result with osp_free. */
char *osp_config_defaults(void);

/* ---------------------------------------------------------------------------
 * Request counting (process wide, as in the original project).
 * ------------------------------------------------------------------------- */
void osp_set_request_counting(int32_t enabled);
int64_t osp_get_request_count(void);
void osp_reset_request_count(void);

/* Releases a string returned by the library. NULL is ignored. */
void osp_free(char *s);

/* The library version (OSP_VERSION when libosp was built), static storage:
 * do not free or modify. */
char *osp_version(void);

#ifdef __cplusplus
}
#endif

#endif /* OSP_H */
