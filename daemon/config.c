/* config.c: libconfig file -> struct config.
 *
 * Trusts nothing in the file: every key is looked up in a table, every value
 * type- and range-checked, every problem reported with its line number, and
 * loading goes on after the first problem so one run shows them all.  A config
 * is only handed out when it had no problem at all. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "config.h"
#include "service.h"
#include "util.h"

struct config_report {
        const char *file;
        config_report_fn fn;
        void *userdata;
        unsigned n_errors;
};

static void report(struct config_report *rep, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void report_va(struct config_report *rep, const char *file, int line, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));

static void report_va(struct config_report *rep, const char *file, int line, const char *fmt, va_list ap)
{
        char msg[512], path[4096];

        if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
                (void) xsnprintf(msg, sizeof msg, "(unprintable problem)");
        /* An @include'd file is named relative to the config's directory. */
        const char *slash = strrchr(rep->file, '/');
        if (file && file[0] != '/' && slash &&
            xsnprintf(path, sizeof path, "%.*s/%s", (int) (slash - rep->file), rep->file, file) >= 0)
                file = path;
        rep->n_errors++;
        if (rep->fn)
                rep->fn(file ? file : rep->file, line, msg, rep->userdata);
}

static void report(struct config_report *rep, int line, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        report_va(rep, NULL, line, fmt, ap);
        va_end(ap);
}

static void rep_report_file(struct config_report *rep, const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void rep_report_file(struct config_report *rep, const char *file, int line, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        report_va(rep, file, line, fmt, ap);
        va_end(ap);
}

void config_report_at(struct config_report *rep, const config_setting_t *s, const char *fmt, ...)
{
        va_list ap;

        /* A setting from an @include'd file names that file. */
        va_start(ap, fmt);
        report_va(rep, config_setting_source_file(s), (int) config_setting_source_line(s), fmt, ap);
        va_end(ap);
}

static const char *check_listener_name(const char *v)
{
        /* Also a systemd FileDescriptorName=: no ':' and nothing odd. */
        for (const char *p = v; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                        return "may contain only letters, digits, '-', '_' and '.'";
        return NULL;
}

/* A user or group name as useradd(8) and systemd-sysusers(8) make them:
 * a letter or '_' first (so never a number, which would read as an id),
 * then letters, digits, '_', '.' and '-', and at most a final '$' (Samba
 * machine accounts).  Anything else cannot be an account we should run as,
 * and would only reach getpwnam(3) to fail. */
static const char *check_account_name(const char *v)
{
        if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || *v == '_'))
                return "must start with a letter or '_'";
        for (const char *p = v + 1; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '.' || *p == '-' || (*p == '$' && p[1] == '\0')))
                        return "may contain only letters, digits, '_', '.', '-' and a final '$'";
        return NULL;
}

/* The top-level keys other than the groups and the listener list.  32: the
 * longest name useradd(8) accepts by default (and utmp's limit). */
static const struct config_key global_keys[] = {
        { .name = "user", .type = CONFIG_KEY_STRING, .min = 1, .max = 32,
          .offset = offsetof(struct config, user), .check = check_account_name,
          .doc = "started as root, run as this user once the listeners are bound (ignored when not "
                 "started as root); unset: stay root, with a warning" },
        { .name = "group", .type = CONFIG_KEY_STRING, .min = 1, .max = 32,
          .offset = offsetof(struct config, group), .check = check_account_name,
          .doc = "with user: run with this group instead of the user's primary group" },
        {}
};

#define LIMIT_INT(field, lo, hi, def, text)                                                  \
        { .name = #field, .type = CONFIG_KEY_INT, .min = (lo), .max = (hi),                  \
          .offset = offsetof(struct limits_config, field), .default_int = (def), .doc = (text) }

static const struct config_key limits_keys[] = {
        LIMIT_INT(max_children, 1, 65536, 256, "most clients served at once, all listeners together"),
        LIMIT_INT(max_per_source, 1, 65536, 16, "most clients served at once from one IP address"),
        LIMIT_INT(idle_timeout, 1, 86400, 30, "seconds a client may stay silent (or not read) before it is dropped"),
        LIMIT_INT(header_timeout, 1, 3600, 10,
                  "seconds from the accept for a tcp client's complete request; "
                  "trickling bytes cannot extend it"),
        LIMIT_INT(total_timeout, 1, 604800, 300, "seconds one request may take in all"),
        LIMIT_INT(grace_period, 0, 3600, 10, "seconds running clients get to finish on SIGTERM before they are ended"),
        {}
};

static const struct config_key log_keys[] = {
        { .name = "target", .type = CONFIG_KEY_ENUM, .offset = offsetof(struct log_config, target),
          .default_str = "auto", .choices = "auto|journal|stderr",
          .doc = "where log entries go; auto: journald when its socket exists and stderr is not a terminal" },
        { .name = "level", .type = CONFIG_KEY_ENUM, .offset = offsetof(struct log_config, level),
          .default_str = "info", .choices = "debug|info|notice|warning|error",
          .doc = "least important entries logged; one entry per request is logged at info" },
        {}
};

