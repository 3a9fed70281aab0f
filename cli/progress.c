/* progress.c: the one-line progress bar of `fetch` on standard error.
 *
 *   [=====>     ]  45%  470.2 MiB  812.3 MB/s  ETA 0:01
 *
 * Called once per chunk of the data path, so the common case must stay
 * cheap: one clock_gettime(CLOCK_MONOTONIC_COARSE), which the vDSO answers
 * without a syscall, and a compare.  A redraw (one write(2)) happens at most
 * every PROGRESS_INTERVAL_USEC.  Trusts nothing but its own numbers. */
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define PROGRESS_INTERVAL_USEC 100000u /* 10 redraws a second at most */
#define PROGRESS_BAR_MIN 10
#define PROGRESS_BAR_MAX 40

static uint64_t coarse_usec(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* "470.2 MiB": binary units, as file sizes are usually shown. */
static void format_size(char *buf, size_t size, uint64_t bytes)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double) bytes;
        size_t u = 0;

        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if (u == 0)
                (void) xsnprintf(buf, size, "%llu B", (unsigned long long) bytes);
        else
                (void) xsnprintf(buf, size, "%.1f %s", v, units[u]);
}

/* "812.3 MB/s": decimal units, as link rates are usually shown. */
static void format_rate(char *buf, size_t size, double rate)
{
        static const char *const units[] = { "B/s", "kB/s", "MB/s", "GB/s", "TB/s" };
        size_t u = 0;

        while (rate >= 1000.0 && u + 1 < ELEMENTSOF(units)) {
                rate /= 1000.0;
                u++;
        }
        (void) xsnprintf(buf, size, "%.1f %s", rate, units[u]);
}

static void format_eta(char *buf, size_t size, double seconds)
{
        if (!(seconds >= 0.0) || seconds > 99.0 * 3600.0) {
                (void) xsnprintf(buf, size, "--:--");
                return;
        }
        unsigned long s = (unsigned long) (seconds + 0.5);
        if (s >= 3600)
                (void) xsnprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
        else
                (void) xsnprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
}

static void draw(struct progress *p, uint64_t pos)
{
        char line[512], tail[128], sz[32], rt[32], eta[32];
        size_t n = 0;

        format_size(sz, sizeof sz, pos);
        format_rate(rt, sizeof rt, p->rate);
        if (p->total != UINT64_MAX) {
                double left = p->rate > 0.0 && pos <= p->total ? (double) (p->total - pos) / p->rate
                                                               : -1.0;
                format_eta(eta, sizeof eta, left);
                unsigned pct = p->total == 0
                                       ? 100u
                                       : (unsigned) ((double) pos * 100.0 / (double) p->total);
                if (pct > 100)
                        pct = 100;
                /* Fixed field widths keep the bar from jittering. */
                (void) xsnprintf(tail, sizeof tail, " %3u%%  %10s  %10s  ETA %s", pct, sz, rt, eta);

                int width = p->columns - (int) strlen(tail) - 3;
                if (width > PROGRESS_BAR_MAX)
                        width = PROGRESS_BAR_MAX;
                if (width >= PROGRESS_BAR_MIN) {
                        int fill = (int) ((double) width * pct / 100.0);
                        line[n++] = '[';
                        for (int i = 0; i < width; i++)
                                line[n++] = i < fill ? '=' : i == fill ? '>' : ' ';
                        line[n++] = ']';
                }
        } else
                (void) xsnprintf(tail, sizeof tail, "  %10s  %10s", sz, rt);

        size_t t = strlen(tail);
        memcpy(line + n, tail, t);
        n += t;
        /* Pad over what the last line left on screen. */
        int w = (int) n;
        while ((int) n < p->drawn && n < sizeof line - 1)
                line[n++] = ' ';
        line[n++] = '\r';
        p->drawn = w;

        /* One write per redraw; a failure (stderr gone) just loses the bar. */
        (void) !write(STDERR_FILENO, line, n);
}

void progress_init(struct progress *p, bool enabled, uint64_t total, uint64_t pos)
{
        struct winsize ws = {};

        *p = (struct progress) { .enabled = enabled, .total = total, .pos = pos, .columns = 80 };
        if (!enabled)
                return;
        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
                p->columns = ws.ws_col < 200 ? ws.ws_col : 200;
        p->start_usec = p->last_usec = coarse_usec();
        p->next_usec = p->start_usec + PROGRESS_INTERVAL_USEC;
}

void progress_update(struct progress *p, uint64_t pos)
{
        if (!p->enabled)
                return;

        uint64_t now = coarse_usec();
        if (now < p->next_usec)
                return;

        /* An exponentially weighted rate: follows a stall or a speed-up
         * within a second, without the jitter of one interval's figure. */
        double dt = (double) (now - p->last_usec) / 1e6;
        double inst = dt > 0.0 && pos >= p->pos ? (double) (pos - p->pos) / dt : 0.0;
        p->rate = p->rate == 0.0 ? inst : 0.7 * p->rate + 0.3 * inst;
        p->pos = pos;
        p->last_usec = now;
        p->next_usec = now + PROGRESS_INTERVAL_USEC;
        draw(p, pos);
}

void progress_note(struct progress *p, const char *text)
{
        char line[512];

        if (!p->enabled)
                return;
        int n = snprintf(line, sizeof line, "%-*s\r", p->drawn, text);
        if (n < 0)
                return;
        if ((size_t) n >= sizeof line)
                n = (int) sizeof line - 1; /* cut short: still one line */
        (void) !write(STDERR_FILENO, line, (size_t) n);
        p->drawn = (int) strlen(text) > p->drawn ? (int) strlen(text) : p->drawn;
}

void progress_clear(struct progress *p)
{
        char line[512];

        if (!p->enabled || p->drawn == 0)
                return;
        size_t n = (size_t) p->drawn < sizeof line - 2 ? (size_t) p->drawn : sizeof line - 2;
        memset(line, ' ', n);
        line[n++] = '\r';
        (void) !write(STDERR_FILENO, line, n);
        p->drawn = 0;
}
