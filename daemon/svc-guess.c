/* svc-guess.c: the guessing game over UDP (lab exercise 1; docs/PROTOCOL.md
 * 10.2).
 *
 * Runs in the supervisor, one datagram at a time.  Trusts nothing in a
 * datagram, including its source: rounds live in a fixed table keyed by a
 * secret hash of the source address and port, a full table refuses new
 * rounds instead of evicting live ones (so forged sources cannot push a real
 * player out), and no state changes unless the reply fits the size rule.
 * Answers and round ids come from getrandom(2). */
#include <errno.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "children.h"
#include "config.h"
#include "conn.h"
#include "dgram.h"
#include "guard.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "siphash.h"
#include "util.h"

#define ROUND_WAYS 8u

struct guess_person {
        char *name;
        char *hint;
        char **aliases;
        size_t n_aliases;
};

struct guess_people {
        struct guess_person *v;
        size_t n;
};

struct guess_options {
        char *mode;             /* "number" | "person" */
        int64_t min, max;
        int64_t attempts;
        int64_t round_timeout;  /* seconds */
        int64_t max_rounds;
        struct guess_people people;
        bool person;            /* derived: mode == "person" */
};

/* ---- config: the people list ---- */

static void person_done(struct guess_person *p)
{
        free(p->name);
        free(p->hint);
        for (size_t i = 0; i < p->n_aliases; i++)
                free(p->aliases[i]);
        free(p->aliases);
}

static void people_done(void *field)
{
        struct guess_people *l = field;

        for (size_t i = 0; i < l->n; i++)
                person_done(&l->v[i]);
        free(l->v);
        *l = (struct guess_people) {};
}

/* A name, alias or hint as the protocol can carry it: text, no '#' (it
 * starts padding), no spaces at either end.  Return: NULL or why not. */
static const char *check_text(const char *s, size_t max, bool name)
{
        size_t n = strlen(s);

        if (n == 0)
                return "is empty";
        if (n > max)
                return name ? "is longer than 100 bytes" : "is longer than 400 bytes";
        if (text_check((const uint8_t *) s, n, NULL) < 0)
                return "is not printable UTF-8 text";
        if (name && strchr(s, '#'))
                return "contains '#', which starts padding in the protocol";
        if (name && !guess_names_match(s, n, s, n))
                return "has no letters or digits to match";
        if (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '\t' || s[n - 1] == '\t')
                return "starts or ends with a space";
        return NULL;
}

static char *read_text(struct config_report *rep, const config_setting_t *s, const char *where,
                       const char *what, size_t max, bool name)
{
        if (config_setting_type(s) != CONFIG_TYPE_STRING) {
                config_report_at(rep, s, "%s%s must be a string", where, what);
                return NULL;
        }
        const char *v = config_setting_get_string(s);
        const char *why = check_text(v, max, name);
        if (why) {
                char esc[128];
                text_escape(esc, sizeof esc, (const uint8_t *) v, strlen(v));
                config_report_at(rep, s, "%s%s \"%s\" %s", where, what, esc, why);
                return NULL;
        }
        char *copy = strdup(v);
        if (!copy)
                config_report_at(rep, s, "out of memory");
        return copy;
}

/* Does any name or alias of people[0..n) match s?  Return: the person, or -1. */
static ssize_t people_find(const struct guess_person *v, size_t n, const char *s, size_t len)
{
        for (size_t i = 0; i < n; i++) {
                if (v[i].name && guess_names_match(v[i].name, strlen(v[i].name), s, len))
                        return (ssize_t) i;
                for (size_t k = 0; k < v[i].n_aliases; k++)
                        if (guess_names_match(v[i].aliases[k], strlen(v[i].aliases[k]), s, len))
                                return (ssize_t) i;
        }
        return -1;
}

