/* test-fileroot.c: confinement beneath a root (daemon/fileroot.c).
 *
 * A mkdtemp() directory under /tmp holds a secret file and a root/ beside it.
 * The root holds regular files, nested directories, a FIFO, a device node, a
 * unix socket and symlinks of every kind: inside, escaping with "..",
 * absolute, to "/", chained, magic (/proc/self), looping and dangling.  Every
 * case runs in both modes, AUTO (openat2() on this kernel) and WALK, and
 * asserts the exact errno, or on success that the fd is the right file with
 * the right type and flags.  A forked child with a seccomp filter that makes
 * openat2() fail with ENOSYS checks AUTO's fallback to the walk.  The
 * validator gets its exact bytes and its change and no-change properties.
 *
 * Runs as root (mknod); the temporary tree is removed at the end, without
 * following its symlinks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileroot.h"
#include "proto.h"
#include "test-util.h"
#include "util.h"

static char base[] = "/tmp/netlab-test-fileroot.XXXXXX";
static char root[sizeof base + 8]; /* <base>/root */
static int root_fd = -1;

/* A path given as bytes: it may hold a NUL. */
#define P(s) (const uint8_t *) (s), sizeof(s) - 1

static const char *want_name(enum fileroot_want want)
{
        switch (want) {
        case FILEROOT_WANT_FILE:
                return "file";
        case FILEROOT_WANT_DIRECTORY:
                return "directory";
        case FILEROOT_WANT_ANY:
                return "any";
        }
        return "?";
}

#define AUTO FILEROOT_RESOLVE_AUTO
#define WALK FILEROOT_RESOLVE_WALK
#define WANT_FILE FILEROOT_WANT_FILE
#define WANT_DIR FILEROOT_WANT_DIRECTORY

static const enum fileroot_resolve modes[] = { AUTO, WALK };

static const char *mode_name(enum fileroot_resolve mode)
{
        return mode == FILEROOT_RESOLVE_AUTO ? "auto" : "walk";
}

/* ---- building the tree ---- */

static int make_file(const char *rel, const char *text)
{
        char path[512];
        _cleanup_close_ int fd = -1;
        size_t len = strlen(text);

        if (xsnprintf(path, sizeof path, "%s/%s", base, rel) < 0)
                return -ENOBUFS;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (len > 0 && write(fd, text, len) != (ssize_t) len)
                return -EIO;
        return 0;
}

static int make_dir(const char *rel)
{
        char path[512];

        if (xsnprintf(path, sizeof path, "%s/%s", base, rel) < 0)
                return -ENOBUFS;
        return mkdir(path, 0755) < 0 ? -errno : 0;
}

static int make_link(const char *target, const char *rel)
{
        char path[512];

        if (xsnprintf(path, sizeof path, "%s/%s", base, rel) < 0)
                return -ENOBUFS;
        return symlink(target, path) < 0 ? -errno : 0;
}

static int make_socket(const char *rel)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (xsnprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", base, rel) < 0)
                return -ENOBUFS;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* The socket file stays after the socket is closed, which is all
         * the test needs: opening it fails with ENXIO either way. */
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        return 0;
}

/* 255 'n's: the longest name a component may have. */
static char long_name[NL_NAME_MAX + 1];

enum node_kind { NODE_FILE, NODE_DIR, NODE_LINK };

/* The tree, created in this order.  For a link, `text` is its target. */
static const struct node {
        enum node_kind kind;
        const char *rel;
        const char *text;
} nodes[] = {
        { NODE_FILE, "secret.txt", "top secret\n" },
        { NODE_DIR, "root", NULL },
        { NODE_FILE, "root/top.txt", "hello\n" },
        { NODE_FILE, "root/empty", "" },
        { NODE_FILE, "root/.hidden", "dot\n" },
        { NODE_DIR, "root/dir", NULL },
        { NODE_FILE, "root/dir/a.txt", "a\n" },
        { NODE_DIR, "root/dir/sub", NULL },
        { NODE_FILE, "root/dir/sub/deep.txt", "deep\n" },
        /* Inside, staying inside. */
        { NODE_LINK, "root/link-in", "top.txt" },
        { NODE_LINK, "root/link-dir", "dir" },
        { NODE_LINK, "root/dir/up", "../top.txt" },
        { NODE_LINK, "root/dir/self", "../dir" },
        { NODE_LINK, "root/link-fifo", "fifo" },
        { NODE_LINK, "root/link-null", "null" },
        { NODE_LINK, "root/loop", "loop" },
        { NODE_LINK, "root/dangling", "nowhere" },
        /* Escaping. */
        { NODE_LINK, "root/link-secret", "../secret.txt" },
        { NODE_LINK, "root/dir/esc", "../../secret.txt" },
        { NODE_LINK, "root/link-dotdot", "../../etc/passwd" },
        { NODE_LINK, "root/link-deep", "../../../../../../../../../etc/passwd" },
        { NODE_LINK, "root/link-abs", "/etc/passwd" },
        { NODE_LINK, "root/link-root", "/" },
        { NODE_LINK, "root/link-up", ".." },
        { NODE_LINK, "root/hop1", "hop2" },
        { NODE_LINK, "root/hop2", "../secret.txt" },
        { NODE_LINK, "root/proc", "/proc/self" },
};