static const struct config_key listener_keys[] = {
        { .name = "name", .type = CONFIG_KEY_STRING, .min = 1, .max = 64, .required = true,
          .offset = offsetof(struct listener_config, name), .check = check_listener_name,
          .doc = "unique name; logged as LISTENER and matched to a socket unit's FileDescriptorName=" },
        { .name = "service", .type = CONFIG_KEY_STRING, .min = 1, .max = 32, .required = true,
          .offset = offsetof(struct listener_config, service_name),
          .doc = "which service this listener runs" },
        { .name = "transport", .type = CONFIG_KEY_ENUM, .required = true, .choices = "tcp|udp",
          .offset = offsetof(struct listener_config, transport_name),
          .doc = "tcp or udp; must be one the service supports" },
        { .name = "address", .type = CONFIG_KEY_STRING, .min = 1, .max = 64, .default_str = "::",
          .offset = offsetof(struct listener_config, address),
          .doc = "numeric IPv4 or IPv6 address to bind; \"::\" takes IPv4 and IPv6" },
        { .name = "port", .type = CONFIG_KEY_INT, .min = 1, .max = 65535, .required = true,
          .offset = offsetof(struct listener_config, port), .doc = "port to bind" },
        { .name = "backlog", .type = CONFIG_KEY_INT, .min = 1, .max = 65535, .default_int = 128,
          .offset = offsetof(struct listener_config, backlog),
          .doc = "listen(2) backlog of a tcp listener" },
        {}
};

/* ---- the reflector guard of udp listeners ---- */

/* Services on these source ports answer datagrams themselves: a forged
 * request "from" one of them would make two reflectors talk to each other
 * forever, or aim our replies at a third party's service (RFC 862 echo,
 * discard, daytime, qotd, chargen, time, DNS, portmap, NTP, NetBIOS, SNMP,
 * CLDAP, SSDP, mDNS, memcached, and netlab's own echo and guess defaults). */
static const uint16_t default_blocked_ports[] = {
        7, 9, 13, 17, 19, 37, 53, 111, 123, 137, 161, 389, 1900, 5353, 8888, 8889, 11211,
};

bool port_list_has(const struct port_list *l, uint16_t port)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->ports[i] == port)
                        return true;
        return false;
}

static int ports_init(void *field)
{
        struct port_list *l = field;

        l->ports = malloc(sizeof default_blocked_ports);
        if (!l->ports)
                return -ENOMEM;
        memcpy(l->ports, default_blocked_ports, sizeof default_blocked_ports);
        l->n = ELEMENTSOF(default_blocked_ports);
        return 0;
}

static void ports_done(void *field)
{
        struct port_list *l = field;

        free(l->ports);
        *l = (struct port_list) {};
}

static void ports_read(struct config_report *rep, const config_setting_t *s, void *field,
                       const char *where, const char *name)
{
        struct port_list *l = field;
        int t = config_setting_type(s);

        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
                config_report_at(rep, s, "%s%s: must be an array of ports [ 7, 19, ... ]", where, name);
                return;
        }
        int n = config_setting_length(s);
        if (n > 65535) {
                config_report_at(rep, s, "%s%s: more than 65535 ports", where, name);
                return;
        }
        uint16_t *ports = calloc((size_t) n + 1, sizeof *ports);
        if (!ports) {
                config_report_at(rep, s, "out of memory");
                return;
        }
        bool ok = true;
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                int et = config_setting_type(e);
                long long v = et == CONFIG_TYPE_INT || et == CONFIG_TYPE_INT64 ? config_setting_get_int64(e) : -1;
                if (v < 1 || v > 65535) {
                        config_report_at(rep, e, "%s%s: element %d must be a port from 1 to 65535 "
                                         "(port 0 is always refused)", where, name, i + 1);
                        ok = false;
                        continue;
                }
                ports[i] = (uint16_t) v;
        }
        if (!ok) {
                free(ports);
                return;
        }
        free(l->ports);
        l->ports = ports;
        l->n = (size_t) n;
}

#define DGRAM_INT(field, lo, hi, def, text)                                                  \
        { .name = #field, .type = CONFIG_KEY_INT, .min = (lo), .max = (hi),                  \
          .offset = offsetof(struct dgram_config, field), .default_int = (def), .doc = (text) }

