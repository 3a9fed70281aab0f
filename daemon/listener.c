/* listener.c: the service table, listening sockets, accept and dispatch.
 *
 * Runs in the supervisor.  Binds (or adopts from systemd) one socket per
 * configured listener, accepts without blocking, checks the limits, and forks
 * one child per connection; a connection over a limit gets the service's
 * "busy" refusal instead, answered here without blocking.  Datagram services
 * get their children through dgram_spawn() (here too: one place forks).
 * Reload swaps the set of sockets all-or-nothing.  Before a drop of root
 * (privs.h), the sockets bound here get the future user as their owner. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "conn.h"
#include "daemon.h"
#include "dgram.h"
#include "log.h"
#include "netlab-config.h"
#include "privs.h"
#include "proto.h"
#include "service.h"
#include "util.h"

extern const struct service svc_message;
extern const struct service svc_file_tcp;
extern const struct service svc_file_udp;
extern const struct service svc_echo;
extern const struct service svc_guess;

static const struct service *const services[] = {
        &svc_message,
        &svc_file_tcp,
        &svc_file_udp,
        &svc_echo,
        &svc_guess,
};

const struct service *service_find(const char *name, int socktype)
{
        for (size_t i = 0; i < ELEMENTSOF(services); i++)
                if (strcmp(services[i]->name, name) == 0 &&
                    (socktype == 0 || services[i]->socktype == socktype))
                        return services[i];
        return NULL;
}

const struct service *const *service_table(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(services);
        return services;
}

int service_refuse_in_form(int fd, const uint8_t *first, size_t n_first, uint8_t frame_type,
                           unsigned status, const char *text)
{
        uint8_t buf[NL_HEADER_SIZE + NL_ERROR_TEXT_MAX + 16];
        size_t len = strlen(text);
        int n;

        if (len > NL_ERROR_TEXT_MAX)
                len = NL_ERROR_TEXT_MAX;
        if (nl_is_frame_start(first, n_first))
                n = nl_frame_encode(buf, sizeof buf, frame_type, (uint8_t) status, text, len);
        else
                n = xsnprintf((char *) buf, sizeof buf, "error: %.*s\n", (int) len, text);
        if (n < 0)
                return n;

        /* The socket buffer of a fresh connection is empty, so this small
         * write does not block; a short write only loses the tail of a
         * refusal. */
        if (send(fd, buf, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                return -errno;
        return 0;
}

/* ---- refusals: busy answers written without blocking the supervisor ---- */

/* At most this many refused connections are kept open at once while we wait
 * for their first byte or drain them; past it, refusals are written blind and
 * closed at once, so a flood cannot grow the supervisor. */
#define REFUSALS_MAX 128
#define REFUSAL_WAIT_USEC (1000u * 1000u)

struct refusal {
        struct daemon *daemon;
        int fd;
        const struct service *service;
        unsigned status;
        char text[160];
        bool answered;
        sd_event_source *io;
        sd_event_source *timer;
        struct refusal *prev, *next;
};

static void refusal_free(struct refusal *r)
{
        struct daemon *d = r->daemon;

        if (r->prev)
                r->prev->next = r->next;
        else
                d->refusals = r->next;
        if (r->next)
                r->next->prev = r->prev;
        d->n_refusals--;

        sd_event_source_disable_unref(r->io);
        sd_event_source_disable_unref(r->timer);
        safe_close(r->fd);
        free(r);
}

void refusals_free_all(struct daemon *d)
{
        while (d->refusals)
                refusal_free(d->refusals);
}

/* Discard what the client sent so far. Return: true on EOF. */
static bool drain(int fd)
{
        uint8_t sink[4096];

        for (int i = 0; i < 16; i++) {
                ssize_t k = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
                if (k == 0)
                        return true;
                if (k < 0)
                        return errno != EAGAIN && errno != EINTR;
        }
        return false;
}

static void refusal_answer(int fd, const struct service *svc, unsigned status, const char *text)
{
        uint8_t first = 0;
        ssize_t k = recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);

        (void) drain(fd);
        (void) svc->refuse_stream(fd, &first, k > 0 ? 1 : 0, status, text);
        (void) shutdown(fd, SHUT_WR); /* ENOTCONN if the client already left: fine */
}