static void read_person(struct config_report *rep, const config_setting_t *g, struct guess_person *p,
                        const struct guess_person *earlier, size_t n_earlier, const char *where)
{
        int n = config_setting_length(g);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(g, (unsigned) i);
                const char *key = config_setting_name(s);

                if (strcmp(key, "name") == 0)
                        p->name = read_text(rep, s, where, "name", NL_GUESS_NAME_MAX, true);
                else if (strcmp(key, "hint") == 0)
                        p->hint = read_text(rep, s, where, "hint", NL_GUESS_HINT_MAX, false);
                else if (strcmp(key, "aliases") == 0) {
                        int t = config_setting_type(s), m = config_setting_length(s);
                        if ((t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) || m > 16) {
                                config_report_at(rep, s, "%saliases must be an array of at most 16 "
                                                 "strings [ \"...\", ... ]", where);
                                continue;
                        }
                        p->aliases = calloc((size_t) m + 1, sizeof *p->aliases);
                        if (!p->aliases) {
                                config_report_at(rep, s, "out of memory");
                                continue;
                        }
                        for (int k = 0; k < m; k++) {
                                char *a = read_text(rep, config_setting_get_elem(s, (unsigned) k), where,
                                                    "alias", NL_GUESS_NAME_MAX, true);
                                if (a)
                                        p->aliases[p->n_aliases++] = a;
                        }
                } else
                        config_report_at(rep, s, "%sunknown key '%s' (a person has name, hint and aliases)",
                                         where, key);
        }
        if (!config_setting_get_member(g, "name"))
                config_report_at(rep, g, "%smissing required key 'name'", where);
        if (!config_setting_get_member(g, "hint"))
                config_report_at(rep, g, "%smissing required key 'hint'", where);

        /* A guess must name exactly one person. */
        const char *mine[17];
        size_t n_mine = 0;
        if (p->name)
                mine[n_mine++] = p->name;
        for (size_t k = 0; k < p->n_aliases; k++)
                mine[n_mine++] = p->aliases[k];
        for (size_t k = 0; k < n_mine; k++) {
                ssize_t other = people_find(earlier, n_earlier, mine[k], strlen(mine[k]));
                if (other >= 0)
                        config_report_at(rep, g, "%s\"%s\" matches person %zd, \"%s\", too: "
                                         "a guess must name one person", where, mine[k], other + 1,
                                         earlier[other].name);
        }
}

static void people_read(struct config_report *rep, const config_setting_t *s, void *field,
                        const char *where, const char *name)
{
        struct guess_people *l = field;
        int t = config_setting_type(s), n = config_setting_length(s);

        if (t != CONFIG_TYPE_LIST && !(t == CONFIG_TYPE_ARRAY && n == 0)) {
                config_report_at(rep, s, "%s%s must be a list ( { name = \"...\"; hint = \"...\"; }, ... )",
                                 where, name);
                return;
        }
        if (n > 65535) {
                config_report_at(rep, s, "%s%s: more than 65535 people", where, name);
                return;
        }
        people_done(l);
        l->v = calloc((size_t) n + 1, sizeof *l->v);
        if (!l->v) {
                config_report_at(rep, s, "out of memory");
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *g = config_setting_get_elem(s, (unsigned) i);
                char w[160];

                (void) xsnprintf(w, sizeof w, "%s%s: person %d: ", where, name, i + 1);
                if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
                        config_report_at(rep, g, "%smust be a group { name = \"...\"; hint = \"...\"; }", w);
                        continue;
                }
                read_person(rep, g, &l->v[l->n], l->v, l->n, w);
                l->n++;
        }
}

static int people_init(void *field)
{
        *(struct guess_people *) field = (struct guess_people) {};
        return 0;
}

static const struct config_key guess_keys[] = {
        { .name = "mode", .type = CONFIG_KEY_ENUM, .choices = "number|person",
          .offset = offsetof(struct guess_options, mode), .default_str = "number",
          .doc = "number: guess an integer from min to max; person: guess who a hint describes" },
        { .name = "min", .type = CONFIG_KEY_INT, .min = -1000000000, .max = 1000000000,
          .offset = offsetof(struct guess_options, min), .default_int = 1,
          .doc = "number mode: smallest answer (the lab's default range is 1 to 6)" },
        { .name = "max", .type = CONFIG_KEY_INT, .min = -1000000000, .max = 1000000000,
          .offset = offsetof(struct guess_options, max), .default_int = 6,
          .doc = "number mode: largest answer" },
        { .name = "attempts", .type = CONFIG_KEY_INT, .min = 1, .max = 100,
          .offset = offsetof(struct guess_options, attempts), .default_int = 1,
          .doc = "guesses per round (the lab exercise allows one)" },
        { .name = "round_timeout", .type = CONFIG_KEY_INT, .min = 1, .max = 86400,
          .offset = offsetof(struct guess_options, round_timeout), .default_int = 120,
          .doc = "seconds a round lasts from its play" },
        { .name = "max_rounds", .type = CONFIG_KEY_INT, .min = 1, .max = 1048576,
          .offset = offsetof(struct guess_options, max_rounds), .default_int = 4096,
          .doc = "rounds held at once (rounded up to a multiple of 8); when full, new rounds are "
                 "refused and live ones never evicted" },
        { .name = "people", .type = CONFIG_KEY_CUSTOM, .offset = offsetof(struct guess_options, people),
          .custom_init = people_init, .custom_read = people_read, .custom_done = people_done,
          .custom_type = "list of { name; hint; aliases }, no default (see conf/guess-people.conf)",
          .doc = "person mode: who can be the answer: name (<= 100 bytes), hint (<= 400 bytes), "
                 "optional aliases accepted as guesses" },
        {}
};