static const struct config_key dgram_keys[] = {
        DGRAM_INT(rate_per_source, 1, 100000000, 100,
                  "udp: replies per second to one source (an IPv4 address or an IPv6 /64)"),
        DGRAM_INT(burst_per_source, 1, 100000000, 200, "udp: replies one source may get in a burst"),
        DGRAM_INT(rate_total, 1, 100000000, 20000,
                  "udp: replies per second of this listener, all sources together"),
        DGRAM_INT(bytes_total, 1024, 100000000000, 33554432,
                  "udp: reply bytes per second of this listener, all sources together"),
        DGRAM_INT(sources_max, 16, 4194304, 16384,
                  "udp: sources whose rate is tracked (a fixed table; memory stays bounded)"),
        DGRAM_INT(busy_poll_usec, 0, 1000, 0,
                  "udp: after a batch, keep polling this many microseconds for the next datagram "
                  "before sleeping (CPU for latency; 0: never)"),
        { .name = "blocked_source_ports", .type = CONFIG_KEY_CUSTOM,
          .offset = offsetof(struct dgram_config, blocked_source_ports),
          .custom_init = ports_init, .custom_read = ports_read, .custom_done = ports_done,
          .custom_type = "array of ports, default [7, 9, 13, 17, 19, 37, 53, 111, 123, 137, 161, "
                         "389, 1900, 5353, 8888, 8889, 11211]",
          .doc = "udp: datagrams from these source ports (and from port 0) get no reply" },
        {}
};

static const struct config_key *find_key(const struct config_key *keys, const char *name)
{
        for (const struct config_key *k = keys; k && k->name; k++)
                if (strcmp(k->name, name) == 0)
                        return k;
        return NULL;
}

static bool enum_has(const char *choices, const char *value)
{
        size_t n = strlen(value);

        for (const char *p = choices; p && *p;) {
                const char *bar = strchr(p, '|');
                size_t len = bar ? (size_t) (bar - p) : strlen(p);

                if (len == n && strncmp(p, value, n) == 0)
                        return true;
                p = bar ? bar + 1 : NULL;
        }
        return false;
}

int config_keys_init(const struct config_key *keys, void *target)
{
        int r = 0;

        for (const struct config_key *k = keys; k && k->name; k++) {
                void *field = (char *) target + k->offset;

                switch (k->type) {
                case CONFIG_KEY_CUSTOM:
                        if (k->custom_init && k->custom_init(field) < 0)
                                r = -ENOMEM;
                        break;
                case CONFIG_KEY_INT:
                        *(int64_t *) field = k->default_int;
                        break;
                case CONFIG_KEY_BOOL:
                        *(bool *) field = k->default_int != 0;
                        break;
                case CONFIG_KEY_STRING:
                case CONFIG_KEY_ENUM:
                        *(char **) field = k->default_str ? strdup(k->default_str) : NULL;
                        if (k->default_str && !*(char **) field)
                                r = -ENOMEM;
                        break;
                }
        }
        return r;
}

void config_keys_done(const struct config_key *keys, void *target)
{
        for (const struct config_key *k = keys; k && k->name; k++) {
                if (k->type == CONFIG_KEY_STRING || k->type == CONFIG_KEY_ENUM) {
                        char **field = (char **) ((char *) target + k->offset);
                        free(*field);
                        *field = NULL;
                } else if (k->type == CONFIG_KEY_CUSTOM && k->custom_done)
                        k->custom_done((char *) target + k->offset);
        }
}

static const char *type_name(int libconfig_type)
{
        switch (libconfig_type) {
        case CONFIG_TYPE_GROUP: return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64: return "an integer";
        case CONFIG_TYPE_FLOAT: return "a float";
        case CONFIG_TYPE_STRING: return "a string";
        case CONFIG_TYPE_BOOL: return "a boolean";
        case CONFIG_TYPE_ARRAY: return "an array";
        case CONFIG_TYPE_LIST: return "a list";
        default: return "an unknown type";
        }
}

/* Read one setting into target according to its key. */
static void read_value(struct config_report *rep, const config_setting_t *s, const struct config_key *k,
                       void *target, const char *where)
{
        int line = (int) config_setting_source_line(s);
        int type = config_setting_type(s);
        void *field = (char *) target + k->offset;

        switch (k->type) {
        case CONFIG_KEY_CUSTOM:
                k->custom_read(rep, s, field, where, k->name);
                return;
        case CONFIG_KEY_INT: {
                if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
                        report(rep, line, "%s%s: must be an integer, not %s", where, k->name,
                               type_name(type));
                        return;
                }
                long long v = config_setting_get_int64(s);
                if (v < k->min || v > k->max) {
                        report(rep, line, "%s%s: %lld is out of range %lld..%lld", where, k->name,
                               v, (long long) k->min, (long long) k->max);
                        return;
                }
                *(int64_t *) field = v;
                return;
        }
        case CONFIG_KEY_BOOL:
                if (type != CONFIG_TYPE_BOOL) {
                        report(rep, line, "%s%s: must be true or false, not %s", where, k->name,
                               type_name(type));
                        return;
                }
                *(bool *) field = config_setting_get_bool(s) != 0;
                return;
        case CONFIG_KEY_STRING:
        case CONFIG_KEY_ENUM: {
                if (type != CONFIG_TYPE_STRING) {
                        report(rep, line, "%s%s: must be a string, not %s", where, k->name,
                               type_name(type));
                        return;
                }
                const char *v = config_setting_get_string(s);
                size_t len = strlen(v);
                char esc[128];

                if (k->type == CONFIG_KEY_ENUM && !enum_has(k->choices, v)) {
                        text_escape(esc, sizeof esc, (const uint8_t *) v, len);
                        report(rep, line, "%s%s: \"%s\" is not one of %s", where, k->name, esc,
                               k->choices);
                        return;
                }
                if (k->type == CONFIG_KEY_STRING && ((int64_t) len < k->min || (int64_t) len > k->max)) {
                        report(rep, line, "%s%s: length %zu is out of range %lld..%lld", where,
                               k->name, len, (long long) k->min, (long long) k->max);
                        return;
                }
                const char *why = k->check ? k->check(v) : NULL;
                if (why) {
                        text_escape(esc, sizeof esc, (const uint8_t *) v, len);
                        report(rep, line, "%s%s: \"%s\" %s", where, k->name, esc, why);
                        return;
                }
                char *copy = strdup(v);
                if (!copy) {
                        report(rep, line, "out of memory");
                        return;
                }
                free(*(char **) field);
                *(char **) field = copy;
                return;
        }
        }
}

