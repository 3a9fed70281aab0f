/* ini.c: netlabctl's defaults from INI files, read with inih.
 *
 * The files are the user's own (or the admin's), but still parsed strictly:
 * unknown sections and keys and bad values stop the program with the file and
 * line, so a typo never silently changes which server we talk to. */
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "netlab-config.h"
#include "util.h"

struct settings settings;

struct ini_state {
        const char *path;
        FILE *f;
        int line;          /* of the line inih is working on */
        char problem[256]; /* the first problem our handler found... */
        int problem_line;  /* ...and its line, 0 if none */
};

/* inih's line reader, wrapped to count lines: the handler then knows where it
 * is (Debian's inih is built without INI_HANDLER_LINENO). */
static char *read_line(char *str, int num, void *stream)
{
        struct ini_state *st = stream;
        char *p = fgets(str, num, st->f);
        size_t len;

        if (!p)
                return NULL;
        st->line++;

        len = strlen(str);
        if (num >= 3 && len == (size_t) num - 1 && str[len - 1] != '\n') {
                /* Longer than inih's line buffer: fgets() would hand the rest
                 * over as lines of their own.  Swallow it, keep a long comment
                 * as a comment, and make anything else an error here. */
                int ch = getc(st->f);
                if (ch == '\n' || ch == EOF)
                        return str; /* exactly full, not too long */
                while (ch != EOF && ch != '\n')
                        ch = getc(st->f);
                const char *s = str + strspn(str, " \t");
                bool comment = *s == ';' || *s == '#';
                if (!comment && st->problem_line == 0) {
                        (void) xsnprintf(st->problem, sizeof st->problem,
                                         "line longer than %d characters (the INI reader's limit)", num - 1);
                        st->problem_line = st->line;
                }
                /* ";" is a comment; "=" makes inih call us with an empty key,
                 * which fails on this line with the problem recorded above. */
                str[0] = comment ? ';' : '=';
                str[1] = '\n';
                str[2] = '\0';
        }
        return str;
}

static int bool_value(const char *v, bool *ret)
{
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0 || strcmp(v, "on") == 0)
                *ret = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0 || strcmp(v, "off") == 0)
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int port_value(const char *v, uint16_t *ret)
{
        uint64_t p;

        if (num_parse_u64(v, 1, 65535, &p) < 0)
                return -EINVAL;
        *ret = (uint16_t) p;
        return 0;
}

static int host_value(const char *v, char *dst)
{
        size_t n = strlen(v);

        if (n == 0 || n > CLI_HOST_MAX || text_check((const uint8_t *) v, n, NULL) < 0)
                return -EINVAL;
        memcpy(dst, v, n + 1);
        return 0;
}

static int timeout_value(const char *v, uint64_t *ret_ms)
{
        uint64_t s;

        if (num_parse_u64(v, 1, 86400, &s) < 0)
                return -EINVAL;
        *ret_ms = s * 1000u;
        return 0;
}

/* inih handler: return 1 to go on, 0 to stop with an error on this line. */
static int on_value(void *user, const char *section, const char *name, const char *value)
{
        struct ini_state *st = user;
        int r = -ENOENT;
        const char *expect = "";

        if (strcmp(section, "defaults") == 0) {
                if (strcmp(name, "host") == 0) {
                        r = host_value(value, settings.host);
                        expect = "a host name or address";
                } else if (strcmp(name, "timeout") == 0) {
                        r = timeout_value(value, &settings.timeout_ms);
                        expect = "whole seconds from 1 to 86400";
                } else if (strcmp(name, "json") == 0) {
                        r = bool_value(value, &settings.json);
                        expect = "true or false";
                }
        } else if (strcmp(section, "send") == 0) {
                if (strcmp(name, "port") == 0) {
                        r = port_value(value, &settings.send_port);
                        expect = "a port from 1 to 65535";
                } else if (strcmp(name, "lab") == 0) {
                        r = bool_value(value, &settings.send_lab);
                        expect = "true or false";
                }
        } else if (strcmp(section, "fetch") == 0) {
                if (strcmp(name, "port") == 0) {
                        r = port_value(value, &settings.fetch_port);
                        expect = "a port from 1 to 65535";
                } else if (strcmp(name, "lab") == 0) {
                        r = bool_value(value, &settings.fetch_lab);
                        expect = "true or false";
                } else if (strcmp(name, "verify") == 0) {
                        r = bool_value(value, &settings.fetch_verify);
                        expect = "true or false";
                }
        } else if (strcmp(section, "echo") == 0) {
                if (strcmp(name, "port") == 0) {
                        r = port_value(value, &settings.echo_port);
                        expect = "a port from 1 to 65535";
                }
        } else if (strcmp(section, "guess") == 0) {
                if (strcmp(name, "port") == 0) {
                        r = port_value(value, &settings.guess_port);
                        expect = "a port from 1 to 65535";
                }
        } else {
                if (st->problem_line == 0) {
                        (void) xsnprintf(st->problem, sizeof st->problem,
                                         "unknown section [%.64s] (known: [defaults], [send], "
                                         "[fetch], [echo], [guess])", section);
                        st->problem_line = st->line;
                }
                return 0;
        }

        if (r < 0 && st->problem_line != 0)
                return 0;
        if (r == -ENOENT)
                (void) xsnprintf(st->problem, sizeof st->problem, "unknown key \"%.64s\" in section [%.64s]",
                                 name, section);
        else if (r < 0)
                (void) xsnprintf(st->problem, sizeof st->problem, "%.64s: \"%.64s\" is not %s", name, value,
                                 expect);
        if (r < 0) {
                /* Keep the first problem: it is the one inih reports the line of. */
                st->problem_line = st->line;
                return 0;
        }
        return 1;
}

