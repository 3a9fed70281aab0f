/* main.c: netlabd's supervisor: arguments, config, the event loop, sd_notify.
 *
 * Nothing protocol-specific lives here.  The supervisor binds or adopts the
 * listening sockets, forks a child per client (listener.c), reaps children on
 * SIGCHLD, reloads on SIGHUP (all-or-nothing) and stops on SIGTERM/SIGINT
 * after a grace period.  Started as root with `user` in the config, it drops
 * to that user (privs.h) once the sockets are bound, before it serves. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "netlab-config.h"
#include "privs.h"
#include "service.h"
#include "util.h"

#define DEFAULT_CONFIG NETLAB_SYSCONFDIR "/netlab/netlabd.conf"
/* After the grace period children get SIGTERM, then this long before SIGKILL. */
#define KILL_DELAY_USEC (2u * 1000000u)
#define STATUS_INTERVAL_USEC (1000u * 1000u)

static const char *arg_config = DEFAULT_CONFIG;
static bool arg_check_config = false;
static int arg_log_target = -1; /* enum log_target, or -1: from the config */

static void help(void)
{
        printf("Usage: netlabd [OPTIONS]\n"
               "\n"
               "The netlab daemon: serves the socket-lab protocols (message, ...) on the\n"
               "listeners of its config file. Stays in the foreground; stop it with SIGTERM,\n"
               "reload its config with SIGHUP.\n"
               "\n"
               "Options:\n"
               "  -c, --config=PATH      config file (default: %s)\n"
               "      --check-config     check the config file, print every problem with its\n"
               "                         line number, and exit (0: valid, 1: not)\n"
               "      --log-target=T     auto, journal or stderr (overrides log.target)\n"
               "      --list-keys        print every config key with its type, range and default\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version\n"
               "\n"
               "See netlabd(8) and netlabd.conf(5).\n",
               DEFAULT_CONFIG);
}

enum { ARG_CHECK_CONFIG = 0x100, ARG_LOG_TARGET, ARG_LIST_KEYS };