/* Keys a listener block may not take here but would take with the same
 * service over the other transport (lab_file on a udp file listener). */
struct other_keys {
        const struct config_key *keys;
        const char *why;               /* "only tcp listeners of service file take this key" */
};

/* Read the members of a group setting using up to three key tables. */
static void read_group3(struct config_report *rep, const config_setting_t *group,
                        const struct config_key *keys, void *target,
                        const struct config_key *keys2, void *target2,
                        const struct config_key *keys3, void *target3, const char *where,
                        const char *unknown_hint, const struct other_keys *other)
{
        int n = config_setting_length(group);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(group, (unsigned) i);
                const char *name = config_setting_name(s);
                const struct config_key *k;

                if ((k = find_key(keys, name)))
                        read_value(rep, s, k, target, where);
                else if (keys2 && (k = find_key(keys2, name)))
                        read_value(rep, s, k, target2, where);
                else if (keys3 && (k = find_key(keys3, name)))
                        read_value(rep, s, k, target3, where);
                else if (other && find_key(other->keys, name))
                        report(rep, (int) config_setting_source_line(s), "%s%s: %s", where, name,
                               other->why);
                else
                        report(rep, (int) config_setting_source_line(s), "%sunknown key '%s'%s",
                               where, name, unknown_hint ? unknown_hint : "");
        }

        /* Every table's required keys: a service's too (a file listener's root). */
        const struct config_key *tables[] = { keys, keys2, keys3 };
        for (size_t i = 0; i < ELEMENTSOF(tables); i++)
                for (const struct config_key *t = tables[i]; t && t->name; t++)
                        if (t->required && !config_setting_get_member(group, t->name))
                                report(rep, (int) config_setting_source_line(group),
                                       "%smissing required key '%s'", where, t->name);
}

static void read_group(struct config_report *rep, const config_setting_t *group,
                       const struct config_key *keys, void *target, const char *where)
{
        read_group3(rep, group, keys, target, NULL, NULL, NULL, NULL, where, NULL, NULL);
}

static bool is_group(struct config_report *rep, const config_setting_t *s, const char *what)
{
        if (config_setting_type(s) == CONFIG_TYPE_GROUP)
                return true;
        report(rep, (int) config_setting_source_line(s), "%s must be a group { ... }, not %s", what,
               type_name(config_setting_type(s)));
        return false;
}

static int parse_address(struct listener_config *l)
{
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &l->sockaddr;
        struct sockaddr_in *in4 = (struct sockaddr_in *) &l->sockaddr;

        memset(&l->sockaddr, 0, sizeof l->sockaddr);
        if (inet_pton(AF_INET, l->address, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons((uint16_t) l->port);
                l->sockaddr_len = sizeof *in4;
                return 0;
        }
        if (inet_pton(AF_INET6, l->address, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) l->port);
                l->sockaddr_len = sizeof *in6;
                return 0;
        }
        return -EINVAL;
}

static void listener_done(struct listener_config *l)
{
        if (l->service && l->options) {
                config_keys_done(l->service->keys, l->options);
                free(l->options);
        }
        config_keys_done(listener_keys, l);
        config_keys_done(dgram_keys, &l->dgram);
}