static int build_tree(void)
{
        char path[512];
        int r;

        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                const struct node *n = &nodes[i];

                r = n->kind == NODE_FILE ? make_file(n->rel, n->text)
                    : n->kind == NODE_DIR ? make_dir(n->rel)
                                          : make_link(n->text, n->rel);
                if (r < 0) {
                        fprintf(stderr, "creating %s: %s\n", n->rel, strerror(-r));
                        return r;
                }
        }

        /* An absolute link to a file inside the root: still refused. */
        if (xsnprintf(path, sizeof path, "%s/top.txt", root) < 0)
                return -ENOBUFS;
        r = make_link(path, "root/link-abs-in");
        if (r < 0)
                return r;

        memset(long_name, 'n', NL_NAME_MAX);
        long_name[NL_NAME_MAX] = '\0';
        if (xsnprintf(path, sizeof path, "root/%s", long_name) < 0)
                return -ENOBUFS;
        r = make_file(path, "long\n");
        if (r < 0)
                return r;

        r = make_socket("root/sock");
        if (r < 0)
                return r;
        if (xsnprintf(path, sizeof path, "%s/fifo", root) < 0)
                return -ENOBUFS;
        if (mkfifo(path, 0644) < 0)
                return -errno;
        /* /dev/null's own type and numbers: harmless if it were ever read. */
        if (xsnprintf(path, sizeof path, "%s/null", root) < 0)
                return -ENOBUFS;
        if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) < 0)
                return -errno;
        return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        if (remove(path) < 0) {
                fprintf(stderr, "remove(%s): %m\n", path);
                return -1;
        }
        return 0;
}

