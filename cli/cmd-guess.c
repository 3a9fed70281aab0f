/* cmd-guess.c: `netlabctl guess`: one round of the guessing game
 * (docs/PROTOCOL.md 10.2, the lab's exercise 1).
 *
 * `play nonce=N`, then `guess id=H VALUE` until WIN or LOSE; every request
 * padded to NL_GUESS_PAD bytes so the server's reply always fits its size
 * rule.  Both requests are idempotent on the server, so a request whose reply
 * does not come in --wait is sent again unchanged.  Guesses come from
 * --guess, from the terminal, or from the lines of standard input.
 *
 * The server is untrusted: every reply goes through guess_reply_parse()
 * (common/proto-guess.c) and must carry the round's id; its texts are printed
 * escaped. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli.h"
#include "proto.h"
#include "util.h"

/* Longest line read for one guess: a value is at most NL_GUESS_VALUE_MAX
 * bytes, but a person may type spaces around it. */
#define GUESS_LINE_MAX 1024u

static uint64_t arg_wait_usec = UDP_WAIT_DEFAULT_USEC;
static uint64_t arg_retries = UDP_RETRIES_DEFAULT;
static char **arg_guesses; /* borrowed from argv */
static size_t arg_n_guesses;

static void help(void)
{
        printf("Usage: %s guess [OPTIONS]\n"
               "\n"
               "Play one round of the guessing game: the server picks a number in a range or a\n"
               "famous person (with a hint), and you have a number of tries.  Guesses come from\n"
               "--guess, else from the terminal, else from the lines of standard input.\n"
               "\n"
               "Options:\n"
               "  -g, --guess=VALUE      guess VALUE (a number, or a name); repeat for more\n"
               "                         guesses, used in order\n"
               "  -W, --wait=SECONDS     wait this long for each reply (default 1; up to 6\n"
               "                         decimals)\n"
               "  -r, --retries=N        resend a request up to N times when no reply comes\n"
               "                         (default %u)\n"
               COMMON_OPTIONS_HELP
               "\n"
               "--timeout caps the waiting for one reply, over all its resends.\n"
               "The port defaults to 8889 ([guess] port in the INI file).\n"
               "\n"
               "Exit status: 0 you win, 2 usage, 3 cannot resolve or port unreachable (ICMP),\n"
               "4 refused by the server, 5 server busy, 6 protocol error, 7 no reply,\n"
               "12 you lose, or the guesses ran out (see netlabctl(1)).\n",
               program_name, UDP_RETRIES_DEFAULT);
}

enum guess_input {
        INPUT_ARGS,  /* --guess */
        INPUT_TTY,   /* a person at the terminal: prompts, local checks, re-asks */
        INPUT_LINES, /* standard input is a file or a pipe */
};

struct game {
        struct udp_peer peer;
        enum guess_input input;
        uint8_t *reply;           /* NL_UDP_PAYLOAD_MAX + 1 bytes: never cut */
        size_t reply_len;
        struct guess_reply rep;   /* parsed reply; points into reply */
        uint8_t prev[NL_GUESS_REPLY_MAX]; /* the previous reply, to drop its duplicates */
        size_t prev_len;
        char req[NL_GUESS_REQUEST_MAX];
        size_t req_len;

        uint32_t id;              /* the round's */
        bool person;
        int64_t lo, hi;
        unsigned tries, tries_left;
        size_t next_arg;
        unsigned n_guesses;
        FILE *guesses;            /* --json: the guesses array's elements */
        char *guesses_buf;
        size_t guesses_size;
};

static void game_done(struct game *g)
{
        udp_peer_done(&g->peer);
        free(g->reply);
        g->reply = NULL;
        if (g->guesses)
                (void) fclose(g->guesses);
        g->guesses = NULL;
        free(g->guesses_buf);
        g->guesses_buf = NULL;
}

/* Prompts go to standard output, except with --json (standard error, and
 * only for a person at the terminal). */
static FILE *prompt_stream(const struct game *g)
{
        if (!settings.json)
                return stdout;
        return g->input == INPUT_TTY ? stderr : NULL;
}

