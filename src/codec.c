/*
 * Encodings and digests (include/fnd/codec.h), all from OpenSSL's libcrypto. The
 * base64 decoder is EVP's streaming one, which tolerates line breaks (as
 * `base64` and many clients emit them) and rejects anything else.
 */
#include "fnd/codec.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

int base64_decode(struct buf *out, const char *in, size_t len)
{
    /* Decoded bytes never exceed 3/4 of the input; bound before allocating. */
    size_t most = len / 4 * 3 + 3;
    int rc = buf_reserve(out, most);
    if (rc < 0)
        return rc;
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (ctx == NULL)
        return -ENOMEM;
    EVP_DecodeInit(ctx);
    unsigned char *dst = (unsigned char *)out->data + out->len;
    int n = 0, total = 0;
    rc = 0;
    while (len > 0) {
        /* EVP takes an int length: feed large inputs in pieces. */
        int chunk = len > (1 << 30) ? (1 << 30) : (int)len;
        if (EVP_DecodeUpdate(ctx, dst + total, &n, (const unsigned char *)in, chunk) < 0) {
            rc = -EINVAL;
            break;
        }
        total += n;
        in += chunk;
        len -= (size_t)chunk;
    }
    if (rc == 0 && EVP_DecodeFinal(ctx, dst + total, &n) < 0)
        rc = -EINVAL;
    EVP_ENCODE_CTX_free(ctx);
    if (rc < 0)
        return rc;
    total += n;
    out->len += (size_t)total;
    out->data[out->len] = '\0';
    return 0;
}

int base64_encode(struct buf *out, const void *data, size_t len)
{
    size_t need = (len + 2) / 3 * 4;
    int rc = buf_reserve(out, need);
    if (rc < 0)
        return rc;
    const unsigned char *src = data;
    while (len > 0) {
        /* whole groups of 3 per call so the pieces concatenate into one encoding */
        size_t chunk = len > 3u * (1u << 28) ? 3u * (1u << 28) : len;
        int n = EVP_EncodeBlock((unsigned char *)out->data + out->len, src, (int)chunk);
        out->len += (size_t)n;
        src += chunk;
        len -= chunk;
    }
    out->data[out->len] = '\0';
    return 0;
}

void sha256(const void *data, size_t len, unsigned char digest[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL);
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
    size_t len = 0;
    if (strlen(hex) != 2 * n || OPENSSL_hexstr2buf_ex(out, n, &len, hex, '\0') != 1 || len != n)
        return -EINVAL;
    return 0;
}