static int on_refusal_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct refusal *r = userdata;

        if (!r->answered) {
                refusal_answer(r->fd, r->service, r->status, r->text);
                r->answered = true;
                return 0;
        }
        if (drain(r->fd) || (revents & (EPOLLERR | EPOLLHUP)))
                refusal_free(r);
        return 0;
}

static int on_refusal_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct refusal *r = userdata;

        if (!r->answered)
                refusal_answer(r->fd, r->service, r->status, r->text);
        refusal_free(r);
        return 0;
}

static void refuse(struct daemon *d, struct listener *l, int fd, unsigned status, const char *text)
{
        const struct service *svc = l->cfg->service;
        struct refusal *r = NULL;
        uint8_t first;

        d->n_refused++;

        /* Answer at once when we can: the client already sent its first byte,
         * or the service does not care, or too many refusals are pending. */
        bool ready = !svc->refuse_wants_first_byte ||
                     recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
        if (ready || d->n_refusals >= REFUSALS_MAX) {
                refusal_answer(fd, svc, status, text);
                if (d->n_refusals >= REFUSALS_MAX) {
                        safe_close(fd);
                        return;
                }
        }

        r = calloc(1, sizeof *r);
        if (!r) {
                safe_close(fd);
                return;
        }
        *r = (struct refusal) {
                .daemon = d, .fd = fd, .service = svc, .status = status, .answered = ready,
        };
        (void) xsnprintf(r->text, sizeof r->text, "%s", text);

        if (sd_event_add_io(d->event, &r->io, fd, EPOLLIN | EPOLLRDHUP, on_refusal_io, r) < 0 ||
            sd_event_add_time_relative(d->event, &r->timer, CLOCK_MONOTONIC, REFUSAL_WAIT_USEC, 0,
                                       on_refusal_timer, r) < 0) {
                sd_event_source_disable_unref(r->io);
                if (!r->answered)
                        refusal_answer(fd, svc, status, text);
                safe_close(fd);
                free(r);
                return;
        }

        r->next = d->refusals;
        if (d->refusals)
                d->refusals->prev = r;
        d->refusals = r;
        d->n_refusals++;
}

/* What a client over a global limit is told; r: children_check_limits()'s. */
static void busy_text(const struct limits_config *lim, int r, const char *remote_addr, char *buf, size_t size)
{
        if (r == -EBUSY)
                (void) xsnprintf(buf, size, "server busy: all %lld client slots are in use, try again later",
                                 (long long) lim->max_children);
        else
                (void) xsnprintf(buf, size,
                                 "server busy: %s already has %lld connection(s) being served, "
                                 "the most one address may have; try again later",
                                 remote_addr, (long long) lim->max_per_source);
}

/* ---- the child ---- */

