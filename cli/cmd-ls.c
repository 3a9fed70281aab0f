/* cmd-ls.c: `netlabctl ls [PATH]`: list a directory of a file service.
 *
 * One FILE_LIST request; the answer is FILE_INFO, any number of FILE_ENTRIES
 * frames, then FILE_END (docs/PROTOCOL.md, 8.3 and 8.4).  The entries are
 * kept, sorted by name and printed at the end, so the text is aligned and
 * --json is one valid object.  A hostile server could send entries forever:
 * what is kept is capped at LS_KEEP_MAX bytes, and each frame is bounded by
 * the timeout. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "proto.h"
#include "util.h"

/* Memory for entries kept to sort: about 250,000 entries with 255-byte
 * names, millions with ordinary ones. */
#define LS_KEEP_MAX (64u * 1024u * 1024u)

/* In place of a time localtime() cannot show (escaped: "??-" is a trigraph). */
#define LS_NO_TIME "?\?\?\?-?\?-?\? ?\?:?\?"

struct ls_entry {
        uint8_t kind;
        uint64_t size;
        int64_t mtime_sec;
        size_t name_len;
        char *name; /* not NUL-terminated; owned */
};

struct ls_list {
        struct ls_entry *entries;
        size_t n_entries;
        size_t n_allocated;
        size_t kept_bytes;
};

static void ls_list_done(struct ls_list *l)
{
        for (size_t i = 0; i < l->n_entries; i++)
                free(l->entries[i].name);
        free(l->entries);
        *l = (struct ls_list) {};
}

static void help(void)
{
        printf("Usage: %s ls [OPTIONS] [PATH]\n"
               "\n"
               "List the directory PATH (relative to the server's root; none: the root) of a\n"
               "file service: one line per entry with its kind (- file, d directory, l link,\n"
               "? other), size, modification time (local time) and name, sorted by name.\n"
               "\n"
               "Options:\n"
               COMMON_OPTIONS_HELP
               "\n"
               "The port defaults to [fetch] port in the INI file, else 5001.\n"
               "Exit status: 0 listed, 1 listing too large to sort (over 64 MiB), 2 usage,\n"
               "3 cannot connect, 4 refused by the server, 5 server busy, 6 protocol error,\n"
               "7 timeout (see netlabctl(1)).\n",
               program_name);
}

static int compare_entries(const void *a, const void *b)
{
        const struct ls_entry *x = a, *y = b;
        size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
        int c = memcmp(x->name, y->name, n);

        if (c != 0)
                return c;
        return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static const char *kind_name(uint8_t kind)
{
        switch (kind) {
        case FILE_KIND_REGULAR:
                return "file";
        case FILE_KIND_DIRECTORY:
                return "directory";
        case FILE_KIND_SYMLINK:
                return "symlink";
        default:
                return "other";
        }
}

static char kind_char(uint8_t kind)
{
        switch (kind) {
        case FILE_KIND_REGULAR:
                return '-';
        case FILE_KIND_DIRECTORY:
                return 'd';
        case FILE_KIND_SYMLINK:
                return 'l';
        default:
                return '?';
        }
}

/* Return: 0; -ENOMEM; -E2BIG when the cap is reached. */
static int keep_entry(struct ls_list *l, const struct file_entry *e)
{
        size_t cost = sizeof(struct ls_entry) + e->name_len;

        if (l->kept_bytes + cost > LS_KEEP_MAX)
                return -E2BIG;
        if (l->n_entries == l->n_allocated) {
                size_t n = l->n_allocated ? l->n_allocated * 2 : 64;
                struct ls_entry *p = reallocarray(l->entries, n, sizeof *p);
                if (!p)
                        return -ENOMEM;
                l->entries = p;
                l->n_allocated = n;
        }
        char *name = malloc(e->name_len);
        if (!name)
                return -ENOMEM;
        memcpy(name, e->name, e->name_len);
        l->entries[l->n_entries++] = (struct ls_entry) {
                .kind = e->kind,
                .size = e->size,
                .mtime_sec = e->mtime_sec,
                .name_len = e->name_len,
                .name = name,
        };
        l->kept_bytes += cost;
        return 0;
}

static void print_text(const struct ls_list *l)
{
        int width = 1;

        for (size_t i = 0; i < l->n_entries; i++) {
                char digits[24];
                int k = xsnprintf(digits, sizeof digits, "%llu",
                                  (unsigned long long) l->entries[i].size);
                if (k > width)
                        width = k;
        }
        for (size_t i = 0; i < l->n_entries; i++) {
                const struct ls_entry *e = &l->entries[i];
                char when[32] = LS_NO_TIME;
                time_t t = (time_t) e->mtime_sec;
                struct tm tm;

                if (localtime_r(&t, &tm) && strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm) == 0)
                        (void) xsnprintf(when, sizeof when, LS_NO_TIME);
                printf("%c %*llu %s ", kind_char(e->kind), width, (unsigned long long) e->size,
                       when);
                print_name(stdout, (const uint8_t *) e->name, e->name_len);
                if (e->kind == FILE_KIND_DIRECTORY)
                        putchar('/');
                putchar('\n');
        }
}