static int remove_tree(void)
{
        /* FTW_PHYS: never follow link-root to "/". */
        return nftw(base, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0 ? 0 : -EIO;
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        if (!d)
                return -errno;
        while (readdir(d))
                n++;
        (void) closedir(d);
        return n;
}

/* ---- the case table ---- */

struct open_case {
        const uint8_t *path;
        size_t len;
        enum fileroot_want want;
        int r_auto, r_walk; /* 0 for success */
        const char *same_as; /* on success: the file it must be, relative to base */
};

/* w is FILE, DIRECTORY or ANY. */
#define C(p, w, ra, rw, same) { P(p), FILEROOT_WANT_##w, ra, rw, same }
#define BOTH(p, w, r, same) C(p, w, r, r, same)

static const struct open_case open_cases[] = {
        /* Plain files and directories. */
        BOTH("top.txt", FILE, 0, "root/top.txt"),
        BOTH("top.txt", ANY, 0, "root/top.txt"),
        BOTH("top.txt", DIRECTORY, -EPERM, NULL),
        BOTH("empty", FILE, 0, "root/empty"),
        BOTH(".hidden", FILE, 0, "root/.hidden"), /* hiding is file_path_check()'s job */
        BOTH("dir/a.txt", FILE, 0, "root/dir/a.txt"),
        BOTH("dir/sub/deep.txt", FILE, 0, "root/dir/sub/deep.txt"),
        BOTH("dir", DIRECTORY, 0, "root/dir"),
        BOTH("dir", ANY, 0, "root/dir"),
        BOTH("dir", FILE, -EPERM, NULL),
        BOTH("dir/sub", DIRECTORY, 0, "root/dir/sub"),
        BOTH("", DIRECTORY, 0, "root"),
        BOTH("", ANY, 0, "root"),
        BOTH("", FILE, -EPERM, NULL),

        /* Nothing there, or a file where a directory should be. */
        BOTH("missing", FILE, -ENOENT, NULL),
        BOTH("missing", DIRECTORY, -ENOENT, NULL),
        BOTH("dir/missing", FILE, -ENOENT, NULL),
        BOTH("missing/top.txt", FILE, -ENOENT, NULL),
        BOTH("top.txt/x", FILE, -ENOENT, NULL),
        BOTH("top.txt/x", DIRECTORY, -ENOENT, NULL),
        BOTH("dir/a.txt/sub/x", ANY, -ENOENT, NULL),

        /* Not files: refused without blocking or leaking. */
        BOTH("fifo", FILE, -EPERM, NULL),
        BOTH("fifo", ANY, -EPERM, NULL),
        BOTH("fifo", DIRECTORY, -EPERM, NULL),
        BOTH("null", FILE, -EPERM, NULL),
        BOTH("null", ANY, -EPERM, NULL),
        BOTH("null", DIRECTORY, -EPERM, NULL),
        BOTH("sock", FILE, -EPERM, NULL),
        BOTH("sock", ANY, -EPERM, NULL),
        BOTH("sock", DIRECTORY, -EPERM, NULL),
        BOTH("fifo/x", FILE, -ENOENT, NULL),

        /* Symlinks that stay inside: openat2() follows, the walk refuses. */
        C("link-in", FILE, 0, -ELOOP, "root/top.txt"),
        C("link-in", DIRECTORY, -EPERM, -ELOOP, NULL),
        C("link-in/x", FILE, -ENOENT, -ELOOP, NULL),
        C("link-dir", DIRECTORY, 0, -ELOOP, "root/dir"),
        C("link-dir", ANY, 0, -ELOOP, "root/dir"),
        C("link-dir", FILE, -EPERM, -ELOOP, NULL),
        C("link-dir/a.txt", FILE, 0, -ELOOP, "root/dir/a.txt"),
        C("link-dir/sub/deep.txt", FILE, 0, -ELOOP, "root/dir/sub/deep.txt"),
        C("dir/up", FILE, 0, -ELOOP, "root/top.txt"),
        C("dir/self/a.txt", FILE, 0, -ELOOP, "root/dir/a.txt"),
        C("link-fifo", FILE, -EPERM, -ELOOP, NULL),
        C("link-null", FILE, -EPERM, -ELOOP, NULL),
        C("dangling", FILE, -ENOENT, -ELOOP, NULL),
        C("dangling/x", FILE, -ENOENT, -ELOOP, NULL),
        BOTH("loop", FILE, -ELOOP, NULL),
        BOTH("loop/x", FILE, -ELOOP, NULL),

        /* Symlinks that escape: EXDEV from openat2(), ELOOP from the walk. */
        C("link-secret", FILE, -EXDEV, -ELOOP, NULL),
        C("dir/esc", FILE, -EXDEV, -ELOOP, NULL),
        C("link-dotdot", FILE, -EXDEV, -ELOOP, NULL),
        C("link-deep", FILE, -EXDEV, -ELOOP, NULL),
        C("link-abs", FILE, -EXDEV, -ELOOP, NULL),
        C("link-abs", ANY, -EXDEV, -ELOOP, NULL),
        C("link-abs-in", FILE, -EXDEV, -ELOOP, NULL), /* absolute, even to inside */
        C("link-root", DIRECTORY, -EXDEV, -ELOOP, NULL),
        C("link-root/etc/passwd", FILE, -EXDEV, -ELOOP, NULL),
        C("link-up/secret.txt", FILE, -EXDEV, -ELOOP, NULL),
        C("link-up", DIRECTORY, -EXDEV, -ELOOP, NULL),
        C("hop1", FILE, -EXDEV, -ELOOP, NULL),
        C("hop2", FILE, -EXDEV, -ELOOP, NULL),
        C("proc", DIRECTORY, -EXDEV, -ELOOP, NULL),
        C("proc/exe", FILE, -EXDEV, -ELOOP, NULL),
        C("proc/root/etc/passwd", FILE, -EXDEV, -ELOOP, NULL),
        C("dir/self/../../secret.txt", FILE, -EXDEV, -EXDEV, NULL),

        /* Lexical refusals, the same in both modes and before any lookup. */
        BOTH(".", DIRECTORY, -EXDEV, NULL),
        BOTH("..", DIRECTORY, -EXDEV, NULL),
        BOTH("../secret.txt", FILE, -EXDEV, NULL),
        BOTH("../root/top.txt", FILE, -EXDEV, NULL),
        BOTH("dir/../top.txt", FILE, -EXDEV, NULL),
        BOTH("dir/../../secret.txt", FILE, -EXDEV, NULL),
        BOTH("./top.txt", FILE, -EXDEV, NULL),
        BOTH("dir/./a.txt", FILE, -EXDEV, NULL),
        BOTH("dir/..", DIRECTORY, -EXDEV, NULL),
        BOTH("/etc/passwd", FILE, -EXDEV, NULL),
        BOTH("//etc/passwd", FILE, -EXDEV, NULL),
        BOTH("/", DIRECTORY, -EXDEV, NULL),
        BOTH("dir//a.txt", FILE, -EINVAL, NULL),
        BOTH("dir/", DIRECTORY, -EINVAL, NULL),
        BOTH("top.txt/", FILE, -EINVAL, NULL),
        BOTH("top.txt\0/../secret.txt", FILE, -EINVAL, NULL),
        BOTH("top.txt\0", FILE, -EINVAL, NULL),
        BOTH("\0", FILE, -EINVAL, NULL),
        /* Not decoded, so these are plain (missing) names. */
        BOTH("%2e%2e/secret.txt", FILE, -ENOENT, NULL),
        BOTH("..%2fsecret.txt", FILE, -ENOENT, NULL),
        BOTH("..\\secret.txt", FILE, -ENOENT, NULL),
        BOTH("...", FILE, -ENOENT, NULL),
        BOTH("\xc0\xae\xc0\xae/secret.txt", FILE, -ENOENT, NULL),
};

/* Is fd the file base/same_as names (same device and inode)? */
static bool same_file(int fd, const char *same_as)
{
        char path[512];
        struct stat a, b;

        if (xsnprintf(path, sizeof path, "%s/%s", base, same_as) < 0 || fstat(fd, &a) < 0 ||
            lstat(path, &b) < 0)
                return false;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Run one open and assert its result.  want_r 0 means success. */
static void check_open(const uint8_t *path, size_t len, enum fileroot_resolve mode,
                       enum fileroot_want want, int want_r, const char *same_as)
{
        char esc[128];
        struct stat st;

        TEST_CASE("open %s \"%s\" (%zu bytes), want %s", mode_name(mode),
                  test_escape(esc, sizeof esc, path, len), len, want_name(want));
        memset(&st, 0x5a, sizeof st);
        _cleanup_close_ int fd = fileroot_open(root_fd, path, len, mode, want, &st);
        CHECK_STR(fileroot_last_resolver(), mode == FILEROOT_RESOLVE_AUTO ? "openat2" : "walk");
        if (want_r < 0) {
                CHECK_ERR(fd, want_r);
                CHECK_U64(st.st_ino, 0x5a5a5a5a5a5a5a5aull); /* untouched on error */
                return;
        }
        if (!CHECK(fd >= 0)) {
                CHECK_ERR(fd, 0);
                return;
        }

        struct stat now;
        CHECK(fstat(fd, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev);
        if (same_as)
                CHECK(same_file(fd, same_as));
        if (want == FILEROOT_WANT_FILE)
                CHECK(S_ISREG(st.st_mode));
        else if (want == FILEROOT_WANT_DIRECTORY)
                CHECK(S_ISDIR(st.st_mode));
        else
                CHECK(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));

        int fd_flags = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
        CHECK(fd_flags >= 0 && (fd_flags & FD_CLOEXEC));
        CHECK(fl >= 0 && (fl & O_ACCMODE) == O_RDONLY && (fl & O_NONBLOCK) && !(fl & O_PATH));
}

static void test_open_table(void)
{
        int before = count_fds();

        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t i = 0; i < ELEMENTSOF(open_cases); i++) {
                        const struct open_case *c = &open_cases[i];
                        int want_r = modes[m] == AUTO ? c->r_auto : c->r_walk;

                        check_open(c->path, c->len, modes[m], c->want, want_r, c->same_as);
                }

        /* Every path through fileroot_open() closes what it opened. */
        TEST_CASE("open table leaks no fd");
        CHECK(before > 0);
        CHECK_INT(count_fds(), before);
}

/* Component and path length limits, checked against real names. */
static void test_lengths(void)
{
        static uint8_t buf[NL_PATH_MAX + 2];
        char name[NL_NAME_MAX + 2];

        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                /* A 255-byte name is fine; 256 is refused before the kernel. */
                check_open((const uint8_t *) long_name, NL_NAME_MAX, modes[m], WANT_FILE, 0, NULL);
                memset(name, 'n', NL_NAME_MAX + 1);
                check_open((const uint8_t *) name, NL_NAME_MAX + 1, modes[m], WANT_FILE,
                           -ENAMETOOLONG, NULL);
                memcpy(name, "dir/", 4);
                check_open((const uint8_t *) name, NL_NAME_MAX + 1, modes[m], WANT_FILE,
                           -ENOENT, NULL); /* dir/ + 252 bytes */

                /* Paths of 4095, 4096 and 4097 bytes of 200-byte components:
                 * the kernel's PATH_MAX counts the NUL, so 4096 is refused,
                 * the same way by both resolvers. */
                for (size_t len = NL_PATH_MAX - 1; len <= NL_PATH_MAX + 1; len++) {
                        for (size_t i = 0; i < len; i++)
                                buf[i] = (i % 201 == 200) ? '/' : 'p';
                        check_open(buf, len, modes[m], WANT_FILE,
                                   len < NL_PATH_MAX ? -ENOENT : -ENAMETOOLONG, NULL);
                }
        }
}