static void reset_signals(void)
{
        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
        sigset_t none;

        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                (void) signal(sigs[i], SIG_DFL);
        /* SIGPIPE stays ignored: sendfile(2) has no MSG_NOSIGNAL, and a client
         * that resets mid-download must give EPIPE and a log entry, not a
         * child killed by a signal. */
        (void) signal(SIGPIPE, SIG_IGN);
        (void) sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

/* A child's last step: its request counts and bytes go to the shared stats. */
static _Noreturn void child_exit(struct daemon *d, int r, uint64_t bytes_in, uint64_t bytes_out)
{
        __atomic_add_fetch(&d->stats->requests, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&d->stats->bytes_in, bytes_in, __ATOMIC_RELAXED);
        __atomic_add_fetch(&d->stats->bytes_out, bytes_out, __ATOMIC_RELAXED);
        _exit(r == -ENOMEM ? 1 : 0);
}

static _Noreturn void child_main(struct daemon *d, struct listener *l, int fd,
                                 const struct sockaddr *sa, socklen_t salen)
{
        /* The parent blocked signals for sd-event; the mask is inherited. */
        reset_signals();
        listeners_close_in_child(d);

        struct conn c = {
                .fd = fd,
                .listener = l->cfg,
                .limits = &d->config->limits,
        };
        conn_set_peer(&c, sa, salen);
        c.start_usec = now_usec();
        c.deadline_usec = c.start_usec + (uint64_t) d->config->limits.total_timeout * 1000000u;

        int r = l->cfg->service->serve_stream(&c);
        if (c.fd >= 0)
                c.fd = safe_close(c.fd);

        child_exit(d, r, c.bytes_in, c.bytes_out);
}

/* ---- children of datagram services ---- */

pid_t dgram_spawn(struct dgram_ctx *ctx, dgram_child_fn fn, void *userdata, char *ret_text, size_t text_size)
{
        struct daemon *d = ctx->dgram->daemon;
        struct in6_addr source;

        if (!d)
                return -EOPNOTSUPP;

        const struct limits_config *lim = &d->config->limits;
        children_source_key(ctx->peer, &source);
        int r = children_check_limits(&d->children, &source, (uint64_t) lim->max_children,
                                      (uint64_t) lim->max_per_source);
        if (r < 0) {
                struct conn peer = {};
                conn_set_peer(&peer, ctx->peer, ctx->peer_len);
                busy_text(lim, r, peer.remote_addr, ret_text, text_size);
                d->n_refused++;
                return r;
        }

#if HAVE__FORK
        pid_t pid = _Fork();
#else
        pid_t pid = fork();
#endif
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                reset_signals();
                listeners_close_in_child(d);

                struct dgram_child c = {
                        .listener = ctx->listener,
                        .limits = lim,
                        .start_usec = now_usec(),
                };
                r = fn(&c, userdata);
                child_exit(d, r, c.bytes_in, c.bytes_out);
        }

        if (children_add(&d->children, pid, &source, ctx->listener->name) < 0) {
                /* As for a stream child: not run untracked.  It is reaped
                 * unknown, so no service hears of it. */
                log_msg(LOG_ERR, "out of memory recording child %d, ending it", (int) pid);
                (void) kill(pid, SIGKILL);
                return -ENOMEM;
        }
        d->n_accepted++;
        daemon_status_changed(d);
        return pid;
}

void listeners_child_exited(struct daemon *d, pid_t pid)
{
        /* Every udp listener's service may own it: after a reload that
         * renamed a listener the child's recorded name no longer matches,
         * but its state (handed over) still holds the pid. */
        for (size_t i = 0; i < d->n_listeners; i++)
                dgram_child_exited(d->listeners[i]->dg, pid);
}

/* ---- accepting ---- */

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct listener *l = userdata;

        l->retry = sd_event_source_disable_unref(l->retry);
        if (l->io)
                (void) sd_event_source_set_enabled(l->io, SD_EVENT_ON);
        return 0;
}

/* A shortage lasts as long as its cause, and a warning per 100 ms pause
 * would be ten lines a second for all that time: one warning per interval,
 * counting the pauses it did not log. */
#define PAUSE_LOG_INTERVAL_USEC (10u * 1000u * 1000u)
static uint64_t pause_logged_usec;
static unsigned n_pauses_unlogged;

/* Out of descriptors or memory: stop polling this listener for a moment
 * instead of spinning on a socket we cannot accept from (OpenBSD's
 * FD_RESERVE idea), and try again from a timer. */
