/* Unit tests for trace.c: W3C traceparent parsing (valid, every malformed shape the
 * spec names, future versions), X-Ray parsing, and the two output forms. */
#include "fnd/trace.h"

#include "test.h"

#include <errno.h>

static int parse(const char *s, struct trace_context *t)
{
    memset(t, 0, sizeof(*t));
    return trace_parse(slice_from_cstr(s), t);
}

TEST(traceparent_valid)
{
    struct trace_context t;
    ASSERT_EQ(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &t), 0);
    ASSERT_STR_EQ(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    ASSERT_STR_EQ(t.parent_id, "00f067aa0ba902b7");
    ASSERT_EQ(t.flags, 1);
    ASSERT_EQ(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &t), 0);
    ASSERT_EQ(t.flags, 0);
    /* a later version may carry more fields after a dash */
    ASSERT_EQ(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-ever", &t), 0);
    ASSERT_EQ(t.flags, 9);
}

TEST(traceparent_invalid)
{
    struct trace_context t;
    const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",       /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",    /* v00 too long */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      /* zero parent */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      /* upper case */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",      /* not hex */
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",     /* no dash after */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &t) != -EINVAL)
            TEST_FAIL("accepted %s", bad[i]);
}

TEST(xray_round_trip)
{
    struct trace_context t;
    memset(&t, 0, sizeof(t));
    ASSERT_EQ(trace_parse_xray(SLICE_LIT("Root=1-5759e988-bd862e3fe1be46a994272793;"
                                         "Parent=53995c3f42cd8ad8;Sampled=1"), &t), 0);
    ASSERT_STR_EQ(t.trace_id, "5759e988bd862e3fe1be46a994272793");
    ASSERT_STR_EQ(t.parent_id, "53995c3f42cd8ad8");
    ASSERT_EQ(t.flags, 1);
    ASSERT_EQ(trace_parse_xray(SLICE_LIT("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"),
                               &t), 0);
    ASSERT_EQ(t.flags, 0);
    ASSERT_EQ(t.parent_id[0], '\0');
    ASSERT_EQ(trace_parse_xray(SLICE_LIT("Root=2-5759e988-bd862e3fe1be46a994272793"), &t),
              -EINVAL);
    ASSERT_EQ(trace_parse_xray(SLICE_LIT("Parent=53995c3f42cd8ad8"), &t), -EINVAL);
    memcpy(t.span_id, "1122334455667788", 17);
    t.flags = 1;
    char out[TRACE_XRAY_MAX], tp[TRACEPARENT_LEN + 1];
    trace_format_xray(&t, out);
    ASSERT_STR_EQ(out, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=1122334455667788;"
                       "Sampled=1");
    trace_format(&t, tp);
    ASSERT_STR_EQ(tp, "00-5759e988bd862e3fe1be46a994272793-1122334455667788-01");
}

TEST(new_traces_are_valid_and_distinct)
{
    struct trace_context a, b, back;
    trace_new(&a);
    trace_new(&b);
    ASSERT(strcmp(a.trace_id, b.trace_id) != 0);
    ASSERT(strcmp(a.span_id, b.span_id) != 0);
    char tp[TRACEPARENT_LEN + 1];
    trace_format(&a, tp);
    ASSERT_EQ(parse(tp, &back), 0);
    ASSERT_STR_EQ(back.trace_id, a.trace_id);
    ASSERT_STR_EQ(back.parent_id, a.span_id);
}

TEST_MAIN()
