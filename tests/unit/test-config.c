/* test-config.c: config_load() (daemon/config.c) on real files.
 *
 * The example conf/netlabd.conf loads with the documented defaults; each bad
 * config reports exactly the expected (line, message) pairs, and a config with
 * several problems reports all of them.  Files live in a mkdtemp() directory
 * under /tmp that is removed at the end. */
#include <errno.h>
#include <netinet/in.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "privs.h"
#include "proto.h"
#include "service.h"
#include "svc-file.h"
#include "test-util.h"
#include "util.h"

#ifndef SOURCE_ROOT
#error "SOURCE_ROOT must name the source tree (tests/meson.build sets it)"
#endif

#define MAX_REPORTS 16

struct report_entry {
        int line;
        char message[512];
};

struct reports {
        const char *expected_file;
        bool wrong_file;
        size_t n;
        struct report_entry e[MAX_REPORTS];
};

static void collect(const char *file, int line, const char *message, void *userdata)
{
        struct reports *r = userdata;

        if (!file || strcmp(file, r->expected_file) != 0)
                r->wrong_file = true;
        if (r->n < MAX_REPORTS) {
                r->e[r->n].line = line;
                if (xsnprintf(r->e[r->n].message, sizeof r->e[r->n].message, "%s", message) < 0)
                        r->e[r->n].message[0] = '\0'; /* longer than any expected message: fails */
        }
        r->n++;
}

static char tmpdir[] = "/tmp/netlab-test-config.XXXXXX";
static char conf_path[sizeof tmpdir + 32]; /* <tmpdir>/netlabd.conf */

/* Write text to path.  Return: 0, or -errno. */
static int write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        size_t len = strlen(text);
        if (fwrite(text, 1, len, f) != len) {
                (void) fclose(f);
                return -EIO;
        }
        if (fclose(f) != 0)
                return -errno;
        return 0;
}

/* Load text as a config file.  Return: config_load()'s result. */
static int load_text(const char *text, struct reports *rep, struct config **ret)
{
        int r = write_file(conf_path, text);
        if (r < 0)
                return r;

        *rep = (struct reports) { .expected_file = conf_path };
        r = config_load(conf_path, collect, rep, ret);
        if (unlink(conf_path) < 0)
                test_check(false, __FILE__, __LINE__, "unlink(%s): %m", conf_path);
        return r;
}

struct expect {
        int line;
        const char *message; /* must appear in the reported message */
};

struct bad_case {
        const char *name;
        const char *text;
        struct expect e[6];
};

/* A valid listener block, lines 2..8 when the list starts on line 1. */
#define LISTENER_M(extra)                                                                         \
        "        {\n"                                                                             \
        "                name = \"m\";\n"                                                         \
        "                service = \"message\";\n"                                                \
        "                transport = \"tcp\";\n"                                                  \
        "                address = \"127.0.0.1\";\n"                                              \
        "                port = 7000;\n"                                                          \
        extra                                                                                     \
        "        }\n"

#define ONE_LISTENER "listeners = (\n" LISTENER_M("") ");\n"

/* A valid udp (or tcp) file listener block, lines 2..9 when the list starts on line 1. */
#define LISTENER_F(transport, extra)                                                              \
        "        {\n"                                                                             \
        "                name = \"f\";\n"                                                         \
        "                service = \"file\";\n"                                                   \
        "                transport = \"" transport "\";\n"                                        \
        "                address = \"127.0.0.1\";\n"                                              \
        "                port = 7000;\n"                                                          \
        "                root = \"/tmp\";\n"                                                      \
        extra                                                                                     \
        "        }\n"