/* A reply identical to the previous one is a late duplicate of it (the
 * request was sent twice and both copies were answered): not ours.  A real
 * answer to the next request always differs (tries left go down). */
static int accept_reply(const uint8_t *buf, size_t n, size_t real_len, void *userdata)
{
        struct game *g = userdata;

        if (g->prev_len > 0 && real_len == g->prev_len && n == real_len && memcmp(buf, g->prev, n) == 0)
                return 0;
        return 1;
}

static int protocol_error(const struct game *g, const char *what)
{
        char esc[160];
        size_t n = g->reply_len;

        /* Show the line without its LF, escaped and cut. */
        if (n > 0 && g->reply[n - 1] == '\n')
                n--;
        text_escape(esc, sizeof esc, g->reply, n > 100 ? 100 : n);
        return fail("guess", EXIT_PROTOCOL, "protocol-error", "%s from %s port %u: \"%s%s\"", what, g->peer.host,
                    g->peer.port, esc, n > 100 ? "..." : "");
}

/* Send g->req until a reply comes; parse it into g->rep.
 * Return: 0, or the exit code after reporting the failure. */
static int game_exchange(struct game *g)
{
        struct udp_exchange x = {
                .req = g->req,
                .req_len = g->req_len,
                .wait_usec = arg_wait_usec,
                .retries = (unsigned) arg_retries,
                .cap_usec = settings.timeout_ms * 1000u,
                .accept = accept_reply,
                .userdata = g,
        };
        size_t n = 0;
        int r;

        r = udp_drain(&g->peer, g->reply, NL_UDP_PAYLOAD_MAX + 1);
        if (r >= 0)
                r = udp_exchange(&g->peer, &x, g->reply, NL_UDP_PAYLOAD_MAX + 1, &n);
        if (r < 0)
                return udp_exchange_failed("guess", &g->peer, r, x.n_attempts);

        g->reply_len = n;
        if (n > NL_GUESS_REPLY_MAX) {
                g->reply_len = NL_GUESS_REPLY_MAX;
                return fail("guess", EXIT_PROTOCOL, "protocol-error",
                            "the reply from %s port %u is %zu bytes, more than the %u a reply may have",
                            g->peer.host, g->peer.port, n, NL_GUESS_REPLY_MAX);
        }
        if (guess_reply_parse(g->reply, n, &g->rep) < 0)
                return protocol_error(g, "malformed reply");

        memcpy(g->prev, g->reply, n);
        g->prev_len = n;
        return 0;
}

static int game_refused(const struct game *g)
{
        unsigned status = g->rep.status;
        bool busy = status == NL_STATUS_BUSY;
        char esc[NL_GUESS_REPLY_MAX * 4 + 8];

        if (g->rep.text_len == 0)
                return fail("guess", busy ? EXIT_BUSY : EXIT_REFUSED, nl_status_name(status), "server refused: %s",
                            nl_status_name(status));
        text_escape(esc, sizeof esc, (const uint8_t *) g->rep.text, g->rep.text_len);
        return fail("guess", busy ? EXIT_BUSY : EXIT_REFUSED, nl_status_name(status), "server refused (%s): %s",
                    nl_status_name(status), esc);
}

static void print_prompt(const struct game *g, bool first)
{
        FILE *f = prompt_stream(g);
        unsigned t = g->tries_left;

        if (!f)
                return;
        if (g->person)
                fprintf(f, "Who is it? (%u tr%s%s): ", t, t == 1 ? "y" : "ies", first ? "" : " left");
        else
                fprintf(f, "Guess a number from %lld to %lld (%u tr%s%s): ", (long long) g->lo, (long long) g->hi, t,
                        t == 1 ? "y" : "ies", first ? "" : " left");
        (void) fflush(f);
}

/* Read one line without its LF.  Return: its length; -ENODATA at the end of
 * input; -E2BIG if longer than size (the rest is skipped); -EIO. */
