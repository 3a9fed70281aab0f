/* xfer-send.h: one UDP transfer, the sending side, in the child the udp file
 * listener forks for a validated REQUEST (svc-file-udp.c, dgram_spawn()).
 * docs/PROTOCOL.md, section 11; /tmp/xfer-design.md. */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include "proto.h"

struct dgram_child;
struct file_options;

/* What the supervisor hands the child.  The packet's pointers (cookie,
 * body) point into the supervisor's receive buffer; the child reads its own
 * copy of that memory, which nothing changes after the fork. */
struct xfer_send_request {
        const struct file_options *o;
        struct sockaddr_storage peer;     /* the client, as the listener saw it */
        socklen_t peer_len;
        struct xfer_packet req;           /* the REQUEST (decoded, cookie valid) */
};

/* Run the transfer: a socket of its own on the listener's port (or an
 * ephemeral one) connected to the client, the FILE_GET checks of the TCP
 * service (svc-file.c), ACCEPT, the data with selective acknowledgements,
 * RFC 6298 retransmission timeout and AIMD (common/xfer.h), END and DONE.
 * Every refusal is sent to the client as an ERROR (or END) with the TCP
 * service's text.  Writes exactly one journal entry; counts payload bytes
 * sent into c->bytes_out and datagram bytes received into c->bytes_in.
 * A dgram_child_fn: userdata is a struct xfer_send_request.
 * Return: 0 when the transfer ended in any orderly way (done, refused,
 * cancelled, timed out); -ENOMEM; another negative errno on a local failure
 * (logged). */
int xfer_send_run(struct dgram_child *c, void *userdata);
