/* lab_server.c: a server that speaks the socket lab's message format byte for
 * byte (BRIEF.md, "Lab wire formats"), written fresh for the test suite.
 *
 * Usage: lab_server PORT REPLY
 *
 * Binds 127.0.0.1:PORT, prints "ready" (flushed) once it listens, accepts ONE
 * connection, does ONE recv() of up to BUFSIZE bytes, prints exactly the bytes
 * received followed by "\n", send()s REPLY with strlen(), closes both sockets
 * and exits.  The reply comes from argv instead of the lab's gets().  An alarm
 * bounds its lifetime so a hung test cannot leave it behind. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSIZE 32
#define MAXPENDING 5
#define LIFETIME_SECONDS 30

int main(int argc, char **argv)
{
        struct sockaddr_in addr, peer;
        socklen_t peer_len = sizeof peer;
        char msg[BUFSIZE];
        char *end = NULL;
        long port;
        int one = 1;
        int server, client;

        if (argc != 3) {
                fprintf(stderr, "usage: %s PORT REPLY\n", argv[0]);
                return 2;
        }
        alarm(LIFETIME_SECONDS);

        port = strtol(argv[1], &end, 10);
        if (!end || *end != '\0' || port < 1 || port > 65535) {
                fprintf(stderr, "lab_server: bad port \"%s\"\n", argv[1]);
                return 2;
        }

        server = socket(PF_INET, SOCK_STREAM, IPPROTO_TCP);
        if (server < 0) {
                perror("lab_server: socket");
                return 1;
        }
        (void) setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);

        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_port = htons((unsigned short) port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(server, (struct sockaddr *) &addr, sizeof addr) < 0) {
                perror("lab_server: bind");
                return 1;
        }
        if (listen(server, MAXPENDING) < 0) {
                perror("lab_server: listen");
                return 1;
        }
        printf("ready\n");
        if (fflush(stdout) != 0)
                return 1;

        client = accept(server, (struct sockaddr *) &peer, &peer_len);
        if (client < 0) {
                perror("lab_server: accept");
                return 1;
        }

        ssize_t got = recv(client, msg, BUFSIZE, 0);
        if (got < 0) {
                perror("lab_server: recv");
                return 1;
        }
        if (got > 0 && fwrite(msg, 1, (size_t) got, stdout) != (size_t) got)
                return 1;
        putchar('\n');
        if (fflush(stdout) != 0)
                return 1;

        size_t len = strlen(argv[2]);
        ssize_t sent = send(client, argv[2], len, MSG_NOSIGNAL);
        if (sent < 0 || (size_t) sent != len) {
                perror("lab_server: send");
                return 1;
        }

        close(server);
        close(client);
        return 0;
}
