/*
 * Encodings and digests (include/fnd/codec.h), all from nettle: a small library of
 * primitives, where OpenSSL's libcrypto was a third of the idle daemon's RSS. Its
 * base64 decoder skips white space (`base64` and many clients break lines) and
 * rejects anything else.
 */
#include "fnd/codec.h"

#include <errno.h>
#include <nettle/base16.h>
#include <nettle/base64.h>
#include <nettle/sha2.h>
#include <string.h>

int base64_decode(struct buf *out, const char *in, size_t len)
{
    /* Bound before allocating: the decoder may write BASE64_DECODE_LENGTH(len). */
    int rc = buf_reserve(out, BASE64_DECODE_LENGTH(len));
    if (rc < 0)
        return rc;
    struct base64_decode_ctx ctx;
    base64_decode_init(&ctx);
    size_t n = 0;
    if (!base64_decode_update(&ctx, &n, (uint8_t *)out->data + out->len, len, in) ||
        !base64_decode_final(&ctx))
        return -EINVAL;
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

int base64_encode(struct buf *out, const void *data, size_t len)
{
    size_t need = BASE64_ENCODE_RAW_LENGTH(len);
    int rc = buf_reserve(out, need);
    if (rc < 0)
        return rc;
    base64_encode_raw(out->data + out->len, len, data);
    out->len += need;
    out->data[out->len] = '\0';
    return 0;
}

void sha256(const void *data, size_t len, unsigned char digest[32])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
}

void hex_encode(char *out, const unsigned char *bytes, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

int hex_decode(unsigned char *out, size_t n, const char *hex)
{
    /* base16_decode skips white space; a digest in hex has none. */
    size_t len = strlen(hex), got = 0;
    if (len != 2 * n || strspn(hex, "0123456789abcdefABCDEF") != len)
        return -EINVAL;
    struct base16_decode_ctx ctx;
    base16_decode_init(&ctx);
    if (!base16_decode_update(&ctx, &got, out, len, hex) || !base16_decode_final(&ctx) ||
        got != n)
        return -EINVAL;
    return 0;
}