static const struct bad_case bad_cases[] = {
        { "unknown top-level key",
          "bogus = 1;\n" ONE_LISTENER,
          { { 1, "unknown key 'bogus' (expected user, group, limits, log or listeners)" } } },
        { "user: empty",
          "user = \"\";\n" ONE_LISTENER,
          { { 1, "user: length 0 is out of range 1..32" } } },
        { "user: 33 bytes",
          "user = \"abcdefghijklmnopqrstuvwxyz0123456\";\n" ONE_LISTENER,
          { { 1, "user: length 33 is out of range 1..32" } } },
        { "user: a number is not a name",
          "\nuser = \"65534\";\n" ONE_LISTENER,
          { { 2, "user: \"65534\" must start with a letter or '_'" } } },
        { "user: leading dash",
          "user = \"-n\";\n" ONE_LISTENER,
          { { 1, "user: \"-n\" must start with a letter or '_'" } } },
        { "user: space, slash, colon, '$' not at the end",
          "user = \"a b\";\ngroup = \"a/b\";\n" ONE_LISTENER,
          { { 1, "user: \"a b\" may contain only letters, digits, '_', '.', '-' and a final '$'" },
            { 2, "group: \"a/b\" may contain only letters, digits, '_', '.', '-' and a final '$'" } } },
        { "user: control byte, escaped in the report",
          "user = \"a\\nb\";\n" ONE_LISTENER,
          { { 1, "user: \"a\\nb\" may contain only" } } },
        { "user: '$' before the end",
          "user = \"a$b\";\n" ONE_LISTENER,
          { { 1, "user: \"a$b\" may contain only" } } },
        { "user: not a string",
          "user = 65534;\ngroup = [ \"a\" ];\n" ONE_LISTENER,
          { { 1, "user: must be a string, not an integer" },
            { 2, "group: must be a string, not an array" } } },
        { "group without user",
          ONE_LISTENER "group = \"nogroup\";\n",
          { { 10, "group: only applies together with user, which is not set" } } },
        { "user in a group",
          "limits = { user = \"netlab\"; };\n" ONE_LISTENER,
          { { 1, "limits: unknown key 'user'" } } },
        { "unknown key in limits",
          "limits = {\n"
          "        max_kids = 5;\n"
          "};\n" ONE_LISTENER,
          { { 2, "limits: unknown key 'max_kids'" } } },
        { "unknown key in log",
          "log = { colour = \"red\"; };\n" ONE_LISTENER,
          { { 1, "log: unknown key 'colour'" } } },
        { "unknown key in a listener",
          "listeners = (\n" LISTENER_M("                colour = \"red\";\n") ");\n",
          { { 8, "listener 'm': unknown key 'colour' (for service message)" } } },
        { "limits is not a group",
          "limits = 5;\n" ONE_LISTENER,
          { { 1, "limits must be a group { ... }, not an integer" } } },
        { "port is a string",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = \"80\";\n"
          "        }\n"
          ");\n",
          { { 6, "listener 'm': port: must be an integer, not a string" } } },
        { "name is an integer",
          "listeners = (\n"
          "        {\n"
          "                name = 5;\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 80;\n"
          "        }\n"
          ");\n",
          { { 3, "listener: name: must be a string, not an integer" } } },
        { "port 70000",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 70000;\n"
          "        }\n"
          ");\n",
          { { 6, "listener 'm': port: 70000 is out of range 1..65535" } } },
        { "port 0",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 0;\n"
          "        }\n"
          ");\n",
          { { 6, "listener 'm': port: 0 is out of range 1..65535" } } },
        { "max_children 0",
          "limits = {\n"
          "        max_children = 0;\n"
          "};\n" ONE_LISTENER,
          { { 2, "limits: max_children: 0 is out of range 1..65536" } } },
        { "max_children 65537",
          "limits = {\n"
          "        max_children = 65537;\n"
          "};\n" ONE_LISTENER,
          { { 2, "limits: max_children: 65537 is out of range 1..65536" } } },
        { "grace_period -1",
          "limits = {\n"
          "        grace_period = -1;\n"
          "};\n" ONE_LISTENER,
          { { 2, "limits: grace_period: -1 is out of range 0..3600" } } },
        { "header_timeout 0",
          "limits = {\n"
          "        header_timeout = 0;\n"
          "};\n" ONE_LISTENER,
          { { 2, "limits: header_timeout: 0 is out of range 1..3600" } } },
        { "header_timeout 3601",
          "limits = {\n"
          "        header_timeout = 3601;\n"
          "};\n" ONE_LISTENER,
          { { 2, "limits: header_timeout: 3601 is out of range 1..3600" } } },
        { "header_timeout a float",
          "limits = {\n"
          "        header_timeout = 2.5;\n"
          "};\n" ONE_LISTENER,
          { { 2, "limits: header_timeout: must be an integer, not a float" } } },
        { "header_timeout longer than total_timeout",
          "limits = {\n"
          "        total_timeout = 20;\n"
          "        header_timeout = 21;\n"
          "};\n" ONE_LISTENER,
          { { 3, "limits: header_timeout: 21 is longer than total_timeout (20), which ends every "
                 "request first; lower header_timeout or raise total_timeout" } } },
        { "header_timeout longer than the default total_timeout",
          "limits = { header_timeout = 301; };\n" ONE_LISTENER,
          { { 1, "limits: header_timeout: 301 is longer than total_timeout (300), which ends every "
                 "request first; lower header_timeout or raise total_timeout" } } },
        { "header_timeout with a total_timeout out of range: one report",
          "limits = {\n"
          "        header_timeout = 400;\n"
          "        total_timeout = 0;\n"
          "};\n" ONE_LISTENER,
          { { 3, "limits: total_timeout: 0 is out of range 1..604800" } } },
        { "unknown service",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"gopher\";\n"
          "                transport = \"tcp\";\n"
          "                port = 70;\n"
          "        }\n"
          ");\n",
          { { 4, "listener: service: unknown service \"gopher\" (known: message, file, echo, guess)" } } },
        { "message over udp",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"udp\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 2, "listener 'm': service message runs over tcp only, not udp" } } },
        { "transport sctp",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"sctp\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 5, "listener 'm': transport: \"sctp\" is not one of tcp|udp" } } },
        { "address localhost",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                address = \"localhost\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 6, "listener 'm': address: \"localhost\" is not a numeric IPv4 or IPv6 address" } } },
        { "address 1.2.3",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                address = \"1.2.3\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 6, "listener 'm': address: \"1.2.3\" is not a numeric IPv4 or IPv6 address" } } },
        { "bad listener name",
          "listeners = (\n"
          "        {\n"
          "                name = \"a:b\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 3, "listener 'a:b': name: \"a:b\" may contain only letters, digits, '-', '_' and '.'" } } },
        { "duplicate listener name",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 7000;\n"
          "        },\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 7001;\n"
          "        }\n"
          ");\n",
          { { 8, "listener 'm': name already used at line 2" } } },
        { "duplicate endpoint",
          "listeners = (\n"
          "        {\n"
          "                name = \"a\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                address = \"::1\";\n"
          "                port = 7000;\n"
          "        },\n"
          "        {\n"
          "                name = \"b\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                address = \"0:0::1\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 9, "listener 'b': tcp port 7000 on 0:0::1 overlaps listener 'a' on ::1 (line 2)" } } },
        { "dual-stack wildcard overlaps an IPv4 address on the same port",
          "listeners = (\n"
          "        { name = \"a\"; service = \"message\"; transport = \"tcp\"; address = \"::\"; port = 7000; },\n"
          "        { name = \"b\"; service = \"message\"; transport = \"tcp\"; address = \"127.0.0.1\"; port = 7000; }\n"
          ");\n",
          { { 3, "listener 'b': tcp port 7000 on 127.0.0.1 overlaps listener 'a' on :: (line 2)" } } },
        { "IPv4 wildcard overlaps a v4-mapped address on the same port",
          "listeners = (\n"
          "        { name = \"a\"; service = \"message\"; transport = \"tcp\"; address = \"0.0.0.0\"; port = 7000; },\n"
          "        { name = \"b\"; service = \"message\"; transport = \"tcp\"; address = \"::ffff:127.0.0.1\"; port = 7000; }\n"
          ");\n",
          { { 3, "listener 'b': tcp port 7000 on ::ffff:127.0.0.1 overlaps listener 'a' on 0.0.0.0 (line 2)" } } },
        { "a listener that is not a group",
          "listeners = (\n"
          "        5\n"
          ");\n",
          { { 2, "each listener must be a group { ... }, not an integer" } } },
        { "empty name",
          "listeners = (\n"
          "        {\n"
          "                name = \"\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 3, "listener '': name: length 0 is out of range 1..64" } } },
        { "duplicate key (libconfig)",
          "listeners = (\n"
          "        { name = \"a\"; name = \"b\";\n"
          "          service = \"message\"; transport = \"tcp\"; port = 1; }\n"
          ");\n",
          { { 2, "duplicate setting name" } } },
        { "missing name",
          "listeners = (\n"
          "        {\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 7000;\n"
          "        }\n"
          ");\n",
          { { 2, "listener: missing required key 'name'" } } },
        { "missing port",
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "        }\n"
          ");\n",
          { { 2, "listener 'm': missing required key 'port'" } } },
        { "empty listeners list",
          "listeners = (\n"
          ");\n",
          { { 1, "listeners: the list is empty" } } },
        { "empty listeners array",
          "log = { level = \"debug\"; };\n"
          "listeners = [ ];\n",
          { { 2, "listeners: the list is empty" } } },
        { "listeners is a group",
          "listeners = { name = \"m\"; };\n",
          { { 1, "listeners must be a list ( { ... }, ... ), not a group" },
            { 0, "no listeners: add a 'listeners = ( ... );' list" } } },
        { "missing listeners",
          "limits = {\n"
          "        max_children = 5;\n"
          "};\n",
          { { 0, "no listeners: add a 'listeners = ( ... );' list" } } },
        { "empty file",
          "",
          { { 0, "no listeners: add a 'listeners = ( ... );' list" } } },
        { "syntax error",
          "listeners = (\n"
          "        {\n"
          "                name = = \"m\";\n"
          "        }\n"
          ");\n",
          { { 3, "syntax error" } } },
        { "syntax error: two values",
          "limits = {\n"
          "        max_children = 5;\n"
          "        max_per_source = 3 3;\n"
          "};\n" ONE_LISTENER,
          { { 3, "syntax error" } } },
        { "syntax error: unclosed list",
          "log = { level = \"info\"; };\n"
          "listeners = (\n" LISTENER_M(""),
          { { 10, "syntax error" } } }, /* at EOF: the line after the last LF */
        { "reply escape %x",
          "listeners = (\n" LISTENER_M("                reply = \"got %x\";\n") ");\n",
          { { 8, "listener 'm': reply: \"got %x\" has an unknown escape (use %m message, %a address, "
                 "%p port, %t time, %l listener, %% percent)" } } },
        { "reply ends in %",
          "listeners = (\n" LISTENER_M("                reply = \"100%\";\n") ");\n",
          { { 8, "listener 'm': reply: \"100%\" has an unknown escape" } } },
        { "reply can expand beyond NL_REPLY_MAX",
          "listeners = (\n" LISTENER_M("                max_message = 1048576;\n"
                                       "                reply = \"%m%m\";\n") ");\n",
          { { 2, "listener 'm': reply: the template can expand to 2097152 bytes with "
                 "max_message = 1048576, more than the 262144 a reply may have" } } },
        { "reply one byte beyond NL_REPLY_MAX",
          "listeners = (\n" LISTENER_M("                max_message = 262145;\n"
                                       "                reply = \"%m\";\n") ");\n",
          { { 2, "listener 'm': reply: the template can expand to 262145 bytes with "
                 "max_message = 262145, more than the 262144 a reply may have" } } },
        { "max_message 0",
          "listeners = (\n" LISTENER_M("                max_message = 0;\n") ");\n",
          { { 8, "listener 'm': max_message: 0 is out of range 1..1048576" } } },
        { "max_message 1048577",
          "listeners = (\n" LISTENER_M("                max_message = 1048577;\n") ");\n",
          { { 8, "listener 'm': max_message: 1048577 is out of range 1..1048576" } } },
        { "text_settle_ms 10001",
          "listeners = (\n" LISTENER_M("                text_settle_ms = 10001;\n") ");\n",
          { { 8, "listener 'm': text_settle_ms: 10001 is out of range 0..10000" } } },
        { "lab_file on a udp file listener",
          "listeners = (\n" LISTENER_F("udp", "                lab_file = \"a.txt\";\n") ");\n",
          { { 9, "listener 'f': lab_file: only tcp listeners of service file take this key" } } },
        { "a udp key on a tcp file listener",
          "listeners = (\n" LISTENER_F("tcp", "                window_max = 64;\n") ");\n",
          { { 9, "listener 'f': window_max: only udp listeners of service file take this key" } } },
        { "block_size_max 511",
          "listeners = (\n" LISTENER_F("udp", "                block_size_max = 511;\n") ");\n",
          { { 9, "listener 'f': block_size_max: 511 is out of range 512..65464" } } },
        { "block_size_max 65465",
          "listeners = (\n" LISTENER_F("udp", "                block_size_max = 65465;\n") ");\n",
          { { 9, "listener 'f': block_size_max: 65465 is out of range 512..65464" } } },
        { "window_max 15",
          "listeners = (\n" LISTENER_F("udp", "                window_max = 15;\n") ");\n",
          { { 9, "listener 'f': window_max: 15 is out of range 16..65536" } } },
        { "window_max 65537",
          "listeners = (\n" LISTENER_F("udp", "                window_max = 65537;\n") ");\n",
          { { 9, "listener 'f': window_max: 65537 is out of range 16..65536" } } },
        { "max_transfers 0",
          "listeners = (\n" LISTENER_F("udp", "                max_transfers = 0;\n") ");\n",
          { { 9, "listener 'f': max_transfers: 0 is out of range 1..65536" } } },
        { "max_transfers_per_source 65537",
          "listeners = (\n" LISTENER_F("udp", "                max_transfers_per_source = 65537;\n") ");\n",
          { { 9, "listener 'f': max_transfers_per_source: 65537 is out of range 1..65536" } } },
        { "udp file listener without root",
          "listeners = (\n"
          "        { name = \"f\"; service = \"file\"; transport = \"udp\"; port = 7000; }\n"
          ");\n",
          { { 2, "listener 'f': missing required key 'root'" } } },
        { "udp file listener: root is not a directory",
          "listeners = (\n"
          "        { name = \"f\"; service = \"file\"; transport = \"udp\"; port = 7000;\n"
          "          root = \"/dev/null\"; }\n"
          ");\n",
          { { 2, "listener 'f': root: /dev/null: not a directory" } } },
        { "tcp file listener without root",
          "listeners = (\n"
          "        { name = \"f\"; service = \"file\"; transport = \"tcp\"; port = 7000; }\n"
          ");\n",
          { { 2, "listener 'f': missing required key 'root'" } } },
        { "echo over tcp",
          "listeners = (\n"
          "        { name = \"e\"; service = \"echo\"; transport = \"tcp\"; port = 7000; }\n"
          ");\n",
          { { 2, "listener 'e': service echo runs over udp only, not tcp" } } },
        { "udp file and tcp file listeners may share a port number, two udp ones may not",
          "listeners = (\n"
          "        { name = \"a\"; service = \"file\"; transport = \"tcp\"; port = 7000; root = \"/tmp\"; },\n"
          "        { name = \"b\"; service = \"file\"; transport = \"udp\"; port = 7000; root = \"/tmp\"; },\n"
          "        { name = \"c\"; service = \"file\"; transport = \"udp\"; port = 7000; root = \"/tmp\"; }\n"
          ");\n",
          { { 4, "listener 'c': udp port 7000 on :: overlaps listener 'b' on :: (line 3)" } } },
        { "log level loud",
          "log = {\n"
          "        level = \"loud\";\n"
          "};\n" ONE_LISTENER,
          { { 2, "log: level: \"loud\" is not one of debug|info|notice|warning|error" } } },
        { "log target file",
          "log = {\n"
          "        target = \"file\";\n"
          "};\n" ONE_LISTENER,
          { { 2, "log: target: \"file\" is not one of auto|journal|stderr" } } },
        { "several problems, all reported",
          "bogus = 1;\n"
          "limits = {\n"
          "        max_children = 0;\n"
          "};\n"
          "log = { level = \"loud\"; };\n"
          "listeners = (\n"
          "        {\n"
          "                name = \"m\";\n"
          "                service = \"message\";\n"
          "                transport = \"tcp\";\n"
          "                port = 70000;\n"
          "                reply = \"%x\";\n"
          "        }\n"
          ");\n",
          { { 1, "unknown key 'bogus'" },
            { 3, "limits: max_children: 0 is out of range 1..65536" },
            { 5, "log: level: \"loud\" is not one of debug|info|notice|warning|error" },
            { 11, "listener 'm': port: 70000 is out of range 1..65535" },
            { 12, "listener 'm': reply: \"%x\" has an unknown escape" } } },
        { "udp keys on a tcp listener",
          "listeners = (\n"
          LISTENER_M("                rate_per_source = 5;\n"
                     "                blocked_source_ports = [ 7 ];\n")
          ");\n",
          { { 8, "listener 'm': rate_per_source: only udp listeners take this key" },
            { 9, "listener 'm': blocked_source_ports: only udp listeners take this key" } } },
        { "bad blocked ports",
          "listeners = (\n"
          "        { name = \"e\"; service = \"echo\"; transport = \"udp\"; port = 7;\n"
          "          blocked_source_ports = [ 19,\n"
          "                                   0, 65536 ]; },\n"
          "        { name = \"f\"; service = \"echo\"; transport = \"udp\"; port = 8;\n"
          "          blocked_source_ports = 19; }\n"
          ");\n",
          { { 4, "listener 'e': blocked_source_ports: element 2 must be a port from 1 to 65535" },
            { 4, "listener 'e': blocked_source_ports: element 3 must be a port from 1 to 65535" },
            { 6, "listener 'f': blocked_source_ports: must be an array of ports" } } },
        { "guess: person mode without people, min > max",
          "listeners = (\n"
          "        { name = \"g\"; service = \"guess\"; transport = \"udp\"; port = 7;\n"
          "          mode = \"person\"; },\n"
          "        { name = \"h\"; service = \"guess\"; transport = \"udp\"; port = 8;\n"
          "          min = 7; max = 6; }\n"
          ");\n",
          { { 2, "listener 'g': mode \"person\" needs a people list" },
            { 4, "listener 'h': min (7) is larger than max (6)" } } },
        { "guess: bad people",
          "listeners = (\n"
          "        { name = \"g\"; service = \"guess\"; transport = \"udp\"; port = 7; mode = \"person\";\n"
          "          people = ( { name = \"Ada Lovelace\"; hint = \"Engine\"; },\n"
          "                     { name = \"ada lovelace\"; hint = \"Again\"; },\n"
          "                     { name = \"A#B\"; hint = \"x\"; colour = 1; },\n"
          "                     { hint = \"no name\"; aliases = [ \" Padded\" ]; } ); }\n"
          ");\n",
          { { 4, "listener 'g': people: person 2: \"ada lovelace\" matches person 1, \"Ada Lovelace\", too" },
            { 5, "listener 'g': people: person 3: name \"A#B\" contains '#'" },
            { 5, "listener 'g': people: person 3: unknown key 'colour'" },
            { 6, "listener 'g': people: person 4: alias \" Padded\" starts or ends with a space" },
            { 6, "listener 'g': people: person 4: missing required key 'name'" } } },
        { "guess: people in number mode",
          "listeners = (\n"
          "        { name = \"g\"; service = \"guess\"; transport = \"udp\"; port = 7;\n"
          "          people = ( { name = \"Ada\"; hint = \"Engine\"; } ); }\n"
          ");\n",
          { { 2, "listener 'g': people is only for mode = \"person\"" } } },
};

static void test_bad_configs(void)
{
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const struct bad_case *c = &bad_cases[i];
                struct config *cfg = (struct config *) 0x1;
                struct reports rep;
                size_t n_expected = 0;

                while (n_expected < ELEMENTSOF(c->e) && c->e[n_expected].message)
                        n_expected++;

                TEST_CASE("bad config: %s", c->name);
                CHECK_ERR(load_text(c->text, &rep, &cfg), -EINVAL);
                CHECK(cfg == (struct config *) 0x1); /* *ret only written on success */
                CHECK(!rep.wrong_file);
                CHECK_U64(rep.n, n_expected);
                for (size_t k = 0; k < rep.n && k < MAX_REPORTS; k++) {
                        if (k >= n_expected) {
                                test_check(false, __FILE__, __LINE__, "unexpected report %d: %s",
                                           rep.e[k].line, rep.e[k].message);
                                continue;
                        }
                        if (!CHECK_INT(rep.e[k].line, c->e[k].line))
                                fprintf(stderr, "  (report was: %s)\n", rep.e[k].message);
                        CHECK_CONTAINS(rep.e[k].message, c->e[k].message);
                }
        }

        TEST_CASE("nonexistent file");
        struct config *cfg = (struct config *) 0x1;
        struct reports rep = { .expected_file = "/nonexistent/netlab/netlabd.conf" };
        CHECK_ERR(config_load(rep.expected_file, collect, &rep, &cfg), -EINVAL);
        CHECK(cfg == (struct config *) 0x1);
        CHECK(!rep.wrong_file);
        CHECK_U64(rep.n, 1);
        CHECK_INT(rep.e[0].line, 0);
        CHECK_STR(rep.e[0].message, "cannot open: No such file or directory");

        TEST_CASE("no report callback");
        char path[256];
        CHECK(xsnprintf(path, sizeof path, "%s/none.conf", tmpdir) > 0);
        CHECK_ERR(config_load(path, NULL, NULL, &cfg), -EINVAL);
}

