/* main.c: netlabctl's entry point: global options, INI defaults, and the
 * table of subcommands. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "netlab-config.h"

const char *program_name = "netlabctl";

static const struct command {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} commands[] = {
        { "send", cmd_send, "send one message to a message service and print the reply" },
        { "fetch", cmd_fetch, "download a file from a file service, resumably" },
        { "ls", cmd_ls, "list a directory of a file service" },
        { "echo", cmd_echo, "send datagrams to an echo service; round trips like ping" },
        { "guess", cmd_guess, "play a round of the guessing game" },
};

static void help(void)
{
        printf("Usage: %s [--config=FILE] COMMAND [OPTIONS] [ARGS]\n"
               "\n"
               "Client for netlabd and for servers written like the socket labs.\n"
               "\n"
               "Commands:\n", program_name);
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                printf("  %-8s %s\n", commands[i].name, commands[i].summary);
        printf("\n"
               "Global options (before COMMAND):\n"
               "      --config=FILE      read defaults from FILE only, instead of\n"
               "                         %s/netlab/netlabctl.ini and then\n"
               "                         $XDG_CONFIG_HOME/netlab/netlabctl.ini (or ~/.config/...)\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version\n"
               "Options every command takes (after COMMAND):\n"
               COMMON_OPTIONS_HELP
               "\n"
               "Run '%s COMMAND --help' for a command's options. See netlabctl(1).\n",
               NETLAB_SYSCONFDIR, program_name);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "config", required_argument, NULL, OPT_CONFIG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        const char *config = NULL;
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:hV", options, NULL)) >= 0) {
                switch (c) {
                case OPT_CONFIG:
                        config = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        printf("netlabctl %s\n", NETLAB_VERSION);
                        return EXIT_OK;
                case ':':
                        return usage_error("option %s needs a value", argv[optind - 1]);
                default:
                        return usage_error("unknown option %s before the command (see --help)",
                                           argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return usage_error("no command given (see --help)");

        const char *name = argv[optind];
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
                if (strcmp(commands[i].name, name) != 0)
                        continue;
                if (settings_load(config) < 0)
                        return EXIT_USAGE;
                /* The command parses its own argv, starting at its name. */
                return commands[i].run(argc - optind, argv + optind);
        }
        return usage_error("unknown command \"%s\" (see --help)", name);
}