/* Return: 1 to go on, 0 to exit successfully, negative on a usage error. */
static int parse_argv(int argc, char **argv)
{
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "list-keys", no_argument, NULL, ARG_LIST_KEYS },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":c:hV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case ARG_LOG_TARGET:
                        if (strcmp(optarg, "auto") == 0)
                                arg_log_target = LOG_TARGET_AUTO;
                        else if (strcmp(optarg, "journal") == 0)
                                arg_log_target = LOG_TARGET_JOURNAL;
                        else if (strcmp(optarg, "stderr") == 0)
                                arg_log_target = LOG_TARGET_STDERR;
                        else {
                                fprintf(stderr, "netlabd: --log-target: \"%s\" is not auto, journal or stderr\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_LIST_KEYS:
                        config_list_keys(stdout);
                        return 0;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("netlabd %s\n", NETLAB_VERSION);
                        return 0;
                case ':':
                        fprintf(stderr, "netlabd: option %s needs a value\n", argv[optind - 1]);
                        return -EINVAL;
                default:
                        fprintf(stderr, "netlabd: unknown option %s (see --help)\n", argv[optind - 1]);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "netlabd: unexpected argument \"%s\" (see --help)\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static void report_to_stderr(const char *file, int line, const char *message, void *userdata)
{
        if (line > 0)
                fprintf(stderr, "%s:%d: %s\n", file, line, message);
        else
                fprintf(stderr, "%s: %s\n", file, message);
}

static void report_to_log(const char *file, int line, const char *message, void *userdata)
{
        if (line > 0)
                log_msg(LOG_ERR, "%s:%d: %s", file, line, message);
        else
                log_msg(LOG_ERR, "%s: %s", file, message);
}

static void apply_log_settings(const struct config *c)
{
        log_setup(arg_log_target >= 0 ? (enum log_target) arg_log_target : c->log_target, c->log_level);
}

static bool streq_null(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* Decide, before any socket exists, whether netlabd drops root once its
 * sockets are bound, and to whom.
 * Return: 1 and *ret: a drop is due; 0: none (not root, or no user: logged);
 * negative errno: the user cannot be used (logged), do not start. */
static int plan_privileges(const struct config *c, struct privs_target *ret)
{
        struct privs_target t;
        char why[256];
        int line = 0;

        if (geteuid() != 0) {
                if (!c->user)
                        return 0;
                /* Under systemd's User= the user is already who we are. */
                if (privs_lookup(c, &t, why, sizeof why, &line) >= 0 && t.uid == geteuid())
                        log_msg(LOG_DEBUG, "not root: already running as user %s", c->user);
                else
                        log_msg(LOG_NOTICE, "not root: user = \"%s\" ignored (running as uid %u)", c->user,
                                (unsigned) geteuid());
                return 0;
        }
        if (!c->user) {
                log_msg(LOG_WARNING, "running as root, and staying root while serving: "
                        "set user = \"netlab\"; (or another unprivileged user) in %s "
                        "to drop root once the listeners are bound", c->path);
                return 0;
        }
        int r = privs_lookup(c, ret, why, sizeof why, &line);
        if (r < 0) {
                log_msg(LOG_ERR, "%s:%d: %s; not starting", c->path, line, why);
                return r;
        }
        return 1;
}

/* One key of the user and group that a reload would change. */
static void warn_kept(const struct config *next, const char *key, const char *want, int line,
                      const char *have, const char *have_unset)
{
        char kept[80];

        if (have)
                (void) xsnprintf(kept, sizeof kept, "\"%s\"", have);
        else
                (void) xsnprintf(kept, sizeof kept, "%s", have_unset);
        if (want)
                log_msg(LOG_WARNING, "%s:%d: %s = \"%s\" needs a restart; keeping %s", next->path, line, key,
                        want, kept);
        else
                log_msg(LOG_WARNING, "%s: %s removed: that needs a restart; keeping %s", next->path, key,
                        kept);
}

/* The user and group are taken at startup only: a reload keeps the running
 * ones (in next too, so that the next reload compares with them), says so,
 * and applies the rest. */
static void keep_privileges(struct config *running, struct config *next)
{
        if (!streq_null(running->user, next->user))
                warn_kept(next, "user", next->user, next->user_line, running->user, "no user");
        if (!streq_null(running->group, next->group))
                warn_kept(next, "group", next->group, next->group_line, running->group,
                          "the user's primary group");

        char *user = next->user, *group = next->group;
        int user_line = next->user_line, group_line = next->group_line;
        next->user = running->user;
        next->group = running->group;
        next->user_line = running->user_line;
        next->group_line = running->group_line;
        running->user = user;
        running->group = group;
        running->user_line = user_line;
        running->group_line = group_line;
}

static void notify_status(struct daemon *d, const char *prefix)
{
        uint64_t requests = __atomic_load_n(&d->stats->requests, __ATOMIC_RELAXED);
        uint64_t out = __atomic_load_n(&d->stats->bytes_out, __ATOMIC_RELAXED);

        (void) sd_notifyf(false, "%sSTATUS=%s%zu clients being served, %zu listeners; "
                          "%llu requests done, %llu bytes served, %llu refused as busy",
                          prefix ? prefix : "", d->stopping ? "Stopping: " : "",
                          d->children.n, d->n_listeners, (unsigned long long) requests,
                          (unsigned long long) out, (unsigned long long) d->n_refused);
        d->status_dirty = false;
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        /* Bytes served change in the children, so refresh while any run. */
        if (d->status_dirty || d->children.n > 0)
                notify_status(d, NULL);
        (void) sd_event_source_set_time_relative(s, STATUS_INTERVAL_USEC);
        return 0;
}

static void on_child_exit(const struct child *c, const siginfo_t *si, void *userdata)
{
        struct daemon *d = userdata;

        /* A transfer child of a udp listener leaves that listener's table. */
        listeners_child_exited(d, c->pid);

        if (si->si_code == CLD_EXITED) {
                if (si->si_status != 0)
                        log_msg(LOG_WARNING, "child %d (listener '%s') exited with status %d",
                                (int) c->pid, c->listener, si->si_status);
                return;
        }
        /* Killed: our own shutdown signals are expected; anything else is a bug. */
        if (c->signalled && (si->si_status == SIGTERM || si->si_status == SIGKILL))
                log_msg(LOG_NOTICE, "child %d (listener '%s') ended by shutdown (%s)",
                        (int) c->pid, c->listener, strsignal(si->si_status));
        else
                log_msg(LOG_ERR, "child %d (listener '%s') killed by signal %d (%s)%s",
                        (int) c->pid, c->listener, si->si_status, strsignal(si->si_status),
                        si->si_code == CLD_DUMPED ? ", core dumped" : "");
}

static int on_sigchld(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct daemon *d = userdata;

        if (children_reap(&d->children, on_child_exit, d) > 0)
                daemon_status_changed(d);
        if (d->stopping && d->children.n == 0)
                return sd_event_exit(d->event, 0);
        return 0;
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        size_t n = children_signal_all(&d->children, SIGKILL);
        if (n > 0)
                log_msg(LOG_WARNING, "%zu child(ren) ignored SIGTERM, killed", n);
        return 0;
}

static int on_grace_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        size_t n = children_signal_all(&d->children, SIGTERM);
        log_msg(LOG_NOTICE, "grace period of %llds over, ending %zu client(s)",
                (long long) d->config->limits.grace_period, n);
        d->grace_timer = sd_event_source_disable_unref(d->grace_timer);
        if (sd_event_add_time_relative(d->event, &d->grace_timer, CLOCK_MONOTONIC, KILL_DELAY_USEC, 0,
                                       on_kill_timer, d) < 0)
                (void) children_signal_all(&d->children, SIGKILL);
        return 0;
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct daemon *d = userdata;

        if (d->stopping) {
                log_msg(LOG_NOTICE, "%s again: ending all clients now", strsignal((int) si->ssi_signo));
                (void) children_signal_all(&d->children, SIGKILL);
                return 0;
        }

        d->stopping = true;
        (void) sd_notify(false, "STOPPING=1");
        listeners_close_all(d);
        refusals_free_all(d);
        notify_status(d, NULL);

        if (d->children.n == 0) {
                log_msg(LOG_INFO, "%s: stopping", strsignal((int) si->ssi_signo));
                return sd_event_exit(d->event, 0);
        }

        log_msg(LOG_INFO, "%s: stopped accepting; waiting up to %llds for %zu client(s)",
                strsignal((int) si->ssi_signo), (long long) d->config->limits.grace_period, d->children.n);
        if (sd_event_add_time_relative(d->event, &d->grace_timer, CLOCK_MONOTONIC,
                                       (uint64_t) d->config->limits.grace_period * 1000000u, 0,
                                       on_grace_timer, d) < 0)
                (void) on_grace_timer(NULL, 0, d);
        return 0;
}

static int on_log_relay(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        int r = log_relay_dispatch(fd);

        if (r < 0)
                log_error_errno(r, "cannot read the journal relay");
        return 0;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct daemon *d = userdata;
        struct config *next = NULL;

        if (d->stopping)
                return 0;

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading %s",
                          (unsigned long long) now_usec(), d->config_path);
        log_msg(LOG_INFO, "SIGHUP: reloading %s", d->config_path);

        int r = config_load(d->config_path, report_to_log, NULL, &next);
        if (r < 0)
                log_msg(LOG_ERR, "reload refused: %s has errors (above); still serving the previous config",
                        d->config_path);
        else {
                r = listeners_apply(d, next);
                if (r < 0) {
                        log_msg(LOG_ERR, "reload refused: could not set up the new listeners; "
                                "still serving the previous config");
                        next = config_free(next);
                } else {
                        keep_privileges(d->config, next);
                        config_free(d->config);
                        d->config = TAKE_PTR(next);
                        apply_log_settings(d->config);
                        log_msg(LOG_INFO, "reloaded %s: %zu listener(s)", d->config_path, d->n_listeners);
                }
        }

        notify_status(d, "READY=1\n");
        return 0;
}

static int run(struct daemon *d)
{
        sigset_t mask;
        int r;

        /* sd-event needs the signals blocked; SIGPIPE is never wanted (we use
         * MSG_NOSIGNAL, but a library might not). */
        (void) signal(SIGPIPE, SIG_IGN);
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        (void) sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "cannot block signals");

        r = sd_event_new(&d->event);
        if (r < 0)
                return log_error_errno(r, "cannot create the event loop");

        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_terminate, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, on_terminate, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_reload, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGCHLD, on_sigchld, d)) < 0)
                return log_error_errno(r, "cannot watch signals");

        d->stats = mmap(NULL, sizeof *d->stats, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (d->stats == MAP_FAILED) {
                d->stats = NULL;
                return log_error_errno(errno, "cannot map the shared counters");
        }

        ssize_t trimmed = children_trim_fork_image();
        if (trimmed < 0)
                log_error_errno((int) trimmed, "cannot trim the children's address space, continuing");
        else
                log_msg(LOG_DEBUG, "children will not inherit %zd bytes of unused libraries", trimmed);

        struct privs_target target;
        r = plan_privileges(d->config, &target);
        if (r < 0)
                return r;
        bool drop = r > 0;
        d->socket_owner_set = drop;
        d->socket_owner = drop ? target.uid : 0;

        r = listeners_collect_activated(d);
        if (r < 0)
                return r;
        r = listeners_apply(d, d->config);
        if (r < 0)
                return r;
        listeners_drop_unused_spares(d);

        /* Every socket is bound (ports below 1024 too) and nothing is served
         * yet: root is not needed any more. */
        if (drop) {
                r = privs_drop(&target, d->config->log_level);
                if (r < 0)
                        return r;
                d->socket_owner_set = false;
        }

        /* Pings WATCHDOG=1 at half of WATCHDOG_USEC while the loop runs. */
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                log_error_errno(r, "cannot set up the watchdog, continuing without it");

        r = sd_event_add_time_relative(d->event, &d->status_timer, CLOCK_MONOTONIC, STATUS_INTERVAL_USEC,
                                       0, on_status_timer, d);
        if (r < 0)
                return log_error_errno(r, "cannot add the status timer");

        /* Children's journal entries reach journald through the supervisor,
         * so they keep the unit (log.c). Opened before anything is forked. */
        int relay = log_relay_open();
        if (relay >= 0) {
                r = sd_event_add_io(d->event, NULL, relay, EPOLLIN, on_log_relay, NULL);
                if (r < 0)
                        return log_error_errno(r, "cannot watch the journal relay");
        } else if (relay != -EOPNOTSUPP)
                log_error_errno(relay, "cannot open the journal relay, children will log directly");

        log_msg(LOG_INFO, "netlabd %s ready: %zu listener(s) from %s", NETLAB_VERSION, d->n_listeners,
                d->config_path);
        notify_status(d, "READY=1\n");

        r = sd_event_loop(d->event);
        if (relay >= 0)
                (void) log_relay_dispatch(relay); /* the last children's entries */
        if (r < 0)
                return log_error_errno(r, "event loop failed");
        log_msg(LOG_INFO, "stopped");
        return 0;
}

