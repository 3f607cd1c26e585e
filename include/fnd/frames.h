/*
 * Reassembly and validation of the frames a worker sends (include/fnd/protocol.h), kept
 * apart from worker.c's process and socket handling so that the fuzz driver runs the
 * very code the daemon runs on a malicious worker's bytes.
 */
#ifndef FND_FRAMES_H
#define FND_FRAMES_H

#include "fnd/buf.h"

/* Called for each complete frame; payload is valid during the call only. Returns false
 * to stop consuming (the receiver stopped listening to this worker). */
typedef bool frames_fn(void *data, uint8_t type, uint8_t flags, struct slice payload);

/* Consumes the complete frames at the front of rx in order, calling on_frame for each.
 * Returns 0 when what is left is nothing or the start of a frame whose header was
 * accepted, so rx never holds more than one header plus max_payload bytes of it;
 * -EPROTO at a malformed header (reserved set, flags its type does not have, a type a
 * worker may not send);
 * -EMSGSIZE when a header announces more than max_payload bytes, decided from the
 * header alone before the payload is buffered, with *length the announced size. The
 * offending header stays in rx. */
int frames_consume(struct buf *rx, size_t max_payload, frames_fn *on_frame, void *data,
                   uint32_t *length);

#endif