/* The root itself being /proc/self: its magic links are refused in both
 * modes (RESOLVE_NO_MAGICLINKS, O_NOFOLLOW), plain files are served. */
static void test_magic_links(void)
{
        static const struct open_case cases[] = {
                BOTH("exe", FILE, -ELOOP, NULL),
                BOTH("exe", ANY, -ELOOP, NULL),
                BOTH("cwd", DIRECTORY, -ELOOP, NULL),
                BOTH("root", DIRECTORY, -ELOOP, NULL),
                BOTH("root/etc/passwd", FILE, -ELOOP, NULL),
                BOTH("cwd/top.txt", FILE, -ELOOP, NULL),
                BOTH("status", FILE, 0, NULL),
                BOTH("fd", DIRECTORY, 0, NULL),
        };
        int saved_root_fd = root_fd;
        _cleanup_close_ int proc_fd = fileroot_open_root("/proc/self");

        TEST_CASE("open /proc/self as a root");
        if (!CHECK(proc_fd >= 0))
                return;
        root_fd = proc_fd;
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                char fd_path[32];

                for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                        check_open(cases[i].path, cases[i].len, modes[m], cases[i].want,
                                   cases[i].r_auto, NULL);

                /* fd/N of an fd surely open (stdin may be closed). */
                int k = snprintf(fd_path, sizeof fd_path, "fd/%d", saved_root_fd);
                if (k > 0 && (size_t) k < sizeof fd_path) {
                        check_open((const uint8_t *) fd_path, (size_t) k, modes[m], WANT_FILE,
                                   -ELOOP, NULL);
                        check_open((const uint8_t *) fd_path, (size_t) k, modes[m],
                                   FILEROOT_WANT_ANY, -ELOOP, NULL);
                        check_open((const uint8_t *) fd_path, (size_t) k, modes[m], WANT_DIR,
                                   -ELOOP, NULL);
                }
        }
        root_fd = saved_root_fd;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return 0;
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A FIFO with no writer: open(O_RDONLY) without O_NONBLOCK would wait
 * forever.  main()'s alarm() turns a regression into a crash, not a hang. */
