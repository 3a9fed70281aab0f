/* test-children.c: the supervisor's book of children (daemon/children.c).
 *
 * Limits and per-source counting with fake pids: nothing here forks or
 * signals them, and children_reap() (which waits for real children) is used
 * only in the last test, which forks three real children that exit at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "test-util.h"
#include "util.h"

static struct in6_addr key_v4(const char *text)
{
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(1234) };
        struct in6_addr key;

        if (inet_pton(AF_INET, text, &sin.sin_addr) != 1)
                test_check(false, __FILE__, __LINE__, "bad IPv4 literal %s", text);
        children_source_key((const struct sockaddr *) &sin, &key);
        return key;
}

static struct in6_addr key_v6(const char *text)
{
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(1234) };
        struct in6_addr key;

        if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1)
                test_check(false, __FILE__, __LINE__, "bad IPv6 literal %s", text);
        children_source_key((const struct sockaddr *) &sin6, &key);
        return key;
}

static size_t count_sources(const struct children *ch)
{
        size_t n = 0;

        for (size_t b = 0; b < CHILDREN_BUCKETS; b++)
                for (const struct source_count *s = ch->by_source[b]; s; s = s->next)
                        n++;
        return n;
}

static unsigned source_count(const struct children *ch, const struct in6_addr *a)
{
        for (size_t b = 0; b < CHILDREN_BUCKETS; b++)
                for (const struct source_count *s = ch->by_source[b]; s; s = s->next)
                        if (memcmp(&s->source, a, sizeof *a) == 0)
                                return s->count;
        return 0;
}

static const struct child *find_child(const struct children *ch, pid_t pid)
{
        for (size_t b = 0; b < CHILDREN_BUCKETS; b++)
                for (const struct child *c = ch->by_pid[b]; c; c = c->next)
                        if (c->pid == pid)
                                return c;
        return NULL;
}

static void test_source_key(void)
{
        static const struct {
                const char *family, *addr;
                const char *key; /* as an IPv6 literal */
        } cases[] = {
                { "4", "192.0.2.1", "::ffff:192.0.2.1" },
                { "4", "0.0.0.0", "::ffff:0.0.0.0" },
                { "4", "255.255.255.255", "::ffff:255.255.255.255" },
                { "6", "::ffff:192.0.2.1", "::ffff:192.0.2.1" },
                { "6", "2001:db8::1", "2001:db8::1" },
                { "6", "::1", "::1" },
                { "6", "::", "::" },
                { "6", "::192.0.2.1", "::192.0.2.1" }, /* IPv4-compatible: not mapped */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct in6_addr want;

                TEST_CASE("source key of IPv%s %s", cases[i].family, cases[i].addr);
                CHECK(inet_pton(AF_INET6, cases[i].key, &want) == 1);
                struct in6_addr got = cases[i].family[0] == '4' ? key_v4(cases[i].addr)
                                                                 : key_v6(cases[i].addr);
                CHECK(memcmp(&got, &want, sizeof want) == 0);
        }

        TEST_CASE("IPv4 and its mapped IPv6 form share a key; others do not");
        struct in6_addr a = key_v4("192.0.2.1"), b = key_v6("::ffff:192.0.2.1");
        struct in6_addr c = key_v6("::192.0.2.1"), d = key_v4("192.0.2.2");
        CHECK(memcmp(&a, &b, sizeof a) == 0);
        CHECK(memcmp(&a, &c, sizeof a) != 0);
        CHECK(memcmp(&a, &d, sizeof a) != 0);

        TEST_CASE("source key of a non-IP family is all zero");
        struct sockaddr sa = { .sa_family = AF_UNIX };
        struct in6_addr z, zero = {};
        memset(&z, 0x5a, sizeof z);
        children_source_key(&sa, &z);
        CHECK(memcmp(&z, &zero, sizeof z) == 0);
}

/* One step of a limits scenario: add a child, or check the limits. */
struct step {
        char op;          /* 'a' add, 'c' check */
        pid_t pid;        /* for 'a' */
        const char *src;  /* "4:..." or "6:..." */
        int ret;          /* for 'c' */
};

static struct in6_addr key_of(const char *src)
{
        return src[0] == '4' ? key_v4(src + 2) : key_v6(src + 2);
}