static void read_listener(struct config_report *rep, const config_setting_t *s, struct listener_config *l)
{
        int line = (int) config_setting_source_line(s);
        const config_setting_t *svc = config_setting_get_member(s, "service");
        char where[96];

        l->line = line;
        if (config_keys_init(listener_keys, l) < 0 || config_keys_init(dgram_keys, &l->dgram) < 0) {
                report(rep, line, "out of memory");
                return;
        }

        /* The service decides which extra keys are allowed, so find it first,
         * by name and transport: "file" over tcp and over udp are two
         * services.  A transport the service does not run over is reported
         * below; its keys are still read, so one run shows every problem. */
        const config_setting_t *tr = config_setting_get_member(s, "transport");
        int socktype = 0;
        if (tr && config_setting_type(tr) == CONFIG_TYPE_STRING) {
                const char *t = config_setting_get_string(tr);
                socktype = strcmp(t, "tcp") == 0 ? SOCK_STREAM : strcmp(t, "udp") == 0 ? SOCK_DGRAM : 0;
        }
        if (svc && config_setting_type(svc) == CONFIG_TYPE_STRING) {
                const char *name = config_setting_get_string(svc);
                l->service = service_find(name, socktype);
                if (!l->service)
                        l->service = service_find(name, 0);
                if (!l->service) {
                        char esc[64], list[256] = "";
                        size_t n_services;
                        const struct service *const *table = service_table(&n_services);

                        for (size_t i = 0; i < n_services; i++) {
                                size_t used = strlen(list);
                                if (service_find(table[i]->name, 0) != table[i])
                                        continue; /* the same name over another transport */
                                (void) xsnprintf(list + used, sizeof list - used, "%s%s",
                                                 used ? ", " : "", table[i]->name);
                        }
                        text_escape(esc, sizeof esc, (const uint8_t *) name, strlen(name));
                        report(rep, (int) config_setting_source_line(svc),
                               "listener: service: unknown service \"%s\" (known: %s)", esc, list);
                }
        }

        const config_setting_t *nm = config_setting_get_member(s, "name");
        if (nm && config_setting_type(nm) == CONFIG_TYPE_STRING)
                (void) xsnprintf(where, sizeof where, "listener '%.64s': ", config_setting_get_string(nm));
        else
                (void) xsnprintf(where, sizeof where, "listener: ");

        if (l->service && l->service->keys) {
                l->options = calloc(1, l->service->options_size);
                if (!l->options) {
                        report(rep, line, "out of memory");
                        return;
                }
                if (config_keys_init(l->service->keys, l->options) < 0) {
                        report(rep, line, "out of memory");
                        return;
                }
        }

        char hint[64] = "", other_why[96] = "";
        struct other_keys other = {};
        if (l->service) {
                int other_type = l->service->socktype == SOCK_STREAM ? SOCK_DGRAM : SOCK_STREAM;
                const struct service *sibling = service_find(l->service->name, other_type);

                (void) xsnprintf(hint, sizeof hint, " (for service %s)", l->service->name);
                if (sibling) {
                        (void) xsnprintf(other_why, sizeof other_why,
                                         "only %s listeners of service %s take this key",
                                         other_type == SOCK_STREAM ? "tcp" : "udp", sibling->name);
                        other = (struct other_keys) { .keys = sibling->keys, .why = other_why };
                }
        }
        read_group3(rep, s, listener_keys, l, l->service ? l->service->keys : NULL, l->options,
                    dgram_keys, &l->dgram, where, hint, other.keys ? &other : NULL);

        if (!l->service || !l->name || !l->transport_name || !l->address)
                return;

        l->socktype = strcmp(l->transport_name, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM;
        if (l->socktype != l->service->socktype)
                report(rep, line, "%sservice %s runs over %s only, not %s", where, l->service->name,
                       l->service->socktype == SOCK_STREAM ? "tcp" : "udp", l->transport_name);
        if (l->socktype == SOCK_STREAM)
                for (const struct config_key *k = dgram_keys; k->name; k++) {
                        const config_setting_t *m = config_setting_get_member(s, k->name);
                        if (m)
                                config_report_at(rep, m, "%s%s: only udp listeners take this key",
                                                 where, k->name);
                }

        if (parse_address(l) < 0) {
                char esc[80];
                text_escape(esc, sizeof esc, (const uint8_t *) l->address, strlen(l->address));
                const config_setting_t *a = config_setting_get_member(s, "address");
                report(rep, a ? (int) config_setting_source_line(a) : line,
                       "%saddress: \"%s\" is not a numeric IPv4 or IPv6 address", where, esc);
        }

        if (l->service->options_check && l->options) {
                char buf[256];
                const char *why = l->service->options_check(l->options, buf, sizeof buf);
                if (why)
                        report(rep, line, "%s%s", where, why);
        }
}

/* The IPv4 address an endpoint serves (v4-mapped IPv6 included), for
 * comparing across families.  Return: false if it serves none in particular. */
static bool endpoint_v4(const struct listener_config *l, struct in_addr *ret, bool *ret_any)
{
        if (l->sockaddr.ss_family == AF_INET) {
                *ret = ((const struct sockaddr_in *) &l->sockaddr)->sin_addr;
                *ret_any = ret->s_addr == htonl(INADDR_ANY);
                return true;
        }
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *) &l->sockaddr)->sin6_addr;
        if (IN6_IS_ADDR_UNSPECIFIED(a6)) {
                *ret_any = true; /* "::" is bound dual-stack */
                return true;
        }
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
                memcpy(&ret->s_addr, &a6->s6_addr[12], 4);
                *ret_any = ret->s_addr == htonl(INADDR_ANY);
                return true;
        }
        return false;
}

/* Would binding both fail (same port and address, or one a wildcard that
 * covers the other, "::" covering IPv4 too)? */
