/* svc-echo.c: the echo service over UDP (RFC 862; lab exercise "UDP echo").
 *
 * Each datagram goes back unchanged: the reply is the received buffer
 * itself, so echo does no work of its own.  Everything that keeps this from
 * being a reflector (source ports, per-source and total budgets) happens in
 * the guard before we are called (guard.h, dgram.h). */
#include <sys/socket.h>

#include "dgram.h"
#include "proto.h"
#include "service.h"

static ssize_t echo_on_datagram(void *state, struct dgram_ctx *ctx, uint8_t *buf, size_t len, size_t cap)
{
        return (ssize_t) len;
}

const struct service svc_echo = {
        .name = "echo",
        .socktype = SOCK_DGRAM,
        .summary = "UDP echo (RFC 862): every datagram back unchanged",
        .dgram_amplify = 1,
        .dgram_reply_max = NL_UDP_PAYLOAD_MAX,
        .on_datagram = echo_on_datagram,
};