static void print_json(const struct ls_list *l, const char *path)
{
        printf("{\"command\":\"ls\",\"status\":\"ok\",\"exit_code\":0,\"server\":");
        json_string(stdout, (const uint8_t *) settings.host, strlen(settings.host));
        printf(",\"port\":%u,\"path\":", settings.fetch_port);
        json_string(stdout, (const uint8_t *) path, strlen(path));
        printf(",\"entries\":[");
        for (size_t i = 0; i < l->n_entries; i++) {
                const struct ls_entry *e = &l->entries[i];
                printf("%s{\"name\":", i ? "," : "");
                json_string(stdout, (const uint8_t *) e->name, e->name_len);
                printf(",\"kind\":\"%s\",\"size\":%llu,\"mtime\":%lld}", kind_name(e->kind),
                       (unsigned long long) e->size, (long long) e->mtime_sec);
        }
        printf("]}\n");
}

/* Read the FILE_ENTRIES frames and the FILE_END after an OK FILE_INFO.
 * Return: EXIT_OK or the exit code (reported). */
static int read_entries(int fd, struct ls_list *l)
{
        _cleanup_free_ uint8_t *body = malloc(NL_ENTRIES_MAX);
        char problem[512];

        if (!body)
                return fail("ls", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        for (;;) {
                struct nl_header h;
                size_t n;
                int r = file_client_read_frame(fd, NULL, body, NL_ENTRIES_MAX, NL_ENTRIES_MAX, &h,
                                               &n, problem, sizeof problem);
                if (r == -ENODATA)
                        return fail("ls", EXIT_PROTOCOL, "connection-lost",
                                    "the connection closed after %zu entries, before the end of "
                                    "the listing", l->n_entries);
                if (r < 0)
                        return file_client_fail("ls", r, "the listing", problem, "");

                if (h.type == NL_TYPE_FILE_END) {
                        bool has_digest;
                        uint8_t digest[NL_DIGEST_SIZE];
                        if (h.status != NL_STATUS_OK)
                                return file_client_refused("ls", &h, body, n, "");
                        if (file_end_decode(body, n, &has_digest, digest) < 0 || has_digest)
                                return fail("ls", EXIT_PROTOCOL, "protocol-error",
                                            "the server sent a malformed end of the listing");
                        return EXIT_OK;
                }
                if (h.type != NL_TYPE_FILE_ENTRIES || h.status != NL_STATUS_OK)
                        return fail("ls", EXIT_PROTOCOL, "protocol-error",
                                    "the server sent a frame of type 0x%02x (status %u) inside a "
                                    "listing", h.type, h.status);

                struct wire_reader rd;
                struct file_entry e;
                wire_reader_init(&rd, body, n);
                while ((r = file_entry_next(&rd, &e)) > 0) {
                        r = keep_entry(l, &e);
                        if (r == -E2BIG)
                                return fail("ls", EXIT_FAILURE_OTHER, "too-large",
                                            "the listing is larger than the %u MiB netlabctl "
                                            "keeps to sort it (%zu entries so far)",
                                            LS_KEEP_MAX / (1024u * 1024u), l->n_entries);
                        if (r < 0)
                                return fail("ls", EXIT_FAILURE_OTHER, "internal-error",
                                            "out of memory");
                }
                if (r < 0)
                        return fail(
                                "ls", EXIT_PROTOCOL, "protocol-error",
                                "the server sent a malformed directory entry (after %zu entries)",
                                l->n_entries);
        }
}

int cmd_ls(int argc, char **argv)
{
        static const struct option options[] = {
                COMMON_LONG_OPTIONS,
                {}
        };
        int c;

        /* Options may follow PATH (getopt permutes; "--" ends them).  0,
         * not 1: glibc re-reads the ordering only then, and main() parsed
         * in "+" order. */
        optind = 0;
        while ((c = getopt_long(argc, argv, ":" COMMON_OPTIONS_SHORT, options, NULL)) >= 0) {
                int r = parse_common_option(c, optarg, &settings.fetch_port);
                if (r < 0)
                        return EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_HELP:
                        help();
                        return EXIT_OK;
                case ':':
                        return usage_error("ls: option %s needs a value", argv[optind - 1]);
                default:
                        return usage_error("ls: unknown option %s (see 'ls --help')",
                                           argv[optind - 1]);
                }
        }
        if (argc - optind > 1)
                return usage_error("ls: more than one PATH given (see 'ls --help')");

        /* "dir/", "/" and "." are what people type for "dir" and the root;
         * the server takes neither form, so say what we mean. */
        char path[NL_PATH_MAX + 1] = "";
        if (optind < argc) {
                const char *a = argv[optind];
                size_t n = strlen(a);
                while (n > 0 && a[n - 1] == '/')
                        n--;
                if (n == 1 && a[0] == '.')
                        n = 0;
                if (n > NL_PATH_MAX)
                        return usage_error("ls: PATH is longer than %u bytes", NL_PATH_MAX);
                memcpy(path, a, n);
                path[n] = '\0';

                const char *problem = NULL;
                if (file_path_check((const uint8_t *) path, n, true, false, &problem) < 0)
                        return usage_error("ls: PATH \"%s\": %s", a, problem);
        }

        struct file_request req = {
                .type = NL_TYPE_FILE_LIST,
                .path = (const uint8_t *) path,
                .path_len = strlen(path),
        };
        char err[512], problem[512];
        _cleanup_close_ int fd = net_connect_tcp(settings.host, settings.fetch_port,
                                                 settings.timeout_ms, err, sizeof err);
        if (fd < 0)
                return fail("ls", EXIT_CONNECT, "connect-failed", "%s", err);

        int r = file_client_send(fd, &req);
        if (r == -ETIMEDOUT)
                return fail("ls", EXIT_TIMEOUT, "timeout", "sending the request timed out");
        if (r < 0 && r != -EALREADY)
                return fail("ls", EXIT_CONNECT, "connection-error",
                            "sending the request failed: %s", strerror(-r));

        uint8_t body[NL_ERROR_TEXT_MAX];
        struct nl_header h;
        struct file_info info;
        size_t n;
        r = file_client_read_frame(fd, "ls needs netlab's file service", body, sizeof body,
                                   NL_INFO_SIZE, &h, &n, problem, sizeof problem);
        if (r < 0)
                return file_client_fail("ls", r, "an answer", problem, "");
        if (h.type != NL_TYPE_FILE_INFO)
                return fail("ls", EXIT_PROTOCOL, "protocol-error",
                            "the server answered with a frame of type 0x%02x instead of FILE_INFO",
                            h.type);
        if (h.status != NL_STATUS_OK)
                return file_client_refused("ls", &h, body, n, "");
        if (file_info_decode(body, n, &info) < 0 || info.kind != FILE_KIND_DIRECTORY)
                return fail("ls", EXIT_PROTOCOL, "protocol-error",
                            "the server sent a malformed FILE_INFO for a directory listing");

        _cleanup_(ls_list_done) struct ls_list list = {};
        r = read_entries(fd, &list);
        if (r != EXIT_OK)
                return r;

        if (list.n_entries > 1)
                qsort(list.entries, list.n_entries, sizeof list.entries[0], compare_entries);
        if (settings.json)
                print_json(&list, path);
        else
                print_text(&list);
        return EXIT_OK;
}