static ssize_t read_line(uint8_t *buf, size_t size)
{
        size_t n = 0;
        bool any = false, too_long = false;
        int c;

        while ((c = getchar()) != EOF) {
                any = true;
                if (c == '\n')
                        break;
                if (n < size)
                        buf[n++] = (uint8_t) c;
                else
                        too_long = true;
        }
        if (c == EOF && ferror(stdin))
                return -EIO;
        if (!any)
                return -ENODATA;
        return too_long ? -E2BIG : (ssize_t) n;
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r';
}

/* Format "guess id=H VALUE" into g->req.  Return: 0; -EINVAL if VALUE
 * cannot be sent. */
static int format_guess(struct game *g, const char *value, size_t len)
{
        struct guess_request req = {
                .verb = GUESS_GUESS, .has_id = true, .id = g->id, .value = value, .value_len = len,
        };
        int n = guess_request_format(g->req, sizeof g->req, &req, NL_GUESS_PAD);

        if (n < 0)
                return -EINVAL;
        g->req_len = (size_t) n;
        return 0;
}

/* The next guess, formatted into g->req, with its text in value.
 * Return: 0; -ENODATA when there is none; or (negative) an exit code after
 * reporting why. */
static int next_guess(struct game *g, bool first, char *value, size_t value_size)
{
        char line[GUESS_LINE_MAX + 1];

        for (;;) {
                size_t len;
                if (g->input == INPUT_TTY)
                        print_prompt(g, first);

                if (g->input == INPUT_ARGS) {
                        if (g->next_arg >= arg_n_guesses)
                                return -ENODATA;
                        const char *a = arg_guesses[g->next_arg++];
                        len = strlen(a);
                        if (len >= sizeof line)
                                len = sizeof line - 1; /* refused below: over NL_GUESS_VALUE_MAX */
                        memcpy(line, a, len);
                } else {
                        ssize_t k = read_line((uint8_t *) line, GUESS_LINE_MAX);
                        if (k == -ENODATA) {
                                if (g->input == INPUT_TTY && !settings.json)
                                        putchar('\n');
                                return -ENODATA;
                        }
                        if (k == -EIO)
                                return -fail("guess", EXIT_LOCAL_IO, "local-io-error", "reading standard input: %s",
                                             strerror(EIO));
                        len = k < 0 ? sizeof line : (size_t) k; /* too long: refused below */
                        if (len >= sizeof line)
                                len = sizeof line - 1;
                }
                line[len] = '\0';

                /* Spaces around the value mean nothing to the server either. */
                char *v = line;
                while (len > 0 && is_blank(v[len - 1]))
                        v[--len] = '\0';
                while (len > 0 && is_blank(*v)) {
                        v++;
                        len--;
                }

                const char *problem = NULL;
                int64_t number;
                if (len == 0)
                        problem = "an empty guess";
                else if (len > NL_GUESS_VALUE_MAX)
                        problem = "longer than 128 bytes";
                else if (format_guess(g, v, len) < 0)
                        problem = "not printable text, or it contains '#'";
                else if (g->input == INPUT_TTY && !g->person &&
                         (guess_number_parse(v, len, &number) < 0 || number < g->lo || number > g->hi)) {
                        /* A person gets asked again rather than spend an
                         * exchange on a refusal (the server would answer
                         * ERR 1 and count no try). */
                        fprintf(prompt_stream(g), "Please type a whole number from %lld to %lld.\n",
                                (long long) g->lo, (long long) g->hi);
                        continue;
                }

                if (problem && g->input == INPUT_TTY) {
                        fprintf(prompt_stream(g), "Cannot send that: %s.\n", problem);
                        continue;
                }
                if (problem && g->input == INPUT_LINES && len == 0)
                        continue; /* blank lines in a file */
                if (problem) {
                        char esc[80];
                        text_escape(esc, sizeof esc, (const uint8_t *) v, len);
                        if (g->input == INPUT_ARGS)
                                return -usage_error("guess: --guess: \"%s\" cannot be sent: %s", esc, problem);
                        return -usage_error("guess: the guess \"%s\" on standard input cannot be sent: %s", esc,
                                            problem);
                }

                if (g->input != INPUT_TTY && prompt_stream(g)) {
                        /* A transcript: the prompt, then the answer given. */
                        print_prompt(g, first);
                        print_name(stdout, (const uint8_t *) v, len);
                        putchar('\n');
                }
                memcpy(value, v, len + 1 <= value_size ? len + 1 : value_size);
                return 0;
        }
}