struct scenario {
        const char *name;
        uint64_t max_children, max_per_source;
        struct step steps[16];
};

static const struct scenario scenarios[] = {
        { "per source 2, total 3", 3, 2, {
                { 'c', 0, "4:192.0.2.1", 0 },
                { 'a', 100, "4:192.0.2.1", 0 },
                { 'c', 0, "4:192.0.2.1", 0 },        /* 1 of 2 */
                { 'a', 101, "4:192.0.2.1", 0 },
                { 'c', 0, "4:192.0.2.1", -EUSERS },  /* 2 of 2 */
                { 'c', 0, "4:192.0.2.2", 0 },        /* other source: free */
                { 'c', 0, "6:2001:db8::1", 0 },
                { 'a', 102, "6:2001:db8::1", 0 },
                { 'c', 0, "6:2001:db8::1", -EBUSY }, /* 3 of 3 in total */
                { 'c', 0, "4:192.0.2.1", -EBUSY },   /* both limits: total wins */
                { 'c', 0, "4:198.51.100.7", -EBUSY },
        } },
        { "IPv4 counted with its mapped IPv6 form", 10, 2, {
                { 'a', 200, "4:192.0.2.1", 0 },
                { 'a', 201, "6:::ffff:192.0.2.1", 0 },
                { 'c', 0, "4:192.0.2.1", -EUSERS },
                { 'c', 0, "6:::ffff:192.0.2.1", -EUSERS },
                { 'c', 0, "6:::192.0.2.1", 0 },
                { 'c', 0, "6:2001:db8::c000:201", 0 },
        } },
        { "IPv6 sources differ in the last byte", 10, 1, {
                { 'a', 300, "6:2001:db8::1", 0 },
                { 'c', 0, "6:2001:db8::1", -EUSERS },
                { 'c', 0, "6:2001:db8::2", 0 },
                { 'c', 0, "6:2001:db8::1:0", 0 },
                { 'a', 301, "6:2001:db8::2", 0 },
                { 'c', 0, "6:2001:db8::2", -EUSERS },
        } },
        { "limits of 1", 1, 1, {
                { 'c', 0, "4:10.0.0.1", 0 },
                { 'a', 400, "4:10.0.0.1", 0 },
                { 'c', 0, "4:10.0.0.1", -EBUSY },
                { 'c', 0, "4:10.0.0.2", -EBUSY },
        } },
        { "limits of 0", 0, 0, {
                { 'c', 0, "4:10.0.0.1", -EBUSY },
        } },
        { "pids in the same bucket", 10, 10, {
                { 'a', 5, "4:10.0.0.1", 0 },
                { 'a', 5 + CHILDREN_BUCKETS, "4:10.0.0.1", 0 },
                { 'a', 5 + 2 * CHILDREN_BUCKETS, "4:10.0.0.2", 0 },
                { 'c', 0, "4:10.0.0.1", 0 },
        } },
};

static void test_limits(void)
{
        for (size_t i = 0; i < ELEMENTSOF(scenarios); i++) {
                const struct scenario *s = &scenarios[i];
                struct children ch = {};
                size_t n_added = 0;

                for (size_t k = 0; k < ELEMENTSOF(s->steps) && s->steps[k].op; k++) {
                        const struct step *st = &s->steps[k];
                        struct in6_addr key = key_of(st->src);

                        TEST_CASE("limits: %s, step %zu: %s %s", s->name, k + 1,
                                  st->op == 'a' ? "add" : "check", st->src);
                        if (st->op == 'a') {
                                CHECK_ERR(children_add(&ch, st->pid, &key, "lst"), 0);
                                n_added++;
                                CHECK_U64(ch.n, n_added);
                                const struct child *c = find_child(&ch, st->pid);
                                if (CHECK(c)) {
                                        CHECK(memcmp(&c->source, &key, sizeof key) == 0);
                                        CHECK_STR(c->listener, "lst");
                                        CHECK(!c->signalled);
                                        CHECK(c->start_usec > 0);
                                }
                        } else {
                                CHECK_ERR(children_check_limits(&ch, &key, s->max_children,
                                                                s->max_per_source),
                                          st->ret);
                        }
                }
                children_forget_all(&ch);
        }
}