/* Load path in a child process, so a load that exits or hangs cannot take
 * the test with it.  Passes if config_load() returned -EINVAL after exactly
 * one report (line 0) within two seconds. */
static void check_load_refused_in_child(const char *path)
{
        fflush(NULL);
        pid_t pid = fork();
        if (!CHECK(pid >= 0))
                return;
        if (pid == 0) {
                struct reports rep = { .expected_file = path };
                struct config *c = NULL;

                alarm(2);
                int r = config_load(path, collect, &rep, &c);
                _exit(r == -EINVAL && rep.n == 1 && rep.e[0].line == 0 && !rep.wrong_file ? 0 : 1);
        }

        int status = 0;
        if (!CHECK(waitpid(pid, &status, 0) == pid))
                return;
        if (WIFSIGNALED(status))
                test_check(false, __FILE__, __LINE__, "config_load(\"%s\") was killed by signal %s%s",
                           path, sigabbrev_np(WTERMSIG(status)),
                           WTERMSIG(status) == SIGALRM ? " (it hung for 2 s)" : "");
        else if (WEXITSTATUS(status) == 1)
                test_check(false, __FILE__, __LINE__,
                           "config_load(\"%s\") did not return -EINVAL with one report at line 0", path);
        else
                test_check(WEXITSTATUS(status) == 0, __FILE__, __LINE__,
                           "config_load(\"%s\") ended the process with exit status %d", path,
                           WEXITSTATUS(status));
}