static bool endpoints_overlap(const struct listener_config *a, const struct listener_config *b)
{
        struct in_addr va = {}, vb = {};
        bool any_a = false, any_b = false;

        if (a->socktype != b->socktype || a->port != b->port)
                return false;
        if (a->sockaddr.ss_family == AF_INET6 && b->sockaddr.ss_family == AF_INET6) {
                const struct in6_addr *x = &((const struct sockaddr_in6 *) &a->sockaddr)->sin6_addr;
                const struct in6_addr *y = &((const struct sockaddr_in6 *) &b->sockaddr)->sin6_addr;
                if (IN6_IS_ADDR_UNSPECIFIED(x) || IN6_IS_ADDR_UNSPECIFIED(y) || IN6_ARE_ADDR_EQUAL(x, y))
                        return true;
        }
        bool has_a = endpoint_v4(a, &va, &any_a), has_b = endpoint_v4(b, &vb, &any_b);
        return has_a && has_b && (any_a || any_b || va.s_addr == vb.s_addr);
}

static int level_from_name(const char *s)
{
        static const struct { const char *name; int level; } levels[] = {
                { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
                { "warning", LOG_WARNING }, { "error", LOG_ERR },
        };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (strcmp(levels[i].name, s) == 0)
                        return levels[i].level;
        return LOG_INFO;
}

/* Was key k of group g set, and read as its value (not refused)? */
static bool int_key_taken(const config_setting_t *g, const char *k, int64_t value)
{
        const config_setting_t *s = config_setting_get_member(g, k);
        int type = s ? config_setting_type(s) : CONFIG_TYPE_NONE;

        return (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) &&
               config_setting_get_int64(s) == value;
}

/* Both deadlines run from the accept, so a header_timeout longer than
 * total_timeout would never apply: an explicit one is refused rather than
 * left to mislead.  The default (10 s) is simply cut to a shorter
 * total_timeout (conn.c, docs/netlabd.conf.5). */
static void check_header_timeout(struct config_report *rep, const config_setting_t *limits,
                                 const struct limits_config *l)
{
        if (l->header_timeout <= l->total_timeout ||
            !int_key_taken(limits, "header_timeout", l->header_timeout))
                return;
        /* A total_timeout refused for its own reason was reported already. */
        const config_setting_t *t = config_setting_get_member(limits, "total_timeout");
        if (t && !int_key_taken(limits, "total_timeout", l->total_timeout))
                return;
        config_report_at(rep, config_setting_get_member(limits, "header_timeout"),
                         "limits: header_timeout: %lld is longer than total_timeout (%lld), which "
                         "ends every request first; lower header_timeout or raise total_timeout",
                         (long long) l->header_timeout, (long long) l->total_timeout);
}

static void read_root(struct config_report *rep, config_t *lc, struct config *c)
{
        const config_setting_t *root = config_root_setting(lc);
        const config_setting_t *listeners = NULL;
        int n = config_setting_length(root);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(root, (unsigned) i);
                const char *name = config_setting_name(s);
                const struct config_key *k = find_key(global_keys, name);

                if (k) {
                        read_value(rep, s, k, c, "");
                        int line = (int) config_setting_source_line(s);
                        if (strcmp(k->name, "user") == 0)
                                c->user_line = line;
                        else
                                c->group_line = line;
                } else if (strcmp(name, "limits") == 0) {
                        if (is_group(rep, s, "limits")) {
                                read_group(rep, s, limits_keys, &c->limits, "limits: ");
                                check_header_timeout(rep, s, &c->limits);
                        }
                } else if (strcmp(name, "log") == 0) {
                        if (is_group(rep, s, "log"))
                                read_group(rep, s, log_keys, &c->log, "log: ");
                } else if (strcmp(name, "listeners") == 0) {
                        int t = config_setting_type(s);
                        if (t != CONFIG_TYPE_LIST && !(t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
                                report(rep, (int) config_setting_source_line(s),
                                       "listeners must be a list ( { ... }, ... ), not %s", type_name(t));
                        else
                                listeners = s;
                } else
                        report(rep, (int) config_setting_source_line(s),
                               "unknown key '%s' (expected user, group, limits, log or listeners)", name);
        }

        /* Without user netlabd stays root, so a group alone would do nothing. */
        if (c->group_line > 0 && c->user_line == 0)
                report(rep, c->group_line, "group: only applies together with user, which is not set");

        if (!listeners) {
                report(rep, 0, "no listeners: add a 'listeners = ( ... );' list");
                return;
        }

        n = config_setting_length(listeners);
        if (n == 0) {
                report(rep, (int) config_setting_source_line(listeners), "listeners: the list is empty");
                return;
        }
        c->listeners = calloc((size_t) n, sizeof *c->listeners);
        if (!c->listeners) {
                report(rep, 0, "out of memory");
                return;
        }
        c->n_listeners = (size_t) n;

        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(listeners, (unsigned) i);
                struct listener_config *l = &c->listeners[i];

                if (!is_group(rep, s, "each listener"))
                        continue;
                read_listener(rep, s, l);

                for (int j = 0; j < i; j++) {
                        const struct listener_config *o = &c->listeners[j];
                        if (l->name && o->name && strcmp(l->name, o->name) == 0)
                                report(rep, l->line, "listener '%s': name already used at line %d",
                                       l->name, o->line);
                        else if (l->service && o->service && l->sockaddr_len && o->sockaddr_len &&
                                 endpoints_overlap(l, o))
                                report(rep, l->line,
                                       "listener '%s': %s port %lld on %s overlaps listener '%s' on %s (line %d)",
                                       l->name, l->transport_name, (long long) l->port, l->address,
                                       o->name, o->address, o->line);
                }
        }
}

/* libconfig 1.5 opens an @include with fopen() and checks nothing: a
 * directory makes its scanner exit() the process ("input in flex scanner
 * failed") and a FIFO blocks it forever, which on SIGHUP would end or hang
 * the running daemon.  So every @include is looked at first, found the way
 * libconfig's scanner finds it (a line `[ \t]*@include[ \t]+"NAME"`, with \\
 * and \" escapes in NAME, opened as include_dir "/" NAME, nested up to its
 * depth of 10), and anything but a regular file is refused with its line.
 * A missing file is left to libconfig, which reports it.  An @include inside
 * a comment is checked too: refusing a commented-out FIFO is harmless.
 * At most *budget @includes are looked at in all, so a file that includes
 * itself many times costs no more than that (libconfig stops it at depth 10).
 * Return: the number of problems reported. */
#define INCLUDE_DEPTH_MAX 10
#define INCLUDE_CHECK_MAX 256
static unsigned includes_check(struct config_report *rep, const char *file, const char *report_as,
                               const char *dir, unsigned depth, unsigned *budget)
{
        unsigned problems = 0;
        char *line = NULL;
        size_t line_size = 0;
        int line_no = 0;

        int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return 0;
        FILE *f = fdopen(fd, "r");
        if (!f) {
                safe_close(fd);
                return 0;
        }
        while (getline(&line, &line_size, f) >= 0) {
                const char *p = line, *kw = "@include";
                char name[4096], path[8192];
                size_t n = 0;
                struct stat st;

                line_no++;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (strncmp(p, kw, strlen(kw)) != 0)
                        continue;
                p += strlen(kw);
                if (*p != ' ' && *p != '\t')
                        continue;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p++ != '"')
                        continue;
                if (*budget == 0)
                        break;
                (*budget)--;
                for (; *p && *p != '"' && n + 1 < sizeof name; p++) {
                        if (*p == '\\' && (p[1] == '\\' || p[1] == '"'))
                                p++;
                        name[n++] = *p;
                }
                if (*p != '"')
                        continue; /* unterminated or too long: libconfig reports it */
                name[n] = '\0';
                if ((dir ? xsnprintf(path, sizeof path, "%s/%s", dir, name)
                         : xsnprintf(path, sizeof path, "%s", name)) < 0)
                        continue;

                int ifd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                if (ifd < 0)
                        continue;
                int r = fstat(ifd, &st);
                safe_close(ifd);
                if (r < 0 || !S_ISREG(st.st_mode)) {
                        rep_report_file(rep, report_as, line_no, "@include \"%s\": not a regular file",
                                        name);
                        problems++;
                } else if (depth + 1 < INCLUDE_DEPTH_MAX)
                        problems += includes_check(rep, path, path, dir, depth + 1, budget);
        }
        free(line);
        (void) fclose(f);
        return problems;
}