static void test_fifo_prompt(void)
{

        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                struct stat st;

                TEST_CASE("fifo refused promptly, %s", mode_name(modes[m]));
                int64_t t0 = now_ms();
                int r = fileroot_open(root_fd, P("fifo"), modes[m], WANT_FILE, &st);
                int64_t ms = now_ms() - t0;
                CHECK_ERR(r, -EPERM);
                CHECK(ms < 1000);
                if (r >= 0)
                        (void) close(r);
        }
}

static void test_bad_arguments(void)
{
        struct stat st;

        TEST_CASE("bad arguments");
        CHECK_ERR(fileroot_open(-1, P("top.txt"), AUTO, WANT_FILE, &st), -EINVAL);
        CHECK_ERR(fileroot_open(root_fd, NULL, 3, AUTO, WANT_FILE, &st), -EINVAL);
        CHECK_ERR(fileroot_open(root_fd, P("top.txt"), (enum fileroot_resolve) 7, WANT_FILE, &st),
                  -EINVAL);
        CHECK_ERR(fileroot_open(root_fd, P("top.txt"), WALK, (enum fileroot_want) 9, &st),
                  -EINVAL);
        CHECK_ERR(fileroot_open(root_fd, P("top.txt"), WALK, WANT_FILE, NULL),
                  -EINVAL);

        TEST_CASE("NULL path of length 0 is the root");
        int fd = fileroot_open(root_fd, NULL, 0, WALK, WANT_DIR, &st);
        CHECK(fd >= 0 && S_ISDIR(st.st_mode));
        if (fd >= 0)
                (void) close(fd);

        /* A root fd that is a file: nothing beneath it. */
        TEST_CASE("root fd is a regular file");
        _cleanup_close_ int file_fd = fileroot_open(root_fd, P("top.txt"), WALK,
                                                    WANT_FILE, &st);
        if (CHECK(file_fd >= 0)) {
                CHECK_ERR(fileroot_open(file_fd, P("x"), AUTO, WANT_FILE, &st),
                          -ENOENT);
                CHECK_ERR(fileroot_open(file_fd, P("x"), WALK, WANT_FILE, &st),
                          -ENOENT);
        }
}

