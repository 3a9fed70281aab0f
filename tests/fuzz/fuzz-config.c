/* fuzz-config.c: netlabd's config loader (daemon/config.c, config_load()),
 * the parser an admin's file and everything it @includes go through at
 * start and at every SIGHUP reload.
 *
 * Input: the text of netlabd.conf, optionally a NUL and the text of
 * inc.conf beside it.  Both are written into a private temporary directory
 * made once per process, and config_load() reads netlabd.conf there, so
 * relative @includes resolve inside it (libconfig 1.5 prefixes even
 * absolute names with the include directory).  To keep the fuzzer out of
 * the real file system, an input is skipped unless every "@include" in it
 * names, literally, one of: inc.conf, netlabd.conf (itself: the depth
 * limit), missing.conf (absent) or sub (a directory).  Nothing else is
 * touched except stat() of a root a listener names.
 *
 * Checked: the result is 0, -EINVAL or -ENOMEM; 0 comes with a config and
 * no report, -EINVAL with at least one; every report names a file in the
 * temporary directory, a line >= 0 and a non-empty message; a loaded
 * config's listeners have a name, a known service and transport, a port
 * and are found by name; loading the same files again gives the same
 * result and the same reports. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char dir[4096];
static char conf_path[4200];
static char inc_path[4200];
static char sub_path[4200];

static const char *const include_allowed[] = { "inc.conf", "netlabd.conf", "missing.conf", "sub" };

struct reports {
        unsigned n;
        uint64_t hash; /* of every file, line and message, in order */
};

static void cleanup(void)
{
        (void) unlink(conf_path);
        (void) unlink(inc_path);
        (void) rmdir(sub_path);
        (void) rmdir(dir);
}

static void path_join(char *dst, size_t size, const char *name)
{
        int k = snprintf(dst, size, "%s/%s", dir, name);

        fuzz_check(k > 0 && (size_t) k < size, "path too long");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *tmp = getenv("TMPDIR");
        int k = snprintf(dir, sizeof dir, "%s/netlab-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");

        fuzz_check(k > 0 && (size_t) k < sizeof dir, "TMPDIR too long");
        fuzz_check(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
        path_join(conf_path, sizeof conf_path, "netlabd.conf");
        path_join(inc_path, sizeof inc_path, "inc.conf");
        path_join(sub_path, sizeof sub_path, "sub");
        fuzz_check(mkdir(sub_path, 0700) == 0, "mkdir %s: %s", sub_path, strerror(errno));
        fuzz_check(atexit(cleanup) == 0, "atexit");
        return 0;
}

/* Does every "@include" in buf name an allowed file, literally? */
static bool includes_allowed(const uint8_t *buf, size_t n)
{
        static const char kw[] = "@include";
        size_t kw_len = sizeof kw - 1;

        for (size_t i = 0; i + kw_len <= n; i++) {
                if (memcmp(buf + i, kw, kw_len) != 0)
                        continue;
                size_t j = i + kw_len;
                while (j < n && (buf[j] == ' ' || buf[j] == '\t'))
                        j++;
                if (j >= n || buf[j] != '"')
                        return false;
                j++;

                bool ok = false;
                for (size_t a = 0; a < sizeof include_allowed / sizeof include_allowed[0]; a++) {
                        size_t len = strlen(include_allowed[a]);

                        if (n - j > len && memcmp(buf + j, include_allowed[a], len) == 0 &&
                            buf[j + len] == '"')
                                ok = true;
                }
                if (!ok)
                        return false;
        }
        return true;
}

static void write_file(const char *path, const uint8_t *buf, size_t n)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

        fuzz_check(fd >= 0, "open %s: %s", path, strerror(errno));
        while (n > 0) {
                ssize_t k = write(fd, buf, n);

                fuzz_check(k > 0, "write %s: %s", path, strerror(errno));
                buf += k;
                n -= (size_t) k;
        }
        fuzz_check(close(fd) == 0, "close %s", path);
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3ull; /* FNV-1a */
        return h;
}

static void on_report(const char *file, int line, const char *message, void *userdata)
{
        struct reports *r = userdata;
        size_t dir_len = strlen(dir);

        fuzz_check(file != NULL && message != NULL && message[0] != '\0', "empty report");
        fuzz_check(line >= 0, "line %d", line);
        /* Every file a report names lies in the private directory. */
        fuzz_check(strncmp(file, dir, dir_len) == 0 && file[dir_len] == '/' &&
                           !strstr(file + dir_len, "/../"),
                   "a report names %s", file);
        r->n++;
        r->hash = hash_bytes(r->hash, file, strlen(file));
        r->hash = hash_bytes(r->hash, &line, sizeof line);
        r->hash = hash_bytes(r->hash, message, strlen(message));
}

static int load(struct reports *rep)
{
        struct config *c = NULL;
        int r;

        *rep = (struct reports) { .hash = 0xcbf29ce484222325ull };
        r = config_load(conf_path, on_report, rep, &c);
        fuzz_check(FUZZ_RC_IN(r, 0, -EINVAL, -ENOMEM), "r=%d", r);
        if (r == -EINVAL)
                fuzz_check(rep->n > 0, "-EINVAL without a report");
        if (r < 0)
                return r;

        fuzz_check(c != NULL && rep->n == 0, "loaded with %u reports", rep->n);
        fuzz_check(c->log_level >= LOG_ERR && c->log_level <= LOG_DEBUG, "log level %d", c->log_level);
        fuzz_check(c->n_listeners == 0 || c->listeners != NULL, "listeners");
        for (size_t i = 0; i < c->n_listeners; i++) {
                const struct listener_config *l = &c->listeners[i];

                fuzz_check(l->name && l->name[0] && l->service_name && l->transport_name && l->address,
                           "listener %zu lacks a string", i);
                fuzz_check(l->service != NULL, "listener %s has no service", l->name);
                fuzz_check(l->socktype == SOCK_STREAM || l->socktype == SOCK_DGRAM, "socktype %d",
                           l->socktype);
                fuzz_check(l->port >= 1 && l->port <= 65535, "port %lld", (long long) l->port);
                fuzz_check(config_find_listener(c, l->name) != NULL, "listener %s not found", l->name);
        }
        config_free(c);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nul = memchr(data, 0, size);
        size_t main_len = nul ? (size_t) (nul - data) : size;
        struct reports first, again;
        int r1, r2;

        if (!includes_allowed(data, size))
                return 0;

        write_file(conf_path, data, main_len);
        if (nul)
                write_file(inc_path, nul + 1, size - main_len - 1);
        else
                fuzz_check(unlink(inc_path) == 0 || errno == ENOENT, "unlink %s", inc_path);

        r1 = load(&first);
        r2 = load(&again);
        fuzz_check(r1 == r2 && first.n == again.n && first.hash == again.hash,
                   "a second load differs: %d/%u then %d/%u", r1, first.n, r2, again.n);
        return 0;
}