static void pause_listener(struct listener *l, int err)
{
        uint64_t now = now_usec();

        if (pause_logged_usec == 0 || now - pause_logged_usec >= PAUSE_LOG_INTERVAL_USEC) {
                if (n_pauses_unlogged > 0)
                        log_msg(LOG_WARNING, "listener '%s': accept failed: %s; pausing it for 100 ms "
                                "(%u more pause(s) since the last warning)", l->cfg->name, strerror(err),
                                n_pauses_unlogged);
                else
                        log_msg(LOG_WARNING, "listener '%s': accept failed: %s; pausing it for 100 ms",
                                l->cfg->name, strerror(err));
                pause_logged_usec = now;
                n_pauses_unlogged = 0;
        } else {
                n_pauses_unlogged++;
        }
        (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
        if (!l->retry &&
            sd_event_add_time_relative(l->daemon->event, &l->retry, CLOCK_MONOTONIC, 100 * 1000, 0,
                                       on_retry, l) < 0)
                (void) sd_event_source_set_enabled(l->io, SD_EVENT_ON);
}

static void handle_connection(struct listener *l, int fd, const struct sockaddr_storage *ss,
                              socklen_t len)
{
        struct daemon *d = l->daemon;
        const struct limits_config *lim = &d->config->limits;
        struct in6_addr source;
        char text[160];

        children_source_key((const struct sockaddr *) ss, &source);
        int r = children_check_limits(&d->children, &source, (uint64_t) lim->max_children,
                                      (uint64_t) lim->max_per_source);
        if (r < 0) {
                struct conn peer = {};
                conn_set_peer(&peer, (const struct sockaddr *) ss, len);
                busy_text(lim, r, peer.remote_addr, text, sizeof text);
                log_request(&(struct request_log) {
                        .listener = l->cfg->name, .service = l->cfg->service->name,
                        .remote_addr = peer.remote_addr, .remote_port = peer.remote_port,
                        .result = "busy", .detail = text, .priority = LOG_NOTICE,
                });
                refuse(d, l, fd, NL_STATUS_BUSY, text);
                return;
        }

        /* The supervisor is single-threaded, so glibc's atfork work (locking
         * and resetting malloc and stdio for threads) buys nothing here and
         * costs copy-on-write faults in every child. */
#if HAVE__FORK
        pid_t pid = _Fork();
#else
        pid_t pid = fork();
#endif
        if (pid < 0) {
                log_error_errno(errno, "listener '%s': cannot fork a child", l->cfg->name);
                refuse(d, l, fd, NL_STATUS_BUSY, "server busy: cannot start a worker, try again later");
                return;
        }
        if (pid == 0)
                child_main(d, l, fd, (const struct sockaddr *) ss, len);

        safe_close(fd);
        if (children_add(&d->children, pid, &source, l->cfg->name) < 0) {
                /* Without a record we could not enforce limits or reap it
                 * knowingly: end it now rather than run it untracked. */
                log_msg(LOG_ERR, "out of memory recording child %d, ending it", (int) pid);
                (void) kill(pid, SIGKILL);
        }
        d->n_accepted++;
        daemon_status_changed(d);
}

static int on_accept(sd_event_source *s, int lfd, uint32_t revents, void *userdata)
{
        struct listener *l = userdata;

        /* A bounded batch per wakeup keeps other listeners and signals served. */
        for (int i = 0; i < 64 && !l->daemon->stopping; i++) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof ss;
                int fd = accept4(lfd, (struct sockaddr *) &ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (fd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
                            errno == EPERM)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                pause_listener(l, errno);
                                break;
                        }
                        log_error_errno(errno, "listener '%s': accept failed", l->cfg->name);
                        break;
                }
                handle_connection(l, fd, &ss, len);
        }
        return 0;
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct listener *l = userdata;

        if (l->dg && !l->daemon->stopping)
                dgram_process(l->dg, fd);
        return 0;
}

/* ---- binding and adopting sockets ---- */

/* A socket for lc, bound (and listening for TCP).  reuseport: set
 * SO_REUSEPORT before bind.  Its owner uid is d->socket_owner when set (a
 * drop of privileges is coming), else ours.  Return: the fd, or negative
 * errno. */
