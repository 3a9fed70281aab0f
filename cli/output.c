/* output.c: printing what a server sent, and JSON. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

/* Length of the valid UTF-8 character at buf[0] (lead byte >= 0x80), or 0. */
static size_t utf8_char(const uint8_t *buf, size_t n)
{
        uint8_t b = buf[0];
        size_t len = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;

        if (len == 0 || len > n || text_check(buf, len, NULL) < 0)
                return 0;
        return len;
}

void print_server_text(const uint8_t *buf, size_t n, bool add_newline)
{
        if (isatty(STDOUT_FILENO)) {
                /* Escape what could drive the terminal; keep newlines, tabs and
                 * valid UTF-8. */
                for (size_t i = 0; i < n; i++) {
                        uint8_t b = buf[i];
                        if (b == '\n' || b == '\t' || (b >= 0x20 && b < 0x7F)) {
                                putchar(b);
                                continue;
                        }
                        size_t len = b >= 0x80 ? utf8_char(buf + i, n - i) : 0;
                        if (len > 0) {
                                (void) !fwrite(buf + i, 1, len, stdout);
                                i += len - 1;
                        } else
                                printf("\\x%02x", b);
                }
        } else if (n > 0)
                (void) !fwrite(buf, 1, n, stdout);

        if (add_newline && (n == 0 || buf[n - 1] != '\n'))
                putchar('\n');
}

void print_name(FILE *f, const uint8_t *buf, size_t n)
{
        bool tty = isatty(fileno(f));

        for (size_t i = 0; i < n; i++) {
                uint8_t b = buf[i];
                if (b >= 0x20 && b < 0x7F) {
                        fputc(b, f);
                        continue;
                }
                size_t len = b >= 0x80 ? utf8_char(buf + i, n - i) : 0;
                if (len > 0 || (b >= 0x80 && !tty)) {
                        /* Valid UTF-8 (C1 controls excluded by text_check),
                         * or any high byte when no terminal reads it. */
                        len = len > 0 ? len : 1;
                        (void) !fwrite(buf + i, 1, len, f);
                        i += len - 1;
                } else
                        fprintf(f, "\\x%02x", b);
        }
}

void json_string(FILE *f, const uint8_t *buf, size_t n)
{
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                uint8_t b = buf[i];
                switch (b) {
                case '"': fputs("\\\"", f); break;
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                default:
                        if (b < 0x20 || b == 0x7F)
                                fprintf(f, "\\u%04x", b);
                        else if (b >= 0x80) {
                                /* Pass valid UTF-8 through, escape stray bytes. */
                                size_t len = utf8_char(buf + i, n - i);
                                if (len > 0) {
                                        (void) !fwrite(buf + i, 1, len, f);
                                        i += len - 1;
                                } else
                                        fprintf(f, "\\u%04x", b);
                        } else
                                fputc(b, f);
                }
        }
        fputc('"', f);
}

int fail(const char *command, int exit_code, const char *status, const char *fmt, ...)
{
        char text[1024];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap); /* a shortened message is fine */
        va_end(ap);

        fprintf(stderr, "%s: %s\n", program_name, text);
        if (settings.json) {
                printf("{\"command\":\"%s\",\"status\":\"%s\",\"exit_code\":%d,\"error\":", command, status,
                       exit_code);
                json_string(stdout, (const uint8_t *) text, strlen(text));
                printf("}\n");
        }
        return exit_code;
}

char *join_words(int n, char **words, size_t max, size_t *ret_len)
{
        size_t len = 0;

        for (int i = 0; i < n; i++) {
                /* Both bounded by the argv size limit, so no overflow. */
                len += strlen(words[i]) + (i > 0);
                if (len > max)
                        return NULL;
        }
        char *s = malloc(len + 1);
        if (!s)
                return NULL;

        size_t o = 0;
        for (int i = 0; i < n; i++) {
                size_t w = strlen(words[i]);
                if (i > 0)
                        s[o++] = ' ';
                memcpy(s + o, words[i], w);
                o += w;
        }
        s[o] = '\0';
        *ret_len = o;
        return s;
}