static void print_result(struct game *g, bool win)
{
        const uint8_t *answer = (const uint8_t *) g->rep.text;
        size_t answer_len = g->rep.text_len;

        if (!settings.json) {
                fputs(win ? "You win! It was " : "You lose. It was ", stdout);
                print_name(stdout, answer, answer_len);
                fputs(".\n", stdout);
                return;
        }

        (void) fflush(g->guesses);
        printf("{\"command\":\"guess\",\"status\":\"%s\",\"exit_code\":%d,\"server\":", win ? "ok" : "lost",
               win ? EXIT_OK : EXIT_LOST);
        json_string(stdout, (const uint8_t *) g->peer.host, strlen(g->peer.host));
        printf(",\"port\":%u,\"address\":", g->peer.port);
        json_string(stdout, (const uint8_t *) g->peer.addr, strlen(g->peer.addr));
        printf(",\"result\":\"%s\",\"answer\":", win ? "win" : "lose");
        json_string(stdout, answer, answer_len);
        printf(",\"round\":\"%08x\",\"mode\":\"%s\",", (unsigned) g->id, g->person ? "person" : "number");
        if (g->person)
                printf("\"range\":null,");
        else
                printf("\"range\":[%lld,%lld],", (long long) g->lo, (long long) g->hi);
        printf("\"tries\":%u,\"guesses\":[", g->tries);
        if (g->guesses_buf)
                (void) !fwrite(g->guesses_buf, 1, g->guesses_size, stdout);
        printf("]}\n");
}

static int play(struct game *g)
{
        uint32_t nonce;
        ssize_t k;

        /* The nonce makes our `play` idempotent: a resend gets the same round. */
        do
                k = getrandom(&nonce, sizeof nonce, 0);
        while (k < 0 && errno == EINTR);
        if (k != (ssize_t) sizeof nonce)
                return fail("guess", EXIT_FAILURE_OTHER, "internal-error", "getrandom: %s",
                            k < 0 ? strerror(errno) : "short read");

        struct guess_request req = { .verb = GUESS_PLAY, .has_nonce = true, .nonce = nonce };
        int n = guess_request_format(g->req, sizeof g->req, &req, NL_GUESS_PAD);
        if (n < 0)
                return fail("guess", EXIT_FAILURE_OTHER, "internal-error", "cannot format the play request");
        g->req_len = (size_t) n;

        int r = game_exchange(g);
        if (r > 0)
                return r;
        if (g->rep.kind == GUESS_REPLY_ERR)
                return game_refused(g);
        if (g->rep.kind != GUESS_REPLY_ROUND)
                return protocol_error(g, "not a ROUND reply to play");

        g->id = g->rep.id;
        g->tries = g->tries_left = g->rep.tries;
        g->person = !g->rep.has_range;
        g->lo = g->rep.lo;
        g->hi = g->rep.hi;
        if (g->person && prompt_stream(g)) {
                FILE *f = prompt_stream(g);
                fputs("Hint: ", f);
                print_name(f, (const uint8_t *) g->rep.text, g->rep.text_len);
                fputc('\n', f);
        }

        for (bool first = true;; first = false) {
                char value[NL_GUESS_VALUE_MAX + 1];

                r = next_guess(g, first, value, sizeof value);
                if (r == -ENODATA)
                        return fail("guess", EXIT_LOST, "no-more-guesses",
                                    "no more guesses, with %u tr%s left in round %08x", g->tries_left,
                                    g->tries_left == 1 ? "y" : "ies", (unsigned) g->id);
                if (r < 0)
                        return -r;

                if (g->guesses) {
                        fputs(g->n_guesses > 0 ? "," : "", g->guesses);
                        json_string(g->guesses, (const uint8_t *) value, strlen(value));
                }
                g->n_guesses++;

                r = game_exchange(g);
                if (r > 0)
                        return r;
                switch (g->rep.kind) {
                case GUESS_REPLY_ERR:
                        return game_refused(g);
                case GUESS_REPLY_ROUND:
                        return protocol_error(g, "a ROUND reply to a guess");
                default:
                        break;
                }
                /* We sent id=, so the reply must carry it back (10.2). */
                if (!g->rep.has_id || g->rep.id != g->id)
                        return protocol_error(g, "a reply for another round");

                if (g->rep.kind == GUESS_REPLY_WIN || g->rep.kind == GUESS_REPLY_LOSE) {
                        bool win = g->rep.kind == GUESS_REPLY_WIN;
                        print_result(g, win);
                        return win ? EXIT_OK : EXIT_LOST;
                }

                /* WRONG: each counted guess uses one try. */
                if (g->rep.tries >= g->tries_left)
                        return protocol_error(g, "tries left did not go down in the reply");
                g->tries_left = g->rep.tries;
                FILE *f = prompt_stream(g);
                if (f) {
                        if (g->rep.direction != 0 && !g->person)
                                fprintf(f, "Wrong: the number is %s.\n", g->rep.direction > 0 ? "higher" : "lower");
                        else
                                fprintf(f, "Wrong.\n");
                }
        }
}