static const char *guess_options_check(void *options, char *buf, size_t size)
{
        struct guess_options *o = options;

        o->person = o->mode && strcmp(o->mode, "person") == 0;
        if (o->person && o->people.n == 0)
                return "mode \"person\" needs a people list ( { name = \"...\"; hint = \"...\"; }, ... )";
        if (!o->person && o->people.n > 0)
                return "people is only for mode = \"person\"";
        if (!o->person && o->min > o->max) {
                (void) xsnprintf(buf, size, "min (%lld) is larger than max (%lld)", (long long) o->min,
                                 (long long) o->max);
                return buf;
        }
        return NULL;
}

/* ---- rounds ---- */

enum round_state {
        ROUND_EMPTY = 0,
        ROUND_OPEN,
        ROUND_OVER,     /* won or lost; kept for retransmissions until it expires */
};

struct round {
        struct in6_addr addr;   /* the source, exactly (not its /64) */
        uint16_t port;
        uint8_t state;          /* enum round_state */
        uint8_t tries;          /* allowed in this round */
        uint8_t tries_left;
        bool has_nonce;
        bool guessed;           /* a guess was counted */
        uint8_t last_kind;      /* enum guess_reply_kind of the last counted guess */
        int8_t last_direction;
        uint32_t id, nonce;
        int64_t answer;         /* number mode: the number; person mode: the index */
        uint64_t last_hash;     /* of the last counted guess's value */
        uint64_t started_usec, expires_usec;
        uint32_t n_guesses;
};

struct guess_state {
        const struct guess_options *opt;
        struct siphash_key key;
        struct round *rounds;
        size_t n_sets, ways;
};

static void guess_state_free(void *state)
{
        struct guess_state *st = state;

        if (!st)
                return;
        free(st->rounds);
        free(st);
}

/* The two sets a source's round may sit in ("two choices": the table fills
 * almost completely before a set-full refusal, instead of at the first
 * unlucky set).  Both may be the same set. */
static void round_sets(const struct guess_state *st, const struct in6_addr *addr, uint16_t port,
                       struct round *ret[2])
{
        uint8_t k[sizeof *addr + 2];

        memcpy(k, addr, sizeof *addr);
        k[sizeof *addr] = (uint8_t) (port >> 8);
        k[sizeof *addr + 1] = (uint8_t) port;
        uint64_t h = siphash24(&st->key, k, sizeof k);
        ret[0] = st->rounds + ((h & 0xffffffffu) % st->n_sets) * st->ways;
        ret[1] = st->rounds + ((h >> 32) % st->n_sets) * st->ways;
}

static bool round_live(const struct round *r, uint64_t now)
{
        return r->state != ROUND_EMPTY && now < r->expires_usec;
}

/* This source's round (live or expired), or NULL; *ret_free: a slot a new
 * round may take (empty or expired), or NULL when the set is full. */
static struct round *round_find(struct guess_state *st, const struct in6_addr *addr, uint16_t port,
                                uint64_t now, struct round **ret_free)
{
        struct round *sets[2], *mine = NULL, *free_slot = NULL;
        size_t n_free[2] = { 0, 0 };
        struct round *first_free[2] = { NULL, NULL };

        round_sets(st, addr, port, sets);
        for (size_t k = 0; k < 2 && !mine; k++) {
                for (size_t i = 0; i < st->ways; i++) {
                        struct round *r = &sets[k][i];
                        if (r->state != ROUND_EMPTY && r->port == port &&
                            memcmp(&r->addr, addr, sizeof *addr) == 0) {
                                mine = r;
                                break;
                        }
                        if (!round_live(r, now) && n_free[k]++ == 0)
                                first_free[k] = r;
                }
                if (sets[1] == sets[0])
                        break;
        }
        /* A new round goes to the emptier of its two sets. */
        free_slot = n_free[1] > n_free[0] ? first_free[1] : first_free[0];
        if (ret_free)
                *ret_free = mine ? mine : free_slot;
        return mine;
}