static void test_counting(void)
{
        struct children ch = {};
        struct in6_addr a = key_v4("192.0.2.1"), a6 = key_v6("::ffff:192.0.2.1");
        struct in6_addr b = key_v6("2001:db8::1");

        TEST_CASE("per-source counts");
        CHECK_ERR(children_add(&ch, 1001, &a, "x"), 0);
        CHECK_ERR(children_add(&ch, 1002, &a6, "x"), 0);
        CHECK_ERR(children_add(&ch, 1003, &b, "y"), 0);
        CHECK_U64(ch.n, 3);
        CHECK_U64(count_sources(&ch), 2);
        CHECK_U64(source_count(&ch, &a), 2);
        CHECK_U64(source_count(&ch, &b), 1);

        TEST_CASE("a 64-byte listener name is kept whole");
        static const char name64[] = "0123456789012345678901234567890123456789012345678901234567890123";
        CHECK_U64(strlen(name64), 64);
        CHECK_ERR(children_add(&ch, 1004, &b, name64), 0);
        const struct child *c = find_child(&ch, 1004);
        if (CHECK(c))
                CHECK_STR(c->listener, name64);

        TEST_CASE("forget all");
        children_forget_all(&ch);
        CHECK_U64(ch.n, 0);
        CHECK_U64(count_sources(&ch), 0);
        CHECK(find_child(&ch, 1001) == NULL);
        CHECK_ERR(children_check_limits(&ch, &a, 1, 1), 0);

        /* More sources than buckets: collisions must not mix counts up. */
        TEST_CASE("3000 sources, one child each");
        enum { N = 3000 };
        for (unsigned i = 0; i < N; i++) {
                struct in6_addr k = {};
                k.s6_addr[0] = 0x20;
                k.s6_addr[1] = 0x01;
                k.s6_addr[14] = (uint8_t) (i >> 8);
                k.s6_addr[15] = (uint8_t) i;
                if (!CHECK_ERR(children_check_limits(&ch, &k, N, 1), 0) ||
                    !CHECK_ERR(children_add(&ch, (pid_t) (10000 + i), &k, "many"), 0) ||
                    !CHECK_ERR(children_check_limits(&ch, &k, N + 1, 1), -EUSERS))
                        break;
        }
        CHECK_U64(ch.n, N);
        CHECK_U64(count_sources(&ch), N);
        struct in6_addr fresh = key_v4("203.0.113.9");
        CHECK_ERR(children_check_limits(&ch, &fresh, N, 1), -EBUSY);
        CHECK_ERR(children_check_limits(&ch, &fresh, N + 1, 1), 0);
        children_forget_all(&ch);
        CHECK_U64(count_sources(&ch), 0);
}

/* ---- children_reap() with real children ---- */

struct seen {
        size_t n;
        pid_t pid[8];
        int code[8], status[8];
        char listener[8][65];
        struct in6_addr source[8];
        size_t n_in_book[8]; /* ch->n when the callback ran */
        const struct children *ch;
};

static void on_exit_cb(const struct child *c, const siginfo_t *si, void *userdata)
{
        struct seen *s = userdata;

        if (s->n >= ELEMENTSOF(s->pid)) {
                s->n++;
                return;
        }
        s->pid[s->n] = c->pid;
        s->code[s->n] = si->si_code;
        s->status[s->n] = si->si_status;
        s->source[s->n] = c->source;
        s->n_in_book[s->n] = s->ch->n;
        (void) xsnprintf(s->listener[s->n], sizeof s->listener[s->n], "%s", c->listener);
        s->n++;
}

/* Wait (bounded) until pid has exited, leaving it for children_reap(). */
static bool wait_exited(pid_t pid)
{
        siginfo_t si = {};

        alarm(10); /* a child that never exits must not hang the test */
        int r = waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT);
        alarm(0);
        return r == 0 && si.si_pid == pid;
}