static int bind_one(const struct daemon *d, const struct listener_config *lc, bool reuseport)
{
        _cleanup_close_ int fd = -1;
        int one = 1, zero = 0;
        int type = lc->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK;

        if (d->socket_owner_set) {
                fd = privs_socket(lc->sockaddr.ss_family, type, d->socket_owner);
                if (fd < 0)
                        return fd;
        } else {
                fd = socket(lc->sockaddr.ss_family, type, 0);
                if (fd < 0)
                        return -errno;
        }
        /* Only for TCP (restarting over TIME_WAIT); on UDP it would let a
         * second program bind our port and share our datagrams. */
        if (lc->socktype == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return -errno;
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
                return -errno;
        /* "::" serves IPv4 too, whatever net.ipv6.bindv6only says. */
        if (lc->sockaddr.ss_family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
                return -errno;
        if (bind(fd, (const struct sockaddr *) &lc->sockaddr, lc->sockaddr_len) < 0)
                return -errno;
        if (lc->socktype == SOCK_STREAM && listen(fd, (int) lc->backlog) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int bind_socket(const struct daemon *d, const struct listener_config *lc)
{
        if (lc->socktype != SOCK_DGRAM || !lc->service->dgram_reuseport)
                return bind_one(d, lc, false);

        /* The service's children share the port through SO_REUSEPORT (a
         * transfer keeps the listener's port: NAT and firewalls pass it).
         * But with SO_REUSEPORT a second netlabd (same uid) could bind the
         * port too and silently get half the requests.  So bind once
         * without it first: anybody already on the port makes that fail
         * with EADDRINUSE, loudly, as for every other listener.  UDP has no
         * TIME_WAIT, so the port is free again as soon as the probe closes. */
        int probe = bind_one(d, lc, false);
        if (probe < 0)
                return probe;
        (void) close(probe);
        return bind_one(d, lc, true);
}

/* Make a socket we did not bind ourselves (passed by systemd, or kept over
 * a reload from a service that did not want it) fit lc's service: set or
 * clear SO_REUSEPORT.  It works after bind(); a child can join the port
 * only if its socket has the same owner uid as this one (else it falls
 * back to a port of its own).  Return: 0, or negative errno. */
static int fit_reuseport(int fd, const struct listener_config *lc)
{
        int want = lc->socktype == SOCK_DGRAM && lc->service->dgram_reuseport, have = 0;
        socklen_t len = sizeof have;

        if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &have, &len) < 0)
                return -errno;
        if (!have == !want)
                return 0;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &want, sizeof want) < 0)
                return -errno;
        return 0;
}

/* Does a socket systemd passed fit the listener?  Return: NULL or why not. */
static const char *check_passed(int fd, const struct listener_config *lc, char *buf, size_t size)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int family = lc->sockaddr.ss_family;

        if (sd_is_socket(fd, AF_UNSPEC, lc->socktype, lc->socktype == SOCK_STREAM ? 1 : -1) <= 0) {
                (void) xsnprintf(buf, size, "is not a %s socket",
                                 lc->socktype == SOCK_STREAM ? "listening stream" : "datagram");
                return buf;
        }
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0) {
                (void) xsnprintf(buf, size, "getsockname failed: %s", strerror(errno));
                return buf;
        }
        /* The family must match the listener's address: "::" wants an IPv6
         * socket (BindIPv6Only=both makes it serve IPv4 too), "0.0.0.0" an
         * IPv4 one. */
        if (ss.ss_family != family) {
                (void) xsnprintf(buf, size, "is %s, the listener's address is %s",
                                 ss.ss_family == AF_INET6 ? "IPv6" : ss.ss_family == AF_INET ? "IPv4" : "not IP",
                                 family == AF_INET6 ? "IPv6" : "IPv4");
                return buf;
        }
        uint16_t port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *) &ss)->sin_port);
        if (port != lc->port) {
                (void) xsnprintf(buf, size, "is bound to port %u, the listener says %lld", port,
                                 (long long) lc->port);
                return buf;
        }
        return NULL;
}