/* Migrate rounds in play from the config before a reload, where the answer
 * still exists in the new one. */
static void migrate(struct guess_state *st, const struct guess_state *old, uint64_t now)
{
        size_t total = old->n_sets * old->ways;

        if (old->opt->person != st->opt->person)
                return;
        for (size_t i = 0; i < total; i++) {
                struct round r = old->rounds[i];
                struct round *slot = NULL;

                if (!round_live(&r, now))
                        continue;
                if (!st->opt->person && (r.answer < st->opt->min || r.answer > st->opt->max))
                        continue;
                if (st->opt->person) {
                        const char *name = old->opt->people.v[r.answer].name;
                        ssize_t k = people_find(st->opt->people.v, st->opt->people.n, name, strlen(name));
                        if (k < 0 || !guess_names_match(st->opt->people.v[k].name,
                                                        strlen(st->opt->people.v[k].name), name, strlen(name)))
                                continue;
                        r.answer = k;
                }
                (void) round_find(st, &r.addr, r.port, now, &slot);
                if (slot)
                        *slot = r;
        }
}

static int guess_state_new(const struct listener_config *lc, const void *old_state, void **ret_state)
{
        const struct guess_options *opt = lc->options;
        struct guess_state *st = calloc(1, sizeof *st);
        size_t n = (size_t) opt->max_rounds;
        int r;

        if (!st)
                return -ENOMEM;
        st->opt = opt;
        r = siphash_key_random(&st->key);
        if (r < 0) {
                free(st);
                return r;
        }
        st->ways = n < ROUND_WAYS ? n : ROUND_WAYS;
        st->n_sets = (n + st->ways - 1) / st->ways;
        st->rounds = calloc(st->n_sets * st->ways, sizeof *st->rounds);
        if (!st->rounds) {
                free(st);
                return -ENOMEM;
        }
        if (old_state)
                migrate(st, old_state, now_usec());
        *ret_state = st;
        return 0;
}

/* ---- answering ---- */

/* Random bytes without blocking.  Return: 0; -EAGAIN early in boot. */
static int random_bytes(void *buf, size_t n)
{
        ssize_t k;

        do
                k = getrandom(buf, n, GRND_NONBLOCK);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        return (size_t) k == n ? 0 : -EAGAIN;
}

/* An ERR reply in buf, no larger than the request (len): the full text, else
 * the code alone, else nothing.  Return: its size, or -1. */
static ssize_t reply_error(uint8_t *buf, size_t len, unsigned status, const char *text)
{
        char out[NL_GUESS_REPLY_MAX];
        struct guess_reply rep = {
                .kind = GUESS_REPLY_ERR, .status = status, .text = text, .text_len = text ? strlen(text) : 0,
        };
        int n = guess_reply_format(out, sizeof out, &rep);

        if (n < 0 || (size_t) n > len) {
                rep.text_len = 0;
                n = guess_reply_format(out, sizeof out, &rep);
        }
        if (n < 0 || (size_t) n > len)
                return -1;
        memcpy(buf, out, (size_t) n);
        return n;
}

/* The reply a request deserves was formatted into out (n bytes): send it if
 * it is at most NL_GUESS_AMPLIFY times the request; else ask for padding.
 * Return: the reply size in buf, or -1; *ret_sent says whether out went. */
static ssize_t reply_or_pad(uint8_t *buf, size_t len, const char *out, int n, bool *ret_sent)
{
        *ret_sent = false;
        if (n < 0)
                return reply_error(buf, len, NL_STATUS_INTERNAL, "internal error");
        if ((size_t) n <= len * NL_GUESS_AMPLIFY) {
                memcpy(buf, out, (size_t) n);
                *ret_sent = true;
                return n;
        }
        char text[32];
        size_t need = ((size_t) n + NL_GUESS_AMPLIFY - 1) / NL_GUESS_AMPLIFY;
        (void) xsnprintf(text, sizeof text, "pad to %zu", need);
        return reply_error(buf, len, NL_STATUS_BAD_REQUEST, text);
}