/* config_load() must refuse anything but a regular file: libconfig's flex
 * scanner exit()s on a directory, and opening a FIFO without O_NONBLOCK
 * blocks (STYLE.md 3).  Each case runs in a forked child with an alarm so a
 * regression shows up as a failure, not as a hung or vanished test run. */
static void test_not_regular_files(void)
{
        char fifo[sizeof tmpdir + 16];

        TEST_CASE("config path is a directory");
        check_load_refused_in_child(tmpdir);

        TEST_CASE("config path is a FIFO");
        if (CHECK(xsnprintf(fifo, sizeof fifo, "%s/fifo", tmpdir) > 0) &&
            CHECK(mkfifo(fifo, 0600) == 0)) {
                check_load_refused_in_child(fifo);
                CHECK(unlink(fifo) == 0);
        }
}

static void check_default_limits(const struct config *c)
{
        CHECK_INT(c->limits.max_children, 256);
        CHECK_INT(c->limits.max_per_source, 16);
        CHECK_INT(c->limits.idle_timeout, 30);
        CHECK_INT(c->limits.header_timeout, 10);
        CHECK_INT(c->limits.total_timeout, 300);
        CHECK_INT(c->limits.grace_period, 10);
}

static void test_example_config(void)
{
        struct config *c = NULL;
        struct reports rep = { .expected_file = SOURCE_ROOT "/conf/netlabd.conf" };

        TEST_CASE("conf/netlabd.conf loads");
        CHECK_ERR(config_load(rep.expected_file, collect, &rep, &c), 0);
        CHECK_U64(rep.n, 0);
        for (size_t k = 0; k < rep.n && k < MAX_REPORTS; k++)
                fprintf(stderr, "  report %d: %s\n", rep.e[k].line, rep.e[k].message);
        if (!c)
                return;

        CHECK_STR(c->path, rep.expected_file);
        CHECK_STR(c->user, "netlab");
        CHECK(c->group == NULL);
        CHECK(c->user_line > 0);
        CHECK_INT(c->group_line, 0);
        check_default_limits(c);
        CHECK_STR(c->log.target, "auto");
        CHECK_STR(c->log.level, "info");
        CHECK_INT(c->log_target, LOG_TARGET_AUTO);
        CHECK_INT(c->log_level, LOG_INFO);
        if (CHECK_U64(c->n_listeners, 7)) {
                const struct listener_config *e = &c->listeners[4], *g = &c->listeners[5];

                CHECK_STR(e->name, "echo");
                CHECK(e->service == service_find("echo", SOCK_DGRAM));
                CHECK_INT(e->socktype, SOCK_DGRAM);
                CHECK_INT(e->port, 8888);
                CHECK_INT(e->dgram.rate_per_source, 100);
                CHECK_INT(e->dgram.burst_per_source, 200);
                CHECK_INT(e->dgram.sources_max, 16384);
                CHECK(port_list_has(&e->dgram.blocked_source_ports, 7));
                CHECK(port_list_has(&e->dgram.blocked_source_ports, 19));
                CHECK(!port_list_has(&e->dgram.blocked_source_ports, 8890));
                CHECK_STR(g->name, "guess");
                CHECK(g->service == service_find("guess", SOCK_DGRAM));
                CHECK_STR(c->listeners[6].name, "guess-people");
        }
        if (c->n_listeners >= 4) {
                const struct listener_config *f = &c->listeners[1], *lab = &c->listeners[3];
                const struct listener_config *fu = &c->listeners[2];

                CHECK_STR(f->name, "files");
                CHECK(f->service == service_find("file", SOCK_STREAM));
                CHECK_INT(f->port, 5001);
                CHECK_STR(fu->name, "files-udp");
                CHECK(fu->service == service_find("file", SOCK_DGRAM));
                CHECK(fu->service != f->service);
                CHECK_INT(fu->socktype, SOCK_DGRAM);
                CHECK_INT(fu->port, 5001);
                if (CHECK(fu->options != NULL)) {
                        const struct file_options *o = fu->options;
                        CHECK_STR(o->root, "/srv/netlab");
                        CHECK(o->lab_file == NULL);
                        CHECK(o->hide_dotfiles);
                        CHECK_INT(o->block_size_max, NL_XFER_BLOCK_MAX);
                        CHECK_INT(o->window_max, 4096);
                        CHECK_INT(o->max_transfers, 64);
                        CHECK_INT(o->max_transfers_per_source, 4);
                }
                CHECK_STR(lab->name, "lab-download");
                CHECK(lab->service == service_find("file", SOCK_STREAM));
                CHECK_INT(lab->port, 5002);
        }
        if (c->n_listeners >= 1) {
                const struct listener_config *l = &c->listeners[0];
                char endpoint[96];

                CHECK_STR(l->name, "message");
                CHECK_STR(l->service_name, "message");
                CHECK(l->service == service_find("message", SOCK_STREAM));
                CHECK_STR(l->transport_name, "tcp");
                CHECK_INT(l->socktype, SOCK_STREAM);
                CHECK_STR(l->address, "::");
                CHECK_INT(l->port, 12345);
                CHECK_INT(l->backlog, 128);
                CHECK_INT(l->sockaddr.ss_family, AF_INET6);
                CHECK_U64(l->sockaddr_len, sizeof(struct sockaddr_in6));
                CHECK_INT(ntohs(((const struct sockaddr_in6 *) &l->sockaddr)->sin6_port), 12345);
                CHECK(l->options != NULL);
                CHECK(config_find_listener(c, "message") == l);
                CHECK(config_find_listener(c, "nope") == NULL);
                config_format_endpoint(l, endpoint, sizeof endpoint);
                CHECK_STR(endpoint, "[::]:12345");
        }
        c = config_free(c);
        CHECK(c == NULL);
        CHECK(config_free(NULL) == NULL);
}

