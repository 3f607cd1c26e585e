/*
 * A custom runtime (`provided`) in C: the program is the bundle's `bootstrap`. It loops
 * over Lambda's Runtime API with libcurl, exactly as it would on AWS Lambda:
 *
 *   GET  http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next
 *   POST .../invocation/<request id>/response   (or .../error)
 *
 * The handler wraps the event: {"runtime": "c", "request_id": ..., "event": <event>}.
 * An event holding "fail" is answered with an error instead, to show the error path.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct text {
    char *data;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *data)
{
    struct text *t = data;
    char *p = realloc(t->data, t->len + size * n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + t->len, ptr, size * n);
    t->data = p;
    t->len += size * n;
    t->data[t->len] = '\0';
    return size * n;
}

static size_t on_header(char *line, size_t size, size_t n, void *data)
{
    static const char name[] = "Lambda-Runtime-Aws-Request-Id:";
    char *id = data;
    size_t len = size * n;
    if (len > sizeof(name) && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        size_t start = sizeof(name) - 1, end = len;
        while (start < end && (line[start] == ' ' || line[start] == '\t'))
            start++;
        while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n'))
            end--;
        if (end - start < 64) {
            memcpy(id, line + start, end - start);
            id[end - start] = '\0';
        }
    }
    return len;
}

static int post(CURL *curl, const char *url, const char *body, const char *error_type)
{
    struct curl_slist *headers = NULL;
    char header[160];
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (error_type) {
        snprintf(header, sizeof(header), "Lambda-Runtime-Function-Error-Type: %s", error_type);
        headers = curl_slist_append(headers, header);
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    return rc == CURLE_OK ? 0 : -1;
}

int main(void)
{
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (api == NULL) {
        fprintf(stderr, "AWS_LAMBDA_RUNTIME_API is not set\n");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    char url[512];
    for (;;) {
        struct text event = {NULL, 0};
        char id[64] = "";
        snprintf(url, sizeof(url), "http://%s/2018-06-01/runtime/invocation/next", api);
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &event);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, id);
        if (curl_easy_perform(curl) != CURLE_OK || id[0] == '\0') {
            fprintf(stderr, "could not get the next invocation\n");
            return 1;
        }
        const char *ev = event.data ? event.data : "null";
        fprintf(stderr, "request %s: %zu bytes\n", id, event.len);
        if (strstr(ev, "fail")) {
            snprintf(url, sizeof(url), "http://%s/2018-06-01/runtime/invocation/%s/error", api, id);
            post(curl, url,
                 "{\"errorType\": \"HandlerError\", \"errorMessage\": \"the event asked to fail\"}",
                 "HandlerError");
        } else {
            size_t size = strlen(ev) + strlen(id) + 64;
            char *body = malloc(size);
            if (body == NULL)
                return 1;
            snprintf(body, size, "{\"runtime\": \"c\", \"request_id\": \"%s\", \"event\": %s}", id, ev);
            snprintf(url, sizeof(url), "http://%s/2018-06-01/runtime/invocation/%s/response", api,
                     id);
            post(curl, url, body, NULL);
            free(body);
        }
        free(event.data);
    }
}