static int format_answer(const struct guess_state *st, const struct round *r, char *buf, size_t size)
{
        if (st->opt->person)
                return xsnprintf(buf, size, "%s", st->opt->people.v[r->answer].name);
        return xsnprintf(buf, size, "%lld", (long long) r->answer);
}

static int format_round(const struct guess_state *st, const struct round *r, char *out, size_t size)
{
        struct guess_reply rep = {
                .kind = GUESS_REPLY_ROUND, .has_id = true, .id = r->id, .tries = r->tries,
        };

        if (st->opt->person) {
                const char *hint = st->opt->people.v[r->answer].hint;
                rep.text = hint;
                rep.text_len = strlen(hint);
        } else {
                rep.has_range = true;
                rep.lo = st->opt->min;
                rep.hi = st->opt->max;
        }
        return guess_reply_format(out, size, &rep);
}

/* The reply to the round's last counted guess (with id if asked). */
static int format_result(const struct guess_state *st, const struct round *r, bool with_id, char *out,
                         size_t size)
{
        char answer[NL_GUESS_NAME_MAX + 32];
        struct guess_reply rep = {
                .kind = r->last_kind, .has_id = with_id, .id = r->id, .tries = r->tries_left,
                .direction = r->last_direction,
        };

        if (rep.kind != GUESS_REPLY_WRONG) {
                int n = format_answer(st, r, answer, sizeof answer);
                if (n < 0)
                        return n;
                rep.text = answer;
                rep.text_len = (size_t) n;
        }
        return guess_reply_format(out, size, &rep);
}

static ssize_t on_play(struct guess_state *st, struct dgram_ctx *ctx, const struct guess_request *req,
                       uint8_t *buf, size_t len)
{
        const struct guess_options *o = st->opt;
        char out[NL_GUESS_REPLY_MAX];
        struct in6_addr addr;
        struct round *slot = NULL;
        bool sent;

        children_source_key(ctx->peer, &addr); /* the exact address */
        struct round *mine = round_find(st, &addr, ctx->peer_port, ctx->now_usec, &slot);

        /* The same play again (a retransmission): the same round. */
        if (mine && round_live(mine, ctx->now_usec) && mine->state == ROUND_OPEN && !mine->guessed &&
            req->has_nonce && mine->has_nonce && mine->nonce == req->nonce)
                return reply_or_pad(buf, len, out, format_round(st, mine, out, sizeof out), &sent);

        struct { uint32_t id; uint64_t pick; } rnd;
        if (random_bytes(&rnd, sizeof rnd) < 0)
                return reply_error(buf, len, NL_STATUS_INTERNAL, "no random numbers yet, try again");

        struct round r = {
                .addr = addr, .port = ctx->peer_port, .state = ROUND_OPEN,
                .tries = (uint8_t) o->attempts, .tries_left = (uint8_t) o->attempts,
                .has_nonce = req->has_nonce, .nonce = req->nonce, .id = rnd.id,
                .started_usec = ctx->now_usec,
                .expires_usec = ctx->now_usec + (uint64_t) o->round_timeout * 1000000u,
        };
        /* The modulo's bias is below 2^-32 for every span a config allows. */
        if (o->person)
                r.answer = (int64_t) (rnd.pick % o->people.n);
        else
                r.answer = o->min + (int64_t) (rnd.pick % (uint64_t) (o->max - o->min + 1));

        ssize_t k = reply_or_pad(buf, len, out, format_round(st, &r, out, sizeof out), &sent);
        if (!sent)
                return k; /* asked for padding: nothing changed */
        if (!slot)
                return reply_error(buf, len, NL_STATUS_BUSY, "busy, try again later");
        *slot = r;
        return k;
}