int listeners_collect_activated(struct daemon *d)
{
        char **names = NULL;
        int n = sd_listen_fds_with_names(1, &names);

        if (n <= 0) {
                if (n < 0)
                        log_error_errno(n, "cannot read the sockets passed by systemd");
                return n;
        }

        d->spares = calloc((size_t) n, sizeof *d->spares);
        if (!d->spares) {
                for (int i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                int fl = fcntl(fd, F_GETFL);
                if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                        log_error_errno(errno, "passed socket '%s': cannot make it non-blocking", names[i]);
                d->spares[d->n_spares++] = (struct spare_fd) { .name = names[i], .fd = fd };
        }
        free(names);
        log_msg(LOG_INFO, "systemd passed %d socket(s)", n);
        return n;
}

void listeners_drop_unused_spares(struct daemon *d)
{
        for (size_t i = 0; i < d->n_spares; i++)
                if (d->spares[i].fd >= 0) {
                        log_msg(LOG_WARNING,
                                "passed socket '%s' matches no listener in the config, closing it",
                                d->spares[i].name);
                        d->spares[i].fd = safe_close(d->spares[i].fd);
                }
}

static struct spare_fd *find_spare(struct daemon *d, const char *name)
{
        for (size_t i = 0; i < d->n_spares; i++)
                if (d->spares[i].fd >= 0 && strcmp(d->spares[i].name, name) == 0)
                        return &d->spares[i];
        return NULL;
}

static bool same_endpoint(const struct listener_config *a, const struct listener_config *b)
{
        return a->socktype == b->socktype && a->sockaddr_len == b->sockaddr_len &&
               memcmp(&a->sockaddr, &b->sockaddr, a->sockaddr_len) == 0;
}

static void listener_free(struct listener *l)
{
        if (!l)
                return;
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->retry);
        dgram_free(l->dg);
        dgram_free(l->dg_next);
        safe_close(l->fd);
        free(l);
}

/* A socket systemd passed goes back to its empty spare slot when its listener
 * goes away: we could not bind that port ourselves if it came back. */
static void return_to_spares(struct daemon *d, struct listener *l, const char *name)
{
        if (!l->activated)
                return;
        for (size_t k = 0; k < d->n_spares; k++)
                if (d->spares[k].fd < 0 && strcmp(d->spares[k].name, name) == 0) {
                        l->io = sd_event_source_disable_unref(l->io);
                        d->spares[k].fd = TAKE_FD(l->fd);
                        return;
                }
}