static void test_resolve_from_string(void)
{
        static const struct { const char *s; int r; enum fileroot_resolve mode; } cases[] = {
                { "auto", 0, AUTO },
                { "walk", 0, WALK },
                { "AUTO", -EINVAL, 0 },
                { "Walk", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "walk ", -EINVAL, 0 },
                { " auto", -EINVAL, 0 },
                { "openat2", -EINVAL, 0 },
                { "autowalk", -EINVAL, 0 },
                { NULL, -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                enum fileroot_resolve mode = (enum fileroot_resolve) 42;

                TEST_CASE("resolve \"%s\"", cases[i].s ? cases[i].s : "(null)");
                CHECK_ERR(fileroot_resolve_from_string(cases[i].s, &mode), cases[i].r);
                CHECK_INT(mode, cases[i].r == 0 ? (int) cases[i].mode : 42);
        }
}

static void test_open_root(void)
{
        char path[512];

        TEST_CASE("open_root: the test root");
        _cleanup_close_ int fd = fileroot_open_root(root);
        if (CHECK(fd >= 0)) {
                int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
                CHECK(fl >= 0 && (fl & O_PATH));
                CHECK(fdf >= 0 && (fdf & FD_CLOEXEC));
        }

        TEST_CASE("open_root: missing");
        CHECK(xsnprintf(path, sizeof path, "%s/missing", base) > 0);
        CHECK_ERR(fileroot_open_root(path), -ENOENT);

        TEST_CASE("open_root: a regular file");
        CHECK(xsnprintf(path, sizeof path, "%s/secret.txt", base) > 0);
        CHECK_ERR(fileroot_open_root(path), -ENOTDIR);

        TEST_CASE("open_root: a FIFO");
        CHECK(xsnprintf(path, sizeof path, "%s/fifo", root) > 0);
        CHECK_ERR(fileroot_open_root(path), -ENOTDIR);

        TEST_CASE("open_root: NULL");
        CHECK_ERR(fileroot_open_root(NULL), -EINVAL);

        /* The admin's root may itself be a symlink (config is trusted). */
        TEST_CASE("open_root: through a symlink");
        CHECK(xsnprintf(path, sizeof path, "%s/link-dir", root) > 0);
        _cleanup_close_ int dir_fd = fileroot_open_root(path);
        CHECK(dir_fd >= 0);
        struct stat st;
        int a = dir_fd >= 0 ? fileroot_open(dir_fd, P("a.txt"), WALK,
                                            WANT_FILE, &st) : -EBADF;
        CHECK(a >= 0);
        if (a >= 0)
                (void) close(a);
}

/* ---- openat2() missing: AUTO falls back to the walk, for good ---- */

/* Give openat2() the seccomp action `action` in this process: first
 * ENOSYS, as an old kernel or a container's profile would; then, stacked on
 * it, death, to prove it is never called again.  No architecture check: on
 * any ABI the number we compare with is this build's openat2. */
static int filter_openat2(uint32_t action)
{
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, action),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(filter), .filter = filter };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return -errno;
        return 0;
}

static void test_enosys_fallback(void)
{
        /* AUTO in the child must give exactly the walk's answers.  After the
         * first case, calling openat2() again kills the child. */
        static const struct open_case cases[] = {
                C("top.txt", FILE, 0, 0, NULL),
                C("link-in", FILE, 0, -ELOOP, NULL),
                C("link-secret", FILE, -EXDEV, -ELOOP, NULL),
                C("link-dir/a.txt", FILE, 0, -ELOOP, NULL),
                C("top.txt/x", DIRECTORY, -ENOENT, -ENOENT, NULL),
                C("fifo", FILE, -EPERM, -EPERM, NULL),
                C("dir", DIRECTORY, 0, 0, NULL),
        };
        struct result {
                int probe;                /* raw openat2() errno after the filter */
                int r[ELEMENTSOF(cases)];
                bool walk[ELEMENTSOF(cases)];
        } res = {};
        int pipefd[2];

        TEST_CASE("enosys: fork");
        if (!CHECK(pipe2(pipefd, O_CLOEXEC) == 0))
                return;
        pid_t pid = fork();
        if (!CHECK(pid >= 0)) {
                (void) close(pipefd[0]);
                (void) close(pipefd[1]);
                return;
        }
        if (pid == 0) {
                struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };

                (void) close(pipefd[0]);
                alarm(10);
                res.probe = filter_openat2(SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
                if (res.probe == 0) {
                        long k = syscall(SYS_openat2, root_fd, "top.txt", &how, sizeof how);
                        res.probe = k >= 0 ? 0 : -errno;
                }
                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        struct stat st;

                        if (i == 1 && filter_openat2(SECCOMP_RET_KILL_PROCESS) < 0)
                                _exit(2);

                        res.r[i] = fileroot_open(root_fd, cases[i].path, cases[i].len,
                                                 AUTO, cases[i].want, &st);
                        res.walk[i] = strcmp(fileroot_last_resolver(), "walk") == 0;
                        if (res.r[i] >= 0) {
                                (void) close(res.r[i]);
                                res.r[i] = 0;
                        }
                }
                _exit(write(pipefd[1], &res, sizeof res) == (ssize_t) sizeof res ? 0 : 1);
        }

        (void) close(pipefd[1]);
        ssize_t k = read(pipefd[0], &res, sizeof res);
        (void) close(pipefd[0]);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        /* SIGSYS here: AUTO called openat2() again after its ENOSYS. */
        test_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, __FILE__, __LINE__,
                   "child status 0x%x (signal %d)", (unsigned) status,
                   WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        CHECK_INT(k, (ssize_t) sizeof res);

        TEST_CASE("enosys: the filter hides openat2()");
        CHECK_ERR(res.probe, -ENOSYS);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char esc[64];

                TEST_CASE("enosys: auto \"%s\" walks",
                          test_escape(esc, sizeof esc, cases[i].path, cases[i].len));
                CHECK_ERR(res.r[i], cases[i].r_walk);
                CHECK(res.walk[i]);
        }

        /* The parent's own state is untouched by the child's. */
        TEST_CASE("enosys: parent still uses openat2");
        struct stat st;
        int fd = fileroot_open(root_fd, P("link-in"), AUTO, WANT_FILE, &st);
        CHECK(fd >= 0);
        CHECK_STR(fileroot_last_resolver(), "openat2");
        if (fd >= 0)
                (void) close(fd);
}