int main(int argc, char **argv)
{
        struct daemon d = {};
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        if (arg_check_config) {
                struct config *c = NULL;
                r = config_load(arg_config, report_to_stderr, NULL, &c);
                if (r < 0)
                        return 1;
                /* The user matters only to a netlabd started as root (the
                 * systemd unit starts it as the user already), so only then
                 * must it exist. */
                if (geteuid() == 0 && c->user) {
                        struct privs_target t;
                        char why[256];
                        int line = 0;

                        if (privs_lookup(c, &t, why, sizeof why, &line) < 0) {
                                report_to_stderr(arg_config, line, why, NULL);
                                config_free(c);
                                return 1;
                        }
                }
                printf("%s: ok, %zu listener(s)\n", arg_config, c->n_listeners);
                config_free(c);
                return 0;
        }

        /* Problems in the config go to stderr at startup: systemd puts them in
         * the journal, a person sees them on the terminal. */
        r = config_load(arg_config, report_to_stderr, NULL, &d.config);
        if (r < 0) {
                fprintf(stderr, "netlabd: %s: not starting, the config has errors\n", arg_config);
                return 1;
        }
        apply_log_settings(d.config);

        d.config_path = strdup(arg_config);
        if (!d.config_path)
                return 1;

        r = run(&d);

        listeners_close_all(&d);
        refusals_free_all(&d);
        children_forget_all(&d.children);
        sd_event_source_disable_unref(d.grace_timer);
        sd_event_source_disable_unref(d.status_timer);
        sd_event_unref(d.event);
        if (d.stats)
                (void) munmap(d.stats, sizeof *d.stats);
        config_free(d.config);
        free(d.config_path);
        return r < 0 ? 1 : 0;
}