int listeners_apply(struct daemon *d, struct config *config)
{
        size_t n = config->n_listeners;
        struct listener **next = calloc(n ? n : 1, sizeof *next);
        bool *kept = calloc(d->n_listeners ? d->n_listeners : 1, sizeof *kept);
        int r = 0;

        if (!next || !kept) {
                free(next);
                free(kept);
                return log_error_errno(ENOMEM, "cannot set up listeners");
        }

        for (size_t i = 0; i < n && r >= 0; i++) {
                const struct listener_config *lc = &config->listeners[i];
                char endpoint[96];

                config_format_endpoint(lc, endpoint, sizeof endpoint);

                /* An unchanged endpoint keeps its socket: nothing queued is lost. */
                for (size_t j = 0; j < d->n_listeners; j++)
                        if (!kept[j] && same_endpoint(d->listeners[j]->cfg, lc)) {
                                kept[j] = true;
                                next[i] = d->listeners[j];
                                break;
                        }
                if (next[i])
                        continue;

                struct listener *l = calloc(1, sizeof *l);
                if (!l) {
                        r = log_error_errno(ENOMEM, "cannot set up listener '%s'", lc->name);
                        break;
                }
                l->daemon = d;
                l->fd = -1;
                next[i] = l;

                struct spare_fd *sp = find_spare(d, lc->name);
                if (sp) {
                        char why[160];
                        const char *problem = check_passed(sp->fd, lc, why, sizeof why);
                        if (problem) {
                                log_msg(LOG_ERR, "%s:%d: listener '%s': the socket systemd passed %s",
                                        config->path, lc->line, lc->name, problem);
                                r = -EINVAL;
                                break;
                        }
                        l->fd = TAKE_FD(sp->fd);
                        l->activated = true;
                        continue;
                }

                l->fd = bind_socket(d, lc);
                if (l->fd < 0) {
                        r = l->fd;
                        l->fd = -1;
                        log_msg(LOG_ERR, "%s:%d: listener '%s': cannot listen on %s/%s: %s%s",
                                config->path, lc->line, lc->name, lc->transport_name, endpoint,
                                strerror(-r),
                                r == -EADDRINUSE ? " (another program, or another listener, has that port)" :
                                r == -EACCES ? " (ports below 1024 need privileges)" :
                                r == -EADDRNOTAVAIL ? " (no interface has that address)" : "");
                }
        }

        /* Datagram listeners get a runtime for the new config; a kept one
         * hands its service state (guess rounds in play) over. */
        for (size_t i = 0; i < n && r >= 0; i++)
                if (config->listeners[i].socktype == SOCK_DGRAM)
                        r = dgram_new(d, &config->listeners[i], next[i]->dg, &next[i]->dg_next);

        if (r >= 0) {
                /* Watch the new sockets before touching anything that runs. */
                for (size_t i = 0; i < n && r >= 0; i++)
                        if (!next[i]->io) {
                                bool dgram = config->listeners[i].socktype == SOCK_DGRAM;
                                r = sd_event_add_io(d->event, &next[i]->io, next[i]->fd, EPOLLIN,
                                                    dgram ? on_datagram : on_accept, next[i]);
                                if (r < 0)
                                        log_error_errno(r, "listener '%s': cannot watch its socket",
                                                        config->listeners[i].name);
                        }
        }

        if (r < 0) {
                /* Roll back: new listeners go away, passed sockets go back to
                 * the spares, kept ones stay as they are. */
                for (size_t i = 0; i < n; i++) {
                        struct listener *l = next[i];
                        bool old = false;
                        if (l)
                                l->dg_next = dgram_free(l->dg_next);
                        for (size_t j = 0; l && j < d->n_listeners; j++)
                                old = old || d->listeners[j] == l;
                        if (!l || old)
                                continue;
                        return_to_spares(d, l, config->listeners[i].name);
                        listener_free(l);
                }
                free(next);
                free(kept);
                return r;
        }

        /* Commit: drop listeners that are gone, point the rest at the new config. */
        for (size_t j = 0; j < d->n_listeners; j++) {
                struct listener *l = d->listeners[j];
                if (kept[j])
                        continue;
                log_msg(LOG_INFO, "listener '%s' removed", l->cfg->name);
                return_to_spares(d, l, l->cfg->name);
                listener_free(l);
        }
        for (size_t i = 0; i < n; i++) {
                char endpoint[96];
                bool fresh = next[i]->cfg == NULL;

                next[i]->cfg = &config->listeners[i];
                /* A passed or kept socket may now serve a service that shares
                 * its port with children, or no longer. */
                int k = fit_reuseport(next[i]->fd, next[i]->cfg);
                if (k < 0)
                        log_error_errno(k, "listener '%s': cannot %s SO_REUSEPORT%s", next[i]->cfg->name,
                                        next[i]->cfg->service->dgram_reuseport ? "set" : "clear",
                                        next[i]->cfg->service->dgram_reuseport ?
                                        "; transfers will use ports of their own" : "");
                dgram_free(next[i]->dg);
                next[i]->dg = TAKE_PTR(next[i]->dg_next);
                if (fresh) {
                        config_format_endpoint(next[i]->cfg, endpoint, sizeof endpoint);
                        log_msg(LOG_INFO, "listener '%s': %s on %s/%s%s", next[i]->cfg->name,
                                next[i]->cfg->service->name, next[i]->cfg->transport_name, endpoint,
                                next[i]->activated ? " (socket from systemd)" : "");
                }
        }
        free(d->listeners);
        free(kept);
        d->listeners = next;
        d->n_listeners = n;
        return 0;
}

void listeners_close_all(struct daemon *d)
{
        for (size_t i = 0; i < d->n_listeners; i++)
                listener_free(d->listeners[i]);
        free(d->listeners);
        d->listeners = NULL;
        d->n_listeners = 0;
        for (size_t i = 0; i < d->n_spares; i++) {
                d->spares[i].fd = safe_close(d->spares[i].fd);
                free(d->spares[i].name);
        }
        free(d->spares);
        d->spares = NULL;
        d->n_spares = 0;
}

void listeners_close_in_child(struct daemon *d)
{
        log_relay_child();
        for (size_t i = 0; i < d->n_listeners; i++)
                (void) close(d->listeners[i]->fd);
        for (size_t i = 0; i < d->n_spares; i++)
                if (d->spares[i].fd >= 0)
                        (void) close(d->spares[i].fd);
        for (struct refusal *r = d->refusals; r; r = r->next)
                (void) close(r->fd);
}
