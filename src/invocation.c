/*
 * Invocation objects and ids (include/fnd/invocation.h). Ids are random version-4
 * UUIDs, like Lambda's request ids, from random_bytes (common.c).
 */
#include "fnd/invocation.h"

#include <stdio.h>
#include <stdlib.h>

static const struct {
    int status;
    const char *word;
} outcomes[] = {
#define INV_OUTCOME_ROW(name, status, word) {status, word},
    INV_OUTCOMES(INV_OUTCOME_ROW)
#undef INV_OUTCOME_ROW
};

int inv_outcome_status(enum inv_outcome o)
{
    return outcomes[o].status;
}

const char *inv_outcome_word(enum inv_outcome o)
{
    return outcomes[o].word;
}

void invocation_new_id(char out[INVOCATION_ID_LEN + 1])
{
    static const char hexdigits[] = "0123456789abcdef";
    unsigned char b[16];
    random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hexdigits[b[i] >> 4];
        out[o++] = hexdigits[b[i] & 15];
    }
    out[o] = '\0';
}

void invocation_init(struct invocation *inv, size_t max_payload)
{
    memset(inv, 0, sizeof(*inv));
    invocation_new_id(inv->id);
    buf_init(&inv->payload, max_payload);
    list_init(&inv->link);
}

void invocation_release(struct invocation *inv)
{
    buf_release(&inv->payload);
    free(inv->trace_id);
    free(inv->client_context);
    inv->trace_id = NULL;
    inv->client_context = NULL;
}