/* ---- validators ---- */

static void test_validator_bytes(void)
{
        struct stat st = {};
        uint8_t v[NL_VALIDATOR_SIZE];

        TEST_CASE("validator: exact bytes");
        st.st_ino = (ino_t) 0x0102030405060708ull;
        st.st_size = (off_t) 0x1112131415161718ll;
        st.st_mtim = (struct timespec) { .tv_sec = 1, .tv_nsec = 2 };
        st.st_ctim = (struct timespec) { .tv_sec = 1700000000, .tv_nsec = 999999999 };
        fileroot_validator(&st, v);
        static const uint8_t want[] = {
                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                0x00, 0x00, 0x00, 0x00, 0x3b, 0x9a, 0xca, 0x02, /* 1000000002 */
                0x17, 0x97, 0x9c, 0xfe, 0x71, 0xc4, 0xc9, 0xff, /* 1700000000999999999 */
        };
        CHECK_MEM(v, sizeof v, want, sizeof want);

        TEST_CASE("validator: time before 1970 wraps, no UB");
        st.st_mtim = (struct timespec) { .tv_sec = -1, .tv_nsec = 0 };
        fileroot_validator(&st, v);
        static const uint8_t want_mtime[] = { 0xff, 0xff, 0xff, 0xff, 0xc4, 0x65, 0x36, 0x00 };
        CHECK_MEM(v + 16, 8, want_mtime, sizeof want_mtime);

        /* Each field alone moves the validator. */
        struct stat a = {}, b;
        uint8_t va[NL_VALIDATOR_SIZE], vb[NL_VALIDATOR_SIZE];
        fileroot_validator(&a, va);
        for (int field = 0; field < 6; field++) {
                b = a;
                switch (field) {
                case 0: b.st_ino = 1; break;
                case 1: b.st_size = 1; break;
                case 2: b.st_mtim.tv_sec = 1; break;
                case 3: b.st_mtim.tv_nsec = 1; break;
                case 4: b.st_ctim.tv_sec = 1; break;
                case 5: b.st_ctim.tv_nsec = 1; break;
                }
                TEST_CASE("validator: field %d changes it", field);
                fileroot_validator(&b, vb);
                CHECK(memcmp(va, vb, sizeof va) != 0);
        }
}

/* Sleep past the file system's timestamp granularity (a jiffy at most), so
 * a change cannot land on the same mtime by chance. */
