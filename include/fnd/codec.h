/*
 * Byte encodings and digests used across the daemon, all delegated to nettle:
 * base64 (with and without line breaks), SHA-256, hex.
 */
#ifndef FND_CODEC_H
#define FND_CODEC_H

#include "fnd/buf.h"

/* Decodes standard base64 (padding required, whitespace and newlines ignored) and
 * appends the bytes to out. 0, -EINVAL for malformed input, -E2BIG past out's limit. */
int base64_decode(struct buf *out, const char *in, size_t len);
/* Appends the standard base64 of data (one line, padded) to out. 0 or -E2BIG. */
int base64_encode(struct buf *out, const void *data, size_t len);
/* SHA-256 of data. */
void sha256(const void *data, size_t len, unsigned char digest[32]);
/* Lowercase hex of n bytes into out, which needs 2n+1 bytes. */
void hex_encode(char *out, const unsigned char *bytes, size_t n);
/* Decodes exactly n bytes of hex (no separators) into out. 0 or -EINVAL. */
int hex_decode(unsigned char *out, size_t n, const char *hex);

#endif