int config_load(const char *path, config_report_fn report_fn, void *userdata, struct config **ret)
{
        struct config_report rep = { .file = path, .fn = report_fn, .userdata = userdata };
        struct config *c = NULL;
        config_t lc;
        FILE *f;

        /* O_NONBLOCK: a FIFO must not hang us; fstat: libconfig's scanner
         * exit()s on a directory, so only a regular file may reach it. */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        struct stat st;
        const char *problem = NULL;
        if (fd < 0)
                problem = strerror(errno);
        else if (fstat(fd, &st) < 0)
                problem = strerror(errno);
        else if (!S_ISREG(st.st_mode))
                problem = "not a regular file";
        f = problem ? NULL : fdopen(fd, "r");
        if (!f) {
                char msg[256];
                if (!problem)
                        problem = strerror(errno);
                (void) xsnprintf(msg, sizeof msg, "cannot open: %s", problem);
                safe_close(fd);
                rep.n_errors++;
                if (report_fn)
                        report_fn(path, 0, msg, userdata);
                return -EINVAL;
        }

        config_init(&lc);
        /* @include "file" names a file beside the config (conf/guess-people.conf). */
        char dir[4096];
        const char *slash = strrchr(path, '/'), *include_dir = NULL;
        if (slash && xsnprintf(dir, sizeof dir, "%.*s", (int) (slash - path), path) >= 0)
                include_dir = slash == path ? "/" : dir;
        if (include_dir)
                config_set_include_dir(&lc, include_dir);
        unsigned include_budget = INCLUDE_CHECK_MAX;
        if (includes_check(&rep, path, NULL, include_dir, 0, &include_budget) > 0) {
                config_destroy(&lc);
                (void) fclose(f);
                return -EINVAL;
        }
        if (!config_read(&lc, f)) {
                /* An error in an @include'd file is reported at that file's line. */
                const char *efile = config_error_file(&lc);
                rep_report_file(&rep, efile, config_error_line(&lc), "%s", config_error_text(&lc));
                config_destroy(&lc);
                (void) fclose(f);
                return -EINVAL;
        }
        (void) fclose(f);

        c = calloc(1, sizeof *c);
        if (!c) {
                config_destroy(&lc);
                return -ENOMEM;
        }
        c->path = strdup(path);
        (void) config_keys_init(global_keys, c);          /* no defaults: cannot fail */
        (void) config_keys_init(limits_keys, &c->limits); /* no strings: cannot fail */
        (void) config_keys_init(log_keys, &c->log);       /* checked below */

        read_root(&rep, &lc, c);
        config_destroy(&lc);

        if (!c->path || !c->log.target || !c->log.level) {
                config_free(c);
                return -ENOMEM;
        }
        if (rep.n_errors > 0) {
                config_free(c);
                return -EINVAL;
        }

        c->log_target = strcmp(c->log.target, "journal") == 0 ? LOG_TARGET_JOURNAL :
                        strcmp(c->log.target, "stderr") == 0 ? LOG_TARGET_STDERR : LOG_TARGET_AUTO;
        c->log_level = level_from_name(c->log.level);
        *ret = c;
        return 0;
}