static void tick(void)
{
        struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* The validator of root/<name> as fileroot_open() sees it, in mode. */
static int validator_of(const char *name, enum fileroot_resolve mode,
                        uint8_t out[NL_VALIDATOR_SIZE])
{
        struct stat st;
        int fd = fileroot_open(root_fd, (const uint8_t *) name, strlen(name), mode,
                               WANT_FILE, &st);

        if (fd < 0)
                return fd;
        (void) close(fd);
        fileroot_validator(&st, out);
        return 0;
}

static void test_validator_changes(void)
{
        uint8_t v0[NL_VALIDATOR_SIZE], v1[NL_VALIDATOR_SIZE];
        char path[512], tmp[512];
        _cleanup_close_ int fd = -1;

        if (xsnprintf(path, sizeof path, "%s/vfile", root) < 0 ||
            xsnprintf(tmp, sizeof tmp, "%s/vfile.new", root) < 0)
                return;

        TEST_CASE("validator: setup");
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (!CHECK(fd >= 0))
                return;
        CHECK_INT(write(fd, "hello\n", 6), 6);

        TEST_CASE("validator: stable without change, same in both modes");
        CHECK_ERR(validator_of("vfile", AUTO, v0), 0);
        tick();
        CHECK_ERR(validator_of("vfile", WALK, v1), 0);
        CHECK_MEM(v1, sizeof v1, v0, sizeof v0);
        CHECK_ERR(validator_of("vfile", AUTO, v1), 0);
        CHECK_MEM(v1, sizeof v1, v0, sizeof v0);

        TEST_CASE("validator: stable after reading");
        char rbuf[8];
        CHECK_INT(pread(fd, rbuf, sizeof rbuf, 0), 6);
        CHECK_ERR(validator_of("vfile", AUTO, v1), 0);
        CHECK_MEM(v1, sizeof v1, v0, sizeof v0);

        struct step {
                const char *name;
                int what;
        } steps[] = {
                { "overwrite, same size", 0 },
                { "append", 1 },
                { "truncate", 2 },
                { "touch", 3 },
                { "touch to the same mtime (ctime moves)", 4 },
                { "chmod", 5 },
                { "rename over, same size and mtime", 6 },
        };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                struct stat st;
                int r = 0;

                TEST_CASE("validator: %s changes it", steps[i].name);
                CHECK_ERR(validator_of("vfile", AUTO, v0), 0);
                tick();
                switch (steps[i].what) {
                case 0:
                        r = pwrite(fd, "HELLO\n", 6, 0) == 6 ? 0 : -EIO;
                        break;
                case 1:
                        r = pwrite(fd, "more\n", 5, 6) == 5 ? 0 : -EIO;
                        break;
                case 2:
                        r = ftruncate(fd, 3) < 0 ? -errno : 0;
                        break;
                case 3:
                        r = futimens(fd, NULL) < 0 ? -errno : 0;
                        break;
                case 4:
                        if (fstat(fd, &st) < 0)
                                r = -errno;
                        else {
                                struct timespec ts[2] = { st.st_atim, st.st_mtim };
                                r = futimens(fd, ts) < 0 ? -errno : 0;
                        }
                        break;
                case 5:
                        r = fchmod(fd, 0600) < 0 ? -errno : 0;
                        break;
                case 6: {
                        /* Same bytes, size and mtime, but a new inode. */
                        int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
                        _cleanup_close_ int nfd = open(tmp, flags, 0644);
                        char content[64];
                        ssize_t n = pread(fd, content, sizeof content, 0);

                        if (nfd < 0 || n < 0 || fstat(fd, &st) < 0)
                                r = -errno;
                        else if (write(nfd, content, (size_t) n) != n)
                                r = -EIO;
                        else {
                                struct timespec ts[2] = { st.st_atim, st.st_mtim };
                                r = futimens(nfd, ts) < 0 || rename(tmp, path) < 0 ? -errno : 0;
                        }
                        break;
                }
                }
                CHECK_ERR(r, 0);
                CHECK_ERR(validator_of("vfile", AUTO, v1), 0);
                CHECK(memcmp(v0, v1, sizeof v0) != 0);

                /* And stable again right after. */
                CHECK_ERR(validator_of("vfile", WALK, v0), 0);
                CHECK_MEM(v0, sizeof v0, v1, sizeof v1);
        }

        TEST_CASE("validator: cleanup");
        CHECK(unlink(path) == 0);
}

/* Build the tree and run every test.  Return: test_finish()'s status. */
static int run_tests(void)
{
        int r = build_tree();

        TEST_CASE("build the tree");
        CHECK_ERR(r, 0);
        if (r >= 0) {
                root_fd = fileroot_open_root(root);
                TEST_CASE("open the root");
                CHECK(root_fd >= 0);
        }
        if (root_fd >= 0) {
                test_resolve_from_string();
                test_open_root();
                test_open_table();
                test_lengths();
                test_magic_links();
                test_fifo_prompt();
                test_bad_arguments();
                test_enosys_fallback();
                test_validator_bytes();
                test_validator_changes();
        }
        root_fd = safe_close(root_fd);
        return test_finish();
}

int main(void)
{
        int status = 0, ret;

        if (!mkdtemp(base)) {
                fprintf(stderr, "mkdtemp(%s): %m\n", base);
                return EXIT_FAILURE;
        }
        if (xsnprintf(root, sizeof root, "%s/root", base) < 0)
                return EXIT_FAILURE;

        /* The tests run in a child so that the tree is removed even when
         * they crash.  In the child every loop is bounded, and an open that
         * hangs (a FIFO opened without O_NONBLOCK) is killed by alarm(). */
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                fprintf(stderr, "fork: %m\n");
                ret = EXIT_FAILURE;
        } else if (pid == 0) {
                alarm(30);
                int k = run_tests();
                fflush(NULL);
                _exit(k);
        } else if (waitpid(pid, &status, 0) != pid) {
                fprintf(stderr, "waitpid: %m\n");
                ret = EXIT_FAILURE;
        } else if (WIFSIGNALED(status)) {
                fprintf(stderr, "the tests were killed by signal %d (SIGALRM: something hung)\n",
                        WTERMSIG(status));
                ret = EXIT_FAILURE;
        } else
                ret = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE;

        if (remove_tree() < 0) {
                fprintf(stderr, "removing %s failed\n", base);
                ret = EXIT_FAILURE;
        }
        return ret;
}