static ssize_t on_guess(struct guess_state *st, struct dgram_ctx *ctx, const struct guess_request *req,
                        uint8_t *buf, size_t len)
{
        const struct guess_options *o = st->opt;
        char out[NL_GUESS_REPLY_MAX], value[NL_GUESS_VALUE_MAX + 1];
        struct in6_addr addr;
        bool sent;

        /* req->value points into buf, which the reply overwrites. */
        memcpy(value, req->value, req->value_len);
        value[req->value_len] = '\0';

        children_source_key(ctx->peer, &addr); /* the exact address */
        struct round *r = round_find(st, &addr, ctx->peer_port, ctx->now_usec, NULL);

        if (!r)
                return reply_error(buf, len, NL_STATUS_NOT_FOUND, "no round; send play");
        if (req->has_id && r->id != req->id)
                return reply_error(buf, len, NL_STATUS_NOT_FOUND, "unknown round");
        if (!round_live(r, ctx->now_usec))
                return reply_error(buf, len, NL_STATUS_TIMEOUT, "round expired; send play");

        uint64_t h = siphash24(&st->key, req->value, req->value_len);
        if (req->has_id && r->guessed && h == r->last_hash)
                return reply_or_pad(buf, len, out, format_result(st, r, true, out, sizeof out), &sent);
        if (r->state == ROUND_OVER)
                return reply_error(buf, len, NL_STATUS_NOT_FOUND, "round over; send play");

        bool win;
        int direction = 0;
        if (o->person) {
                const struct guess_person *p = &o->people.v[r->answer];
                win = guess_names_match(p->name, strlen(p->name), req->value, req->value_len);
                for (size_t k = 0; !win && k < p->n_aliases; k++)
                        win = guess_names_match(p->aliases[k], strlen(p->aliases[k]), req->value,
                                                req->value_len);
        } else {
                int64_t g;
                if (guess_number_parse(req->value, req->value_len, &g) < 0 || g < o->min || g > o->max) {
                        char text[80];
                        (void) xsnprintf(text, sizeof text, "guess a number from %lld to %lld",
                                         (long long) o->min, (long long) o->max);
                        return reply_error(buf, len, NL_STATUS_BAD_REQUEST, text);
                }
                win = g == r->answer;
                direction = r->answer > g ? 1 : -1;
        }

        /* Work on a copy: the round changes only if the reply goes out. */
        struct round next = *r;
        next.tries_left--;
        next.guessed = true;
        next.n_guesses++;
        next.last_hash = h;
        next.last_kind = win ? GUESS_REPLY_WIN : next.tries_left == 0 ? GUESS_REPLY_LOSE : GUESS_REPLY_WRONG;
        next.last_direction = (int8_t) (next.last_kind == GUESS_REPLY_WRONG ? direction : 0);
        if (next.last_kind != GUESS_REPLY_WRONG)
                next.state = ROUND_OVER;

        ssize_t k = reply_or_pad(buf, len, out, format_result(st, &next, req->has_id, out, sizeof out), &sent);
        if (!sent)
                return k;
        *r = next;

        if (next.state == ROUND_OVER) {
                char answer[NL_GUESS_NAME_MAX + 32], detail[NL_GUESS_NAME_MAX + 96];
                (void) format_answer(st, &next, answer, sizeof answer);
                (void) xsnprintf(detail, sizeof detail, "answer \"%s\" after %u guess%s", answer,
                                 (unsigned) next.n_guesses, next.n_guesses == 1 ? "" : "es");
                dgram_log_request(ctx, &(struct request_log) {
                        .bytes_in = len, .bytes_out = (uint64_t) k,
                        .duration_usec = ctx->now_usec - next.started_usec,
                        .result = win ? "win" : "lose", .detail = detail,
                        .text = (const uint8_t *) value, .text_len = strlen(value),
                        .priority = LOG_INFO,
                });
        }
        return k;
}

static ssize_t guess_on_datagram(void *state, struct dgram_ctx *ctx, uint8_t *buf, size_t len, size_t cap)
{
        struct guess_state *st = state;
        struct guess_request req;

        /* Every reply is built aside and copied over the request at the end:
         * it is at most 3 * len <= cap bytes, and req points into buf. */
        if (cap < NL_GUESS_REPLY_MAX)
                return -1;
        int r = guess_request_parse(buf, len, &req);
        if (r < 0)
                return reply_error(buf, len, r == -E2BIG ? NL_STATUS_TOO_LONG : NL_STATUS_BAD_REQUEST,
                                   req.problem);
        if (req.verb == GUESS_PLAY)
                return on_play(st, ctx, &req, buf, len);
        return on_guess(st, ctx, &req, buf, len);
}

const struct service svc_guess = {
        .name = "guess",
        .socktype = SOCK_DGRAM,
        .summary = "a guessing game over UDP: a number in a range, or a famous person from a hint",
        .keys = guess_keys,
        .options_size = sizeof(struct guess_options),
        .options_check = guess_options_check,
        .dgram_amplify = NL_GUESS_AMPLIFY,
        .dgram_reply_max = NL_GUESS_REPLY_MAX,
        .dgram_state_new = guess_state_new,
        .dgram_state_free = guess_state_free,
        .on_datagram = guess_on_datagram,
};