static void test_reap(void)
{
        struct children ch = {};
        struct seen seen = { .ch = &ch };
        struct in6_addr a = key_v4("192.0.2.1"), b = key_v6("2001:db8::7");
        const struct in6_addr *src[3] = { &a, &a, &b };
        pid_t pids[3];

        TEST_CASE("reap: 3 real children");
        for (int i = 0; i < 3; i++) {
                pids[i] = fork();
                if (pids[i] == 0)
                        _exit(10 + i);
                if (!CHECK(pids[i] > 0))
                        return;
                char name[16];
                CHECK(xsnprintf(name, sizeof name, "l%d", i) > 0);
                CHECK_ERR(children_add(&ch, pids[i], src[i], name), 0);
        }
        CHECK_U64(ch.n, 3);
        CHECK_U64(source_count(&ch, &a), 2);
        CHECK_U64(source_count(&ch, &b), 1);
        CHECK_ERR(children_check_limits(&ch, &a, 3, 2), -EBUSY);
        CHECK_ERR(children_check_limits(&ch, &a, 4, 2), -EUSERS);

        for (int i = 0; i < 3; i++)
                CHECK(wait_exited(pids[i]));

        CHECK_U64(children_reap(&ch, on_exit_cb, &seen), 3);
        CHECK_U64(ch.n, 0);
        CHECK_U64(count_sources(&ch), 0);
        CHECK_U64(source_count(&ch, &a), 0);
        CHECK_ERR(children_check_limits(&ch, &a, 1, 1), 0);
        CHECK_ERR(children_check_limits(&ch, &b, 1, 1), 0);

        if (CHECK_U64(seen.n, 3))
                for (int i = 0; i < 3; i++) {
                        size_t k = 0;
                        while (k < 3 && seen.pid[k] != pids[i])
                                k++;
                        if (!test_check(k < 3, __FILE__, __LINE__, "pid %d not reported",
                                        (int) pids[i]))
                                continue;
                        char want[16];
                        CHECK(xsnprintf(want, sizeof want, "l%d", i) > 0);
                        CHECK_INT(seen.code[k], CLD_EXITED);
                        CHECK_INT(seen.status[k], 10 + i);
                        CHECK_STR(seen.listener[k], want);
                        CHECK(memcmp(&seen.source[k], src[i], sizeof *src[i]) == 0);
                        /* Forgotten (and uncounted) before the callback runs. */
                        CHECK(seen.n_in_book[k] < 3);
                }

        TEST_CASE("reap: nothing left");
        CHECK_U64(children_reap(&ch, on_exit_cb, &seen), 0);
        CHECK_U64(seen.n, 3);

        /* A child that is not in the book is reaped (no zombie) but not reported. */
        TEST_CASE("reap: an unknown child");
        pid_t stray = fork();
        if (stray == 0)
                _exit(0);
        if (CHECK(stray > 0)) {
                CHECK(wait_exited(stray));
                CHECK_U64(children_reap(&ch, on_exit_cb, &seen), 1);
                CHECK_U64(seen.n, 3);
                CHECK_U64(ch.n, 0);
                CHECK_INT(waitpid(stray, NULL, WNOHANG), -1); /* already reaped: ECHILD */
        }

        /* A recorded child still running is not reaped by WNOHANG. */
        TEST_CASE("reap: a running child stays");
        int pipefd[2];
        if (CHECK(pipe2(pipefd, O_CLOEXEC) == 0)) {
                pid_t slow = fork();
                if (slow == 0) {
                        char x;
                        (void) close(pipefd[1]);
                        _exit(read(pipefd[0], &x, 1) == 0 ? 3 : 4); /* until the parent closes */
                }
                (void) close(pipefd[0]);
                if (CHECK(slow > 0)) {
                        CHECK_ERR(children_add(&ch, slow, &a, "slow"), 0);
                        CHECK_U64(children_reap(&ch, on_exit_cb, &seen), 0);
                        CHECK_U64(ch.n, 1);
                        CHECK_U64(source_count(&ch, &a), 1);
                }
                (void) close(pipefd[1]);
                if (slow > 0 && CHECK(wait_exited(slow))) {
                        CHECK_U64(children_reap(&ch, on_exit_cb, &seen), 1);
                        CHECK_U64(ch.n, 0);
                        CHECK_U64(seen.n, 4);
                        CHECK_INT(seen.status[3], 3);
                }
        }
        children_forget_all(&ch);
}

int main(void)
{
        test_source_key();
        test_limits();
        test_counting();
        test_reap();
        return test_finish();
}