static void test_defaults(void)
{
        struct config *c = NULL;
        struct reports rep;

        /* Nothing but one listener with its required keys. */
        TEST_CASE("defaults of a minimal config");
        CHECK_ERR(load_text("listeners = (\n"
                            "        {\n"
                            "                name = \"m\";\n"
                            "                service = \"message\";\n"
                            "                transport = \"tcp\";\n"
                            "                port = 7000;\n"
                            "        }\n"
                            ");\n",
                            &rep, &c),
                  0);
        CHECK_U64(rep.n, 0);
        if (c) {
                check_default_limits(c);
                CHECK(c->user == NULL);
                CHECK(c->group == NULL);
                CHECK_INT(c->user_line, 0);
                CHECK_INT(c->group_line, 0);
                CHECK_STR(c->log.target, "auto");
                CHECK_STR(c->log.level, "info");
                CHECK_INT(c->log_level, LOG_INFO);
                if (CHECK_U64(c->n_listeners, 1)) {
                        CHECK_STR(c->listeners[0].address, "::");
                        CHECK_INT(c->listeners[0].backlog, 128);
                        CHECK_INT(c->listeners[0].line, 2);
                }
        }
        c = config_free(c);

        TEST_CASE("every limit and log key set, IPv4 listener");
        CHECK_ERR(load_text("limits = { max_children = 1; max_per_source = 65536; idle_timeout = 86400;\n"
                            "           total_timeout = 604800; grace_period = 0; header_timeout = 3600; };\n"
                            "log = { target = \"stderr\"; level = \"debug\"; };\n"
                            "listeners = (\n"
                            "        { name = \"v4\"; service = \"message\"; transport = \"tcp\";\n"
                            "          address = \"127.0.0.1\"; port = 65535; backlog = 1; }\n"
                            ");\n",
                            &rep, &c),
                  0);
        CHECK_U64(rep.n, 0);
        for (size_t k = 0; k < rep.n && k < MAX_REPORTS; k++)
                fprintf(stderr, "  report %d: %s\n", rep.e[k].line, rep.e[k].message);
        if (c) {
                char endpoint[96];

                CHECK_INT(c->limits.max_children, 1);
                CHECK_INT(c->limits.max_per_source, 65536);
                CHECK_INT(c->limits.idle_timeout, 86400);
                CHECK_INT(c->limits.total_timeout, 604800);
                CHECK_INT(c->limits.header_timeout, 3600);
                CHECK_INT(c->limits.grace_period, 0);
                CHECK_INT(c->log_target, LOG_TARGET_STDERR);
                CHECK_INT(c->log_level, LOG_DEBUG);
                if (CHECK_U64(c->n_listeners, 1)) {
                        const struct listener_config *l = &c->listeners[0];

                        CHECK_INT(l->sockaddr.ss_family, AF_INET);
                        CHECK_U64(l->sockaddr_len, sizeof(struct sockaddr_in));
                        CHECK_INT(ntohs(((const struct sockaddr_in *) &l->sockaddr)->sin_port), 65535);
                        CHECK_INT(l->backlog, 1);
                        CHECK_INT(l->line, 5);
                        config_format_endpoint(l, endpoint, sizeof endpoint);
                        CHECK_STR(endpoint, "127.0.0.1:65535");
                }
        }
        c = config_free(c);

        /* How header_timeout and total_timeout combine (conn.c takes the
         * smaller): equal is fine, and a total_timeout below the default
         * header_timeout is fine when header_timeout is not set. */
        static const struct {
                const char *limits;
                int64_t header, total;
        } deadline_cases[] = {
                { "limits = { header_timeout = 1; total_timeout = 1; };\n", 1, 1 },
                { "limits = { header_timeout = 3600; total_timeout = 3600; };\n", 3600, 3600 },
                { "limits = { total_timeout = 5; };\n", 10, 5 },
                { "limits = { header_timeout = 2; total_timeout = 3; };\n", 2, 3 },
        };
        for (size_t i = 0; i < ELEMENTSOF(deadline_cases); i++) {
                char text[512];

                TEST_CASE("header_timeout with total_timeout: %s", deadline_cases[i].limits);
                CHECK(xsnprintf(text, sizeof text, "%s%s", deadline_cases[i].limits, ONE_LISTENER) > 0);
                CHECK_ERR(load_text(text, &rep, &c), 0);
                CHECK_U64(rep.n, 0);
                if (c) {
                        CHECK_INT(c->limits.header_timeout, deadline_cases[i].header);
                        CHECK_INT(c->limits.total_timeout, deadline_cases[i].total);
                }
                c = config_free(c);
        }

        TEST_CASE("user and group: names at the edges of the rules");
        CHECK_ERR(load_text("log = { level = \"debug\"; };\n"
                            "group = \"_G.r-p$\";\n"
                            ONE_LISTENER
                            "user = \"abcdefghijklmnopqrstuvwxyz012345\";\n",
                            &rep, &c),
                  0);
        CHECK_U64(rep.n, 0);
        for (size_t k = 0; k < rep.n && k < MAX_REPORTS; k++)
                fprintf(stderr, "  report %d: %s\n", rep.e[k].line, rep.e[k].message);
        if (c) {
                CHECK_STR(c->user, "abcdefghijklmnopqrstuvwxyz012345");
                CHECK_INT(c->user_line, 12);
                CHECK_STR(c->group, "_G.r-p$");
                CHECK_INT(c->group_line, 2);
        }
        c = config_free(c);

        TEST_CASE("reply of exactly NL_REPLY_MAX bytes at most");
        CHECK_ERR(load_text("listeners = (\n" LISTENER_M("                max_message = 262144;\n"
                                                         "                reply = \"%m\";\n") ");\n",
                            &rep, &c),
                  0);
        CHECK_U64(rep.n, 0);
        c = config_free(c);

        /* The message service's options struct is file-local to svc-message.c,
         * so its defaults are checked through behaviour: with the default
         * max_message (4096), 64 %m expand to exactly NL_REPLY_MAX (allowed)
         * and 65 %m to 4096 more (refused, naming the default). */
        char tmpl[200], text[512];
        for (size_t n_m = 64; n_m <= 65; n_m++) {
                size_t o = 0;

                for (size_t k = 0; k < n_m; k++) {
                        tmpl[o++] = '%';
                        tmpl[o++] = 'm';
                }
                tmpl[o] = '\0';
                TEST_CASE("default max_message through a reply of %zu %%m", n_m);
                CHECK(xsnprintf(text, sizeof text,
                                "listeners = (\n"
                                "        {\n"
                                "                name = \"m\"; service = \"message\";\n"
                                "                transport = \"tcp\";\n"
                                "                port = 7000; reply = \"%s\";\n"
                                "        }\n"
                                ");\n",
                                tmpl) > 0);
                int r = load_text(text, &rep, &c);
                if (n_m * NL_MSG_MAX_DEFAULT <= NL_REPLY_MAX) {
                        CHECK_ERR(r, 0);
                        CHECK_U64(rep.n, 0);
                } else {
                        CHECK_ERR(r, -EINVAL);
                        if (CHECK_U64(rep.n, 1)) {
                                CHECK_INT(rep.e[0].line, 2);
                                CHECK_STR(rep.e[0].message,
                                          "listener 'm': reply: the template can expand to 266240 "
                                          "bytes with max_message = 4096, more than the 262144 a "
                                          "reply may have");
                        }
                }
                c = config_free(c);
        }

        TEST_CASE("defaults of a udp file listener");
        CHECK_ERR(load_text("listeners = (\n" LISTENER_F("udp", "") ");\n", &rep, &c), 0);
        CHECK_U64(rep.n, 0);
        if (c && CHECK_U64(c->n_listeners, 1)) {
                const struct listener_config *l = &c->listeners[0];
                const struct file_options *o = l->options;

                CHECK(l->service == service_find("file", SOCK_DGRAM));
                CHECK(l->service->dgram_reuseport);
                CHECK_INT(l->socktype, SOCK_DGRAM);
                CHECK_INT(l->dgram.rate_per_source, 100);
                if (CHECK(o != NULL)) {
                        CHECK_STR(o->root, "/tmp");
                        CHECK(o->hide_dotfiles);
                        CHECK_STR(o->resolve, "auto");
                        CHECK_INT(o->block_size_max, 65464);
                        CHECK_INT(o->window_max, 4096);
                        CHECK_INT(o->max_transfers, 64);
                        CHECK_INT(o->max_transfers_per_source, 4);
                }
        }
        c = config_free(c);

        TEST_CASE("every udp file key set, with the udp guard's keys");
        CHECK_ERR(load_text("listeners = (\n" LISTENER_F("udp", "                hide_dotfiles = false;\n"
                                                                "                resolve = \"walk\";\n"
                                                                "                block_size_max = 512;\n"
                                                                "                window_max = 65536;\n"
                                                                "                max_transfers = 65536;\n"
                                                                "                max_transfers_per_source = 1;\n"
                                                                "                rate_per_source = 7;\n") ");\n",
                            &rep, &c),
                  0);
        CHECK_U64(rep.n, 0);
        for (size_t k = 0; k < rep.n && k < MAX_REPORTS; k++)
                fprintf(stderr, "  report %d: %s\n", rep.e[k].line, rep.e[k].message);
        if (c && CHECK_U64(c->n_listeners, 1)) {
                const struct file_options *o = c->listeners[0].options;

                CHECK_INT(c->listeners[0].dgram.rate_per_source, 7);
                if (CHECK(o != NULL)) {
                        CHECK(!o->hide_dotfiles);
                        CHECK_INT(o->resolve_mode, FILEROOT_RESOLVE_WALK);
                        CHECK_INT(o->block_size_max, 512);
                        CHECK_INT(o->window_max, 65536);
                        CHECK_INT(o->max_transfers, 65536);
                        CHECK_INT(o->max_transfers_per_source, 1);
                }
        }
        c = config_free(c);

        TEST_CASE("service_find() by name and transport");
        CHECK(service_find("file", SOCK_STREAM) != NULL);
        CHECK(service_find("file", SOCK_DGRAM) != NULL);
        CHECK(service_find("file", SOCK_STREAM) != service_find("file", SOCK_DGRAM));
        CHECK(service_find("file", 0) == service_find("file", SOCK_STREAM));
        CHECK(service_find("echo", SOCK_STREAM) == NULL);
        CHECK(service_find("echo", 0) == service_find("echo", SOCK_DGRAM));
        CHECK(service_find("gopher", 0) == NULL);

        /* The rest of the defaults, as --list-keys prints them from the tables. */
        TEST_CASE("config_list_keys() shows the defaults");
        char *list = NULL;
        size_t list_size = 0;
        FILE *f = open_memstream(&list, &list_size);
        if (CHECK(f)) {
                config_list_keys(f);
                CHECK(fclose(f) == 0);
                /* Top-level keys have no section, and come first. */
                static const char first[] = "user\tstring, default \"\"\t";
                CHECK(strncmp(list, first, strlen(first)) == 0);
                static const char *const want[] = {
                        "\ngroup\tstring, default \"\"\twith user: ",
                        "limits.max_children\tinteger 1..65536, default 256\t",
                        "limits.max_per_source\tinteger 1..65536, default 16\t",
                        "limits.idle_timeout\tinteger 1..86400, default 30\t",
                        "limits.header_timeout\tinteger 1..3600, default 10\t",
                        "limits.total_timeout\tinteger 1..604800, default 300\t",
                        "limits.grace_period\tinteger 0..3600, default 10\t",
                        "log.target\tone of auto|journal|stderr, default \"auto\"\t",
                        "log.level\tone of debug|info|notice|warning|error, default \"info\"\t",
                        "listener.name\trequired string, default \"\"\t",
                        "listener.port\trequired integer 1..65535, default 0\t",
                        "listener.address\tstring, default \"::\"\t",
                        "listener.backlog\tinteger 1..65535, default 128\t",
                        "listener[service=message].reply\t"
                        "string, default \"message received: %m\"\t",
                        "listener[service=message].max_message\tinteger 1..1048576, default 4096\t",
                        "listener[service=message].text_settle_ms\tinteger 0..10000, default 50\t",
                        "listener[service=file,transport=tcp].lab_file\tstring, default \"\"\t",
                        "listener[service=file,transport=udp].root\trequired string, default \"\"\t",
                        "listener[service=file,transport=udp].block_size_max\tinteger 512..65464, "
                        "default 65464\t",
                        "listener[service=file,transport=udp].window_max\tinteger 16..65536, default 4096\t",
                        "listener[service=file,transport=udp].max_transfers\tinteger 1..65536, default 64\t",
                        "listener[service=file,transport=udp].max_transfers_per_source\tinteger 1..65536, "
                        "default 4\t",
                };
                for (size_t k = 0; k < ELEMENTSOF(want); k++)
                        CHECK_CONTAINS(list, want[k]);
        }
        free(list);
}