static int load_file(const char *path, bool must_exist)
{
        struct ini_state st = { .path = path };
        _cleanup_fclose_ FILE *f = fopen(path, "re");

        if (!f) {
                if (!must_exist && errno == ENOENT)
                        return 0;
                fprintf(stderr, "%s: %s: %s\n", program_name, path, strerror(errno));
                return -EINVAL;
        }

        st.f = f;
        int r = ini_parse_stream(read_line, &st, on_value, &st);
        if (r == 0)
                return 0;
        if (r < 0) {
                fprintf(stderr, "%s: %s: cannot read the file\n", program_name, path);
                return -EINVAL;
        }
        /* inih returns the line of the first problem: ours, or a syntax error. */
        if (st.problem_line == r)
                fprintf(stderr, "%s:%d: %s\n", path, r, st.problem);
        else
                fprintf(stderr, "%s:%d: syntax error (expected [section], key = value, or a ; comment)\n",
                        path, r);
        return -EINVAL;
}

int settings_load(const char *explicit_path)
{
        settings = (struct settings) {
                .host = "localhost",
                .timeout_ms = 5000,
                .send_port = 12345,
                .fetch_port = 5001, /* the lab sheet's broken-download port */
                .echo_port = 8888,  /* the lab sheet's UDP echo port */
                .guess_port = 8889, /* the echo port + 1 (PROTOCOL.md 10.2) */
        };

        if (explicit_path)
                return load_file(explicit_path, true);

        int r = load_file(NETLAB_SYSCONFDIR "/netlab/netlabctl.ini", false);
        if (r < 0)
                return r;

        char path[4096];
        const char *xdg = getenv("XDG_CONFIG_HOME");
        const char *home = getenv("HOME");
        if (xdg && xdg[0] == '/')
                r = xsnprintf(path, sizeof path, "%s/netlab/netlabctl.ini", xdg);
        else if (home && home[0] == '/')
                r = xsnprintf(path, sizeof path, "%s/.config/netlab/netlabctl.ini", home);
        else
                return 0;
        if (r < 0)
                return 0; /* a path that long cannot be ours */
        return load_file(path, false);
}

int parse_port(const char *opt, const char *arg, uint16_t *ret)
{
        if (port_value(arg, ret) < 0) {
                usage_error("%s: \"%s\" is not a port from 1 to 65535", opt, arg);
                return -EINVAL;
        }
        return 0;
}

int parse_common_option(int opt, const char *arg, uint16_t *port)
{
        switch (opt) {
        case OPT_HOST:
                if (host_value(arg, settings.host) < 0) {
                        usage_error("--host: \"%s\" is not a usable host name", arg);
                        return -EINVAL;
                }
                return 1;
        case OPT_PORT:
                return parse_port("--port", arg, port) < 0 ? -EINVAL : 1;
        case OPT_TIMEOUT:
                if (timeout_value(arg, &settings.timeout_ms) < 0) {
                        usage_error("--timeout: \"%s\" is not whole seconds from 1 to 86400", arg);
                        return -EINVAL;
                }
                return 1;
        case OPT_JSON:
                settings.json = true;
                return 1;
        case OPT_NO_JSON:
                settings.json = false;
                return 1;
        default:
                return 0;
        }
}

int usage_error(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", program_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_USAGE;
}
