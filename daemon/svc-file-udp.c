/* svc-file-udp.c: the file service over UDP, its supervisor half: the
 * listener's address validation, the table of running transfers, the limits,
 * and the fork of one child per transfer (xfer-send.c runs in the child).
 * docs/PROTOCOL.md, section 11.
 *
 * Runs in the supervisor, one datagram at a time, after the reflector guard
 * (dgram.c).  Trusts nothing in a datagram, its source address included:
 * only a REQUEST is ever answered here, and only with a RETRY (a stateless
 * cookie, 29 bytes for a REQUEST of at least 1200) or an ERROR, each at most
 * NL_XFER_AMPLIFY times the datagram it answers.  Nothing is allocated and
 * no child is started before a REQUEST comes back with a cookie that proves
 * its sender receives datagrams at the address it claims.  The transfer
 * table is allocated once per listener runtime, bounded by max_transfers,
 * and handed over at a reload with the cookie key, so running transfers stay
 * counted and cookies stay valid across SIGHUP. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "children.h"
#include "config.h"
#include "conn.h"
#include "dgram.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "siphash.h"
#include "svc-file-udp.h"
#include "svc-file.h"
#include "util.h"
#include "wire.h"
#include "xfer-send.h"

/* ---- cookies ---- */

int file_udp_cookie_key_new(struct file_udp_cookie_key *key)
{
        for (size_t i = 0; i < ELEMENTSOF(key->k); i++) {
                int r = siphash_key_random(&key->k[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void put_u32be(uint8_t *p, uint32_t v)
{
        struct wire_writer w;

        wire_writer_init(&w, p, 4);
        (void) wire_put_u32be(&w, v); /* exactly 4 bytes of room */
}

static void cookie_mac(const struct file_udp_cookie_key *key, uint32_t t, uint32_t client_id,
                       const struct sockaddr *peer, uint8_t out[16])
{
        uint8_t in[4 + 4 + 16 + 2];
        struct in6_addr addr;
        uint16_t port = 0;

        children_source_key(peer, &addr);
        if (peer->sa_family == AF_INET)
                port = ntohs(((const struct sockaddr_in *) peer)->sin_port);
        else if (peer->sa_family == AF_INET6)
                port = ntohs(((const struct sockaddr_in6 *) peer)->sin6_port);

        put_u32be(in, t);
        put_u32be(in + 4, client_id);
        memcpy(in + 8, &addr, 16);
        in[24] = (uint8_t) (port >> 8);
        in[25] = (uint8_t) port;
        for (size_t i = 0; i < ELEMENTSOF(key->k); i++) {
                uint64_t h = siphash24(&key->k[i], in, sizeof in);
                for (size_t b = 0; b < 8; b++)
                        out[i * 8 + b] = (uint8_t) (h >> (56 - 8 * b));
        }
}

void file_udp_cookie_make(const struct file_udp_cookie_key *key, uint64_t now_usec, uint32_t client_id,
                          const struct sockaddr *peer, uint8_t out[FILE_UDP_COOKIE_SIZE])
{
        uint32_t t = (uint32_t) (now_usec / 1000000u);

        put_u32be(out, t);
        cookie_mac(key, t, client_id, peer, out + 4);
}

enum file_udp_cookie_verdict file_udp_cookie_check(const struct file_udp_cookie_key *key, uint64_t now_usec,
                                                   uint32_t client_id, const struct sockaddr *peer,
                                                   const uint8_t *cookie, size_t len)
{
        struct wire_reader r;
        uint8_t mac[16];
        uint8_t diff = 0;
        uint32_t t;

        if (len != FILE_UDP_COOKIE_SIZE)
                return FILE_UDP_COOKIE_INVALID;
        wire_reader_init(&r, cookie, len);
        if (wire_get_u32be(&r, &t) < 0)
                return FILE_UDP_COOKIE_INVALID;
        cookie_mac(key, t, client_id, peer, mac);
        /* Compare every byte: the time taken says nothing about where a
         * forged MAC first differs. */
        for (size_t i = 0; i < sizeof mac; i++)
                diff |= (uint8_t) (mac[i] ^ cookie[4 + i]);
        if (diff != 0)
                return FILE_UDP_COOKIE_INVALID;

        uint64_t now = now_usec / 1000000u;
        if (t > now)
                return FILE_UDP_COOKIE_INVALID; /* we never made it: not in this boot */
        if (now - t >= FILE_UDP_COOKIE_LIFETIME_SEC)
                return FILE_UDP_COOKIE_EXPIRED;
        return FILE_UDP_COOKIE_VALID;
}

/* ---- the transfer table ---- */

int file_udp_table_init(struct file_udp_table *t, size_t cap, const struct file_udp_table *old)
{
        if (cap == 0)
                return -EINVAL;
        if (old && old->n > cap)
                cap = old->n;
        *t = (struct file_udp_table) { .v = calloc(cap, sizeof *t->v), .cap = cap };
        if (!t->v)
                return -ENOMEM;
        if (old && old->n > 0) {
                memcpy(t->v, old->v, old->n * sizeof *t->v);
                t->n = old->n;
        }
        return 0;
}

void file_udp_table_done(struct file_udp_table *t)
{
        free(t->v);
        *t = (struct file_udp_table) {};
}

const struct file_udp_transfer *file_udp_table_find(const struct file_udp_table *t, const struct in6_addr *addr,
                                                    uint16_t port, uint32_t client_id)
{
        for (size_t i = 0; i < t->n; i++)
                if (t->v[i].port == port && t->v[i].client_id == client_id &&
                    memcmp(&t->v[i].addr, addr, sizeof *addr) == 0)
                        return &t->v[i];
        return NULL;
}

size_t file_udp_table_count_source(const struct file_udp_table *t, const struct in6_addr *addr)
{
        size_t n = 0;

        for (size_t i = 0; i < t->n; i++)
                if (memcmp(&t->v[i].addr, addr, sizeof *addr) == 0)
                        n++;
        return n;
}

int file_udp_table_add(struct file_udp_table *t, const struct file_udp_transfer *e)
{
        if (t->n >= t->cap)
                return -ENOSPC;
        t->v[t->n++] = *e;
        return 0;
}

bool file_udp_table_remove(struct file_udp_table *t, pid_t pid)
{
        for (size_t i = 0; i < t->n; i++)
                if (t->v[i].pid == pid) {
                        t->v[i] = t->v[--t->n];
                        return true;
                }
        return false;
}

/* ---- the listener's state ---- */

struct file_udp_state {
        const struct file_options *o;
        struct file_udp_cookie_key key;    /* made once, handed over at reloads */
        struct file_udp_table table;
};

static void file_udp_state_free(void *state)
{
        struct file_udp_state *st = state;

        if (!st)
                return;
        file_udp_table_done(&st->table);
        free(st);
}

static int file_udp_state_new(const struct listener_config *lc, const void *old_state, void **ret_state)
{
        const struct file_udp_state *old = old_state;
        struct file_udp_state *st = calloc(1, sizeof *st);
        int r;

        if (!st)
                return -ENOMEM;
        st->o = lc->options;
        if (old)
                st->key = old->key;
        else {
                r = file_udp_cookie_key_new(&st->key);
                if (r < 0) {
                        free(st);
                        return r;
                }
        }
        r = file_udp_table_init(&st->table, (size_t) st->o->max_transfers, old ? &old->table : NULL);
        if (r < 0) {
                free(st);
                return r;
        }
        *ret_state = st;
        return 0;
}

static void file_udp_child_exited(void *state, pid_t pid)
{
        struct file_udp_state *st = state;

        (void) file_udp_table_remove(&st->table, pid);
}

/* ---- answering ---- */

#define ERROR_FIXED 13u            /* ERROR bytes before its text */

/* An ERROR in buf answering a len-byte datagram: the text cut so the reply
 * stays within NL_XFER_AMPLIFY times len.  Return: its size, or -1. */
static ssize_t reply_error(uint8_t *buf, size_t len, size_t cap, uint32_t client_id, unsigned status,
                           const char *text)
{
        size_t room = len * NL_XFER_AMPLIFY < cap ? len * NL_XFER_AMPLIFY : cap;
        size_t text_len = strlen(text);

        if (room <= ERROR_FIXED || client_id == 0)
                return -1;
        if (text_len > room - ERROR_FIXED)
                text_len = room - ERROR_FIXED;
        if (text_len > NL_ERROR_TEXT_MAX)
                text_len = NL_ERROR_TEXT_MAX;

        /* The text may live in buf: build the reply aside. */
        uint8_t out[ERROR_FIXED + NL_ERROR_TEXT_MAX];
        struct xfer_packet p = {
                .type = NL_XFER_ERROR, .client_id = client_id, .status = (uint8_t) status,
                .body = (const uint8_t *) text, .body_len = text_len,
        };
        int n = xfer_packet_encode(out, sizeof out, &p);
        if (n < 0 || (size_t) n > room)
                return -1;
        memcpy(buf, out, (size_t) n);
        return n;
}

static ssize_t reply_retry(struct file_udp_state *st, struct dgram_ctx *ctx, uint8_t *buf, size_t cap,
                           uint32_t client_id)
{
        uint8_t cookie[FILE_UDP_COOKIE_SIZE];
        struct xfer_packet p = {
                .type = NL_XFER_RETRY, .client_id = client_id,
                .cookie = cookie, .cookie_len = sizeof cookie,
        };

        file_udp_cookie_make(&st->key, ctx->now_usec, client_id, ctx->peer, cookie);
        int n = xfer_packet_encode(buf, cap, &p);
        return n < 0 ? -1 : n;
}

/* The request's file, for the log of a refusal made here, if its body
 * names one in a printable way.  Return: true with *ret filled (its path
 * points into the datagram, which the reply overwrites). */
static bool request_file(const struct xfer_packet *p, struct file_request *ret)
{
        const char *problem;

        return file_request_decode(NL_TYPE_FILE_GET, p->body, p->body_len, ret) == 0 &&
               file_path_check(ret->path, ret->path_len, false, false, &problem) == 0;
}

/* Log a refusal made here (rate-limited, dgram.c). */
static void log_refusal(struct dgram_ctx *ctx, const uint8_t *file, size_t file_len, const uint64_t *offset,
                        size_t len, ssize_t reply, const char *result, const char *detail)
{
        dgram_log_request(ctx, &(struct request_log) {
                .bytes_in = len, .bytes_out = reply > 0 ? (uint64_t) reply : 0,
                .result = result, .detail = detail, .priority = LOG_NOTICE,
                .file = file, .file_len = file_len,
                .has_offset = offset != NULL, .offset = offset ? *offset : 0,
        });
}

/* A datagram that claims to be a REQUEST but does not decode: tell the
 * client why (it gets nothing else), as far as the size rule allows. */
static ssize_t on_bad_request(struct dgram_ctx *ctx, uint8_t *buf, size_t len, size_t cap, int err,
                              const char *problem)
{
        const uint8_t *header;
        struct wire_reader r;
        uint32_t client_id = 0;
        char text[160];

        wire_reader_init(&r, buf, len);
        if (wire_get_view(&r, NL_XFER_HEADER_SIZE, &header) < 0 || wire_get_u32be(&r, &client_id) < 0 ||
            client_id == 0) {
                dgram_count_drop(ctx);
                return -1;
        }
        if (err == -EPROTONOSUPPORT)
                (void) xsnprintf(text, sizeof text, "unsupported transfer version %u (this server speaks "
                                 "version %u)", header[2], NL_XFER_VERSION);
        else
                (void) xsnprintf(text, sizeof text, "%s", problem ? problem : "malformed REQUEST");

        unsigned status = err == -EPROTONOSUPPORT ? NL_STATUS_UNSUPPORTED : nl_status_from_errno(err);
        ssize_t n = reply_error(buf, len, cap, client_id, status, text);
        log_refusal(ctx, NULL, 0, NULL, len, n, nl_status_name(status), text);
        return n;
}

static ssize_t busy(struct dgram_ctx *ctx, const struct xfer_packet *p, uint8_t *buf, size_t len,
                    size_t cap, const char *text)
{
        struct file_request req;
        uint8_t file[NL_PATH_MAX];
        size_t file_len = 0;
        uint64_t offset = 0;

        /* Copied out first: the reply overwrites the request in buf. */
        bool named = request_file(p, &req);
        if (named) {
                memcpy(file, req.path, req.path_len);
                file_len = req.path_len;
                offset = req.offset;
        }
        ssize_t n = reply_error(buf, len, cap, p->client_id, NL_STATUS_BUSY, text);
        log_refusal(ctx, named ? file : NULL, file_len, named ? &offset : NULL, len, n, "busy", text);
        return n;
}

static ssize_t file_udp_on_datagram(void *state, struct dgram_ctx *ctx, uint8_t *buf, size_t len, size_t cap)
{
        struct file_udp_state *st = state;
        const struct file_options *o = st->o;
        struct xfer_packet p;
        char text[200];

        int r = xfer_packet_decode(buf, len, &p);
        if (r < 0) {
                /* Only a would-be REQUEST hears why; anything else (a late ACK
                 * of a finished transfer, junk) is dropped and counted. */
                if (xfer_is_packet(buf, len) && len >= NL_XFER_HEADER_SIZE && buf[3] == NL_XFER_REQUEST)
                        return on_bad_request(ctx, buf, len, cap, r, p.problem);
                dgram_count_drop(ctx);
                return -1;
        }
        if (p.type != NL_XFER_REQUEST) {
                dgram_count_drop(ctx);
                return -1;
        }

        /* Address validation first: until the cookie comes back, the source
         * address is only a claim and earns 29 bytes, nothing kept. */
        if (p.cookie_len == 0)
                return reply_retry(st, ctx, buf, cap, p.client_id);
        switch (file_udp_cookie_check(&st->key, ctx->now_usec, p.client_id, ctx->peer, p.cookie,
                                      p.cookie_len)) {
        case FILE_UDP_COOKIE_VALID:
                break;
        case FILE_UDP_COOKIE_EXPIRED:
                return reply_retry(st, ctx, buf, cap, p.client_id);
        default:
                dgram_count_drop(ctx);
                return -1;
        }

        /* A retransmitted REQUEST of a running transfer: its child answers
         * (it resends ACCEPT on its own timer). */
        struct in6_addr addr;
        children_source_key(ctx->peer, &addr);
        if (file_udp_table_find(&st->table, &addr, ctx->peer_port, p.client_id))
                return -1;

        if (st->table.n >= (size_t) o->max_transfers) {
                (void) xsnprintf(text, sizeof text,
                                 "server busy: all %lld transfers of this listener are running, "
                                 "try again later", (long long) o->max_transfers);
                return busy(ctx, &p, buf, len, cap, text);
        }
        if (file_udp_table_count_source(&st->table, &addr) >= (size_t) o->max_transfers_per_source) {
                struct conn peer = {};
                conn_set_peer(&peer, ctx->peer, ctx->peer_len);
                (void) xsnprintf(text, sizeof text,
                                 "server busy: %s already has %lld transfer(s) running, the most one "
                                 "address may have; try again later", peer.remote_addr,
                                 (long long) o->max_transfers_per_source);
                return busy(ctx, &p, buf, len, cap, text);
        }

        struct xfer_send_request req = { .o = o, .req = p, .peer_len = ctx->peer_len };
        memcpy(&req.peer, ctx->peer, ctx->peer_len < sizeof req.peer ? ctx->peer_len : sizeof req.peer);
        pid_t pid = dgram_spawn(ctx, xfer_send_run, &req, text, sizeof text);
        if (pid < 0) {
                if (pid != -EBUSY && pid != -EUSERS) {
                        log_error_errno((int) pid, "listener '%s': cannot start a transfer", ctx->listener->name);
                        (void) xsnprintf(text, sizeof text, "server busy: cannot start a worker, try again later");
                }
                return busy(ctx, &p, buf, len, cap, text);
        }

        struct file_udp_transfer e = {
                .pid = pid, .addr = addr, .port = ctx->peer_port, .client_id = p.client_id,
        };
        (void) file_udp_table_add(&st->table, &e); /* fits: n < max_transfers <= cap */
        return -1;
}

const struct service svc_file_udp = {
        .name = "file",
        .socktype = SOCK_DGRAM,
        .summary = "download files beneath a root directory over UDP, whole or resumed: a reliable "
                   "windowed transfer per request, in a child on the listener's port (issue 5)",
        .keys = file_udp_keys,
        .options_size = sizeof(struct file_options),
        .options_check = file_options_check,
        /* Only RETRY and ERROR leave the listener socket; the transfer's
         * datagrams leave the child's. */
        .dgram_amplify = NL_XFER_AMPLIFY,
        .dgram_reply_max = ERROR_FIXED + NL_ERROR_TEXT_MAX,
        .dgram_state_new = file_udp_state_new,
        .dgram_state_free = file_udp_state_free,
        .on_datagram = file_udp_on_datagram,
        .dgram_child_exited = file_udp_child_exited,
        .dgram_reuseport = true,
};