/* privs_lookup() (daemon/privs.c) on configs naming accounts every Debian
 * system has (base-passwd: root, uid 0; nobody; group root, gid 0) and ones
 * no system has.  Looking up changes no credential, so any user may run it. */
static void test_privs_lookup(void)
{
        static const struct {
                const char *name;
                const char *head;      /* the config's first lines */
                int r;
                int line;
                const char *why;       /* exactly, on failure */
        } cases[] = {
                { "no user", "", -EINVAL, 0, "user: not set" },
                { "unknown user", "user = \"no-such-user-nl\";\n", -ENOENT, 1,
                  "user: no user \"no-such-user-nl\" on this system" },
                { "uid 0", "\nuser = \"root\";\n", -EPERM, 2,
                  "user: \"root\" is uid 0, so netlabd would keep every privilege "
                  "(remove user to run as root on purpose)" },
                { "unknown group", "user = \"nobody\";\n\n\ngroup = \"no-such-group-nl\";\n", -ENOENT, 4,
                  "group: no group \"no-such-group-nl\" on this system" },
                { "user's primary group", "user = \"nobody\";\n", 0, 0, NULL },
                { "another group", "group = \"users\";\nuser = \"nobody\";\n", 0, 0, NULL },
                { "gid 0", "group = \"root\";\nuser = \"nobody\";\n", -EPERM, 1,
                  "group: netlabd would run with group id 0 (root's group); name an unprivileged group" },
        };
        const struct passwd *nobody = getpwnam("nobody");

        TEST_CASE("privs_lookup(): the user nobody exists");
        if (!CHECK(nobody != NULL))
                return;
        uid_t nobody_uid = nobody->pw_uid;
        gid_t nobody_gid = nobody->pw_gid;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct config *c = NULL;
                struct reports rep;
                struct privs_target t = { .uid = 4242 };
                char text[512], why[256] = "";
                int line = -1;

                TEST_CASE("privs_lookup(): %s", cases[i].name);
                if (!CHECK(xsnprintf(text, sizeof text, "%s%s", cases[i].head, ONE_LISTENER) > 0) ||
                    !CHECK_ERR(load_text(text, &rep, &c), 0))
                        continue;
                int r = privs_lookup(c, &t, why, sizeof why, &line);
                CHECK_ERR(r, cases[i].r);
                if (cases[i].why) {
                        CHECK_STR(why, cases[i].why);
                        CHECK_INT(line, cases[i].line);
                        CHECK_INT(t.uid, 4242); /* *ret only written on success */
                } else if (r == 0) {
                        CHECK_STR(t.user, "nobody");
                        CHECK_INT(t.uid, nobody_uid);
                        const struct group *users = getgrnam("users");
                        CHECK_INT(t.gid, strstr(cases[i].head, "group") ? (users ? users->gr_gid : 100u)
                                                                       : nobody_gid);
                }
                c = config_free(c);
        }
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                fprintf(stderr, "mkdtemp(%s): %m\n", tmpdir);
                return EXIT_FAILURE;
        }
        if (xsnprintf(conf_path, sizeof conf_path, "%s/netlabd.conf", tmpdir) < 0)
                return EXIT_FAILURE;

        test_example_config();
        test_defaults();
        test_bad_configs();
        test_not_regular_files();
        test_privs_lookup();

        if (rmdir(tmpdir) < 0)
                test_check(false, __FILE__, __LINE__, "rmdir(%s): %m", tmpdir);
        return test_finish();
}