struct config *config_free(struct config *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_listeners; i++)
                listener_done(&c->listeners[i]);
        free(c->listeners);
        config_keys_done(log_keys, &c->log);
        config_keys_done(global_keys, c);
        free(c->path);
        free(c);
        return NULL;
}

const struct listener_config *config_find_listener(const struct config *c, const char *name)
{
        for (size_t i = 0; c && i < c->n_listeners; i++)
                if (strcmp(c->listeners[i].name, name) == 0)
                        return &c->listeners[i];
        return NULL;
}

void config_format_endpoint(const struct listener_config *l, char *buf, size_t size)
{
        if (l->sockaddr.ss_family == AF_INET6)
                (void) xsnprintf(buf, size, "[%s]:%u", l->address, (unsigned) l->port);
        else
                (void) xsnprintf(buf, size, "%s:%u", l->address, (unsigned) l->port);
}

static void list_table(FILE *f, const char *section, const struct config_key *keys)
{
        for (const struct config_key *k = keys; k && k->name; k++) {
                char def[256] = "";

                switch (k->type) {
                case CONFIG_KEY_INT:
                        (void) xsnprintf(def, sizeof def, "integer %lld..%lld, default %lld",
                                         (long long) k->min, (long long) k->max, (long long) k->default_int);
                        break;
                case CONFIG_KEY_BOOL:
                        (void) xsnprintf(def, sizeof def, "boolean, default %s", k->default_int ? "true" : "false");
                        break;
                case CONFIG_KEY_STRING:
                        (void) xsnprintf(def, sizeof def, "string, default \"%s\"", k->default_str ? k->default_str : "");
                        break;
                case CONFIG_KEY_ENUM:
                        (void) xsnprintf(def, sizeof def, "one of %s, default \"%s\"", k->choices,
                                         k->default_str ? k->default_str : "");
                        break;
                case CONFIG_KEY_CUSTOM:
                        (void) xsnprintf(def, sizeof def, "%s", k->custom_type);
                        break;
                }
                /* Top-level keys have no section: "user", not ".user". */
                fprintf(f, "%s%s%s\t%s%s\t%s\n", section ? section : "", section ? "." : "", k->name,
                        k->required ? "required " : "", def, k->doc);
        }
}

void config_list_keys(FILE *f)
{
        size_t n;
        const struct service *const *table = service_table(&n);

        list_table(f, NULL, global_keys);
        list_table(f, "limits", limits_keys);
        list_table(f, "log", log_keys);
        list_table(f, "listener", listener_keys);
        list_table(f, "listener[transport=udp]", dgram_keys);
        for (size_t i = 0; i < n; i++) {
                char section[64];
                int other_type = table[i]->socktype == SOCK_STREAM ? SOCK_DGRAM : SOCK_STREAM;

                /* A name with a service per transport names the transport too. */
                if (service_find(table[i]->name, other_type))
                        (void) xsnprintf(section, sizeof section, "listener[service=%s,transport=%s]",
                                         table[i]->name, table[i]->socktype == SOCK_STREAM ? "tcp" : "udp");
                else
                        (void) xsnprintf(section, sizeof section, "listener[service=%s]", table[i]->name);
                list_table(f, section, table[i]->keys);
        }
}
