/* config.h: netlabd's configuration, read from a libconfig file.
 *
 * Every key is described once in a struct config_key table (here for the
 * global groups and the listener block, in each svc-*.c for service keys); the
 * parser, --check-config, --list-keys and the netlabd.conf(5) check all read
 * those tables. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct service;

enum config_type {
        CONFIG_KEY_INT,
        CONFIG_KEY_STRING,
        CONFIG_KEY_BOOL,
        CONFIG_KEY_ENUM, /* a string from `choices` ("a|b|c") */
        CONFIG_KEY_CUSTOM, /* read by the key's own hooks (lists, groups) */
};

struct config_setting_t;   /* libconfig's */
struct config_report;      /* where a CUSTOM reader reports problems */

/* Report a problem found in setting s (its file and line are used).  For
 * CUSTOM readers; `where` is the prefix the reader was given. */
void config_report_at(struct config_report *rep, const struct config_setting_t *s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

struct config_key {
        const char *name;
        enum config_type type;
        int64_t min, max;     /* INT: value range; STRING: length range */
        size_t offset;        /* of an int64_t, char * or bool in the target struct */
        int64_t default_int;  /* INT and BOOL */
        const char *default_str; /* STRING and ENUM (NULL: no value) */
        const char *choices;  /* ENUM only */
        bool required;
        /* STRING only, optional: return NULL if acceptable, else why not. */
        const char *(*check)(const char *value);
        const char *doc;      /* one line for --list-keys and the man page */

        /* CUSTOM only: set the default (return -ENOMEM or 0), read a value
         * (report every problem with config_report_at), free the field. */
        int (*custom_init)(void *field);
        void (*custom_read)(struct config_report *rep, const struct config_setting_t *s, void *field,
                            const char *where, const char *name);
        void (*custom_done)(void *field);
        const char *custom_type; /* --list-keys: "list of ports, default [7, 13]" */
};

/* A list of UDP/TCP ports (CUSTOM key: an array of integers 1..65535). */
struct port_list {
        uint16_t *ports;
        size_t n;
};

bool port_list_has(const struct port_list *l, uint16_t port);

enum log_target {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
};

struct limits_config {
        int64_t max_children;
        int64_t max_per_source;
        int64_t idle_timeout;   /* seconds */
        int64_t header_timeout; /* seconds; the smaller of it and total_timeout applies */
        int64_t total_timeout;  /* seconds */
        int64_t grace_period;  /* seconds */
};

struct log_config {
        char *target;
        char *level;
};

/* The reflector guard of a udp listener (docs/PROTOCOL.md, section 10). */
struct dgram_config {
        int64_t rate_per_source;   /* replies per second per source */
        int64_t burst_per_source;
        int64_t rate_total;        /* replies per second, all sources */
        int64_t bytes_total;       /* reply bytes per second, all sources */
        int64_t sources_max;       /* entries in the per-source table */
        int64_t busy_poll_usec;    /* keep polling this long for more before sleeping */
        struct port_list blocked_source_ports;
};

struct listener_config {
        char *name;
        char *service_name;
        char *transport_name;
        char *address;
        int64_t port;
        int64_t backlog;
        struct dgram_config dgram;      /* udp listeners only */

        /* Derived by the checks: */
        const struct service *service;
        int socktype;                   /* SOCK_STREAM or SOCK_DGRAM */
        struct sockaddr_storage sockaddr;
        socklen_t sockaddr_len;
        int line;
        void *options;                  /* the service's own struct */
};

struct config {
        char *path;
        /* Whom netlabd started as root becomes once its sockets are bound
         * (privs.h).  Both NULL when not set; group NULL: the user's primary
         * group.  *_line: where each was set (0: not set). */
        char *user;
        char *group;
        int user_line;
        int group_line;
        struct limits_config limits;
        struct log_config log;
        enum log_target log_target;
        int log_level;                  /* syslog priority: LOG_ERR .. LOG_DEBUG */
        struct listener_config *listeners;
        size_t n_listeners;
};

/* Receives each problem found while loading; line is 0 when there is none. */
typedef void (*config_report_fn)(const char *file, int line, const char *message, void *userdata);

/* Load and validate the config file at path.  Every problem is passed to
 * report (with its line number) before returning, not just the first.
 * Return: 0 and a new config in *ret (free with config_free()); -EINVAL if any
 * problem was reported; -ENOMEM. */
int config_load(const char *path, config_report_fn report, void *userdata, struct config **ret);

/* Free a config and everything it owns.  Accepts NULL.  Return: NULL. */
struct config *config_free(struct config *c);

/* Print every key (global, listener and per service) with its type, range,
 * default and documentation, one per line, to f. */
void config_list_keys(FILE *f);

/* Find a listener by name in c, or NULL. */
const struct listener_config *config_find_listener(const struct config *c, const char *name);

/* Render a listener's address and port as "[::1]:12345" or "127.0.0.1:12345". */
void config_format_endpoint(const struct listener_config *l, char *buf, size_t size);

/* Helpers for service option tables (svc-*.c): apply defaults, free strings. */
/* Return: 0, or -ENOMEM (what was set can still be freed with _done). */
int config_keys_init(const struct config_key *keys, void *target);
void config_keys_done(const struct config_key *keys, void *target);