int cmd_guess(int argc, char **argv)
{
        enum { OPT_GUESS = 'g', OPT_WAIT = 'W', OPT_RETRIES = 'r' };
        static const struct option options[] = {
                COMMON_LONG_OPTIONS,
                { "guess", required_argument, NULL, OPT_GUESS },
                { "wait", required_argument, NULL, OPT_WAIT },
                { "retries", required_argument, NULL, OPT_RETRIES },
                {}
        };
        _cleanup_(game_done) struct game g = { .peer.fd = -1 };
        _cleanup_free_ char **guesses = calloc((size_t) argc + 1, sizeof *guesses);
        int c;

        if (!guesses)
                return fail("guess", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        arg_guesses = guesses;
        arg_n_guesses = 0;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+:" COMMON_OPTIONS_SHORT "g:W:r:", options, NULL)) >= 0) {
                int r = parse_common_option(c, optarg, &settings.guess_port);
                if (r < 0)
                        return EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_HELP:
                        help();
                        return EXIT_OK;
                case OPT_GUESS:
                        guesses[arg_n_guesses++] = optarg;
                        break;
                case OPT_WAIT:
                        if (parse_seconds("guess: --wait", optarg, 1000, UDP_WAIT_MAX_USEC, &arg_wait_usec) < 0)
                                return EXIT_USAGE;
                        break;
                case OPT_RETRIES:
                        if (num_parse_u64(optarg, 0, UDP_RETRIES_MAX, &arg_retries) < 0)
                                return usage_error("guess: --retries: \"%s\" is not a number from 0 to %u", optarg,
                                                   UDP_RETRIES_MAX);
                        break;
                case ':':
                        return usage_error("guess: option %s needs a value", argv[optind - 1]);
                default:
                        return usage_error("guess: unknown option %s (see 'guess --help')", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return usage_error("guess: unexpected argument \"%s\" (a guess goes after --guess)", argv[optind]);

        if (arg_n_guesses > 0)
                g.input = INPUT_ARGS;
        else
                g.input = isatty(STDIN_FILENO) ? INPUT_TTY : INPUT_LINES;

        g.reply = malloc(NL_UDP_PAYLOAD_MAX + 1);
        if (!g.reply)
                return fail("guess", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        if (settings.json) {
                g.guesses = open_memstream(&g.guesses_buf, &g.guesses_size);
                if (!g.guesses)
                        return fail("guess", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        }

        char err[512];
        if (udp_peer_open(&g.peer, settings.host, settings.guess_port, err, sizeof err) < 0)
                return fail("guess", EXIT_CONNECT, "connect-failed", "%s", err);

        return play(&g);
}
