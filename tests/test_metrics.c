/* SPDX-License-Identifier: MIT */
/* Tests of the metrics: types, labels, validation, the text exposition
 * byte for byte, exact concurrent sums, consistent histogram snapshots,
 * summary quantile error, collectors, and the HTTP endpoint. */
#include "test.h"
#include "../src/internal/alloc.h"
#include "../src/metrics/metrics_int.h" /* the registry's kept settings */

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char *text_of(goc_registry *r)
{
    char *t;
    size_t n;
    ASSERT_OK(goc_metrics_text(r, &t, &n));
    ASSERT_EQ(n, strlen(t));
    return t;
}

static void expect_text(goc_registry *r, const char *want)
{
    char *t = text_of(r);
    ASSERT_STR(t, want);
    free(t);
}

static goc_registry *reg(void)
{
    goc_registry *r;
    ASSERT_OK(goc_registry_new(&r));
    return r;
}

static goc_metric *fam(goc_registry *r,
                       int type,
                       const char *name,
                       const char *const *labels,
                       size_t nl)
{
    struct goc_metric_opts o = { .type = type,
                                 .name = name,
                                 .help = "Help.",
                                 .labels = labels,
                                 .nlabels = nl };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    return m;
}

TEST_G(metrics, counter_exposition)
{
    goc_registry *r = reg();
    const char *ls[] = { "method", "code" };
    goc_metric *m = fam(r, GOC_METRIC_COUNTER, "http_requests_total", ls, 2);
    goc_counter *a, *b, *a2;
    ASSERT_OK(goc_counter_with(m, (const char *[]){ "post", "500" }, &b));
    ASSERT_OK(goc_counter_with(m, (const char *[]){ "get", "200" }, &a));
    ASSERT_OK(goc_counter_with(m, (const char *[]){ "get", "200" }, &a2));
    ASSERT(a == a2); /* the same values give the same child */
    goc_counter_inc(a);
    goc_counter_inc(a);
    ASSERT_OK(goc_counter_add(a, 3));
    ASSERT_OK(goc_counter_add(b, 0.5));
    ASSERT(goc_counter_value(a) == 5);
    goc_counter *plain;
    ASSERT_OK(goc_counter_new(r, "jobs_total", "Jobs done.", &plain));
    goc_counter_inc(plain);
    expect_text(r, "# HELP http_requests_total Help.\n"
                   "# TYPE http_requests_total counter\n"
                   "http_requests_total{code=\"200\",method=\"get\"} 5\n"
                   "http_requests_total{code=\"500\",method=\"post\"} 0.5\n"
                   "# HELP jobs_total Jobs done.\n"
                   "# TYPE jobs_total counter\n"
                   "jobs_total 1\n");
    goc_registry_free(r);
}

TEST_G(metrics, gauge_ops_and_tracking)
{
    goc_registry *r = reg();
    goc_gauge *g;
    ASSERT_OK(goc_gauge_new(r, "in_flight", "In flight.", &g));
    goc_gauge_set(g, 10);
    goc_gauge_inc(g);
    goc_gauge_dec(g);
    goc_gauge_dec(g);
    goc_gauge_add(g, 2.5);
    goc_gauge_sub(g, 0.25);
    ASSERT(goc_gauge_value(g) == 11.25);
    struct goc_gauge_extremes ex;
    ASSERT_EQ(goc_gauge_extremes(g, false, &ex), -EINVAL); /* not tracked */
    expect_text(r, "# HELP in_flight In flight.\n# TYPE in_flight gauge\n"
                   "in_flight 11.25\n");
    goc_gauge_set(g, -3);
    expect_text(r, "# HELP in_flight In flight.\n# TYPE in_flight gauge\n"
                   "in_flight -3\n");
    goc_gauge_set_to_current_time(g);
    double now = (double)time(NULL);
    ASSERT(fabs(goc_gauge_value(g) - now) < 5);

    struct goc_metric_opts o = { .type = GOC_METRIC_GAUGE,
                                 .name = "queue_depth",
                                 .help = "Depth.",
                                 .track = true };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    ASSERT_OK(goc_gauge_with(m, NULL, &g));
    ASSERT_OK(goc_gauge_extremes(g, false, &ex));
    ASSERT_EQ(ex.updated, 0);
    goc_gauge_set(g, 5);
    goc_gauge_set(g, 1000); /* a spike */
    goc_gauge_set(g, 7);
    goc_gauge_sub(g, 9);
    ASSERT_OK(goc_gauge_extremes(g, true, &ex));
    ASSERT(ex.value == -2 && ex.min == -2 && ex.max == 1000);
    ASSERT_GT(ex.updated, (int64_t)(now - 5) * 1000000000);
    /* The window restarts: the spike is forgotten (seed defect D-125). */
    goc_gauge_set(g, 3);
    ASSERT_OK(goc_gauge_extremes(g, false, &ex));
    ASSERT(ex.value == 3 && ex.min == -2 && ex.max == 3);
    goc_registry_free(r);
}

TEST_G(metrics, histogram_exposition)
{
    goc_registry *r = reg();
    double b[] = { 1, 2, 5 };
    const char *ls[] = { "path" };
    struct goc_metric_opts o = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "req_seconds",
                                 .help = "Request latency.",
                                 .labels = ls,
                                 .nlabels = 1,
                                 .buckets = b,
                                 .nbuckets = 3 };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    goc_histogram *h;
    ASSERT_OK(goc_histogram_with(m, (const char *[]){ "/a" }, &h));
    goc_histogram_observe(h, 0.5);
    goc_histogram_observe(h, 1); /* bounds are inclusive */
    goc_histogram_observe(h, 1.5);
    goc_histogram_observe(h, 7);
    /* Default buckets, no labels. */
    struct goc_metric_opts d = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "d_seconds",
                                 .help = "Defaults." };
    goc_metric *dm;
    ASSERT_OK(goc_metric_new(r, &d, &dm));
    goc_histogram *dh;
    ASSERT_OK(goc_histogram_with(dm, NULL, &dh));
    goc_histogram_observe(dh, 0.005);
    goc_histogram_observe(dh, 0.3);
    expect_text(r, "# HELP d_seconds Defaults.\n"
                   "# TYPE d_seconds histogram\n"
                   "d_seconds_bucket{le=\"0.005\"} 1\n"
                   "d_seconds_bucket{le=\"0.01\"} 1\n"
                   "d_seconds_bucket{le=\"0.025\"} 1\n"
                   "d_seconds_bucket{le=\"0.05\"} 1\n"
                   "d_seconds_bucket{le=\"0.1\"} 1\n"
                   "d_seconds_bucket{le=\"0.25\"} 1\n"
                   "d_seconds_bucket{le=\"0.5\"} 2\n"
                   "d_seconds_bucket{le=\"1\"} 2\n"
                   "d_seconds_bucket{le=\"2.5\"} 2\n"
                   "d_seconds_bucket{le=\"5\"} 2\n"
                   "d_seconds_bucket{le=\"10\"} 2\n"
                   "d_seconds_bucket{le=\"+Inf\"} 2\n"
                   "d_seconds_sum 0.305\n"
                   "d_seconds_count 2\n"
                   "# HELP req_seconds Request latency.\n"
                   "# TYPE req_seconds histogram\n"
                   "req_seconds_bucket{path=\"/a\",le=\"1\"} 2\n"
                   "req_seconds_bucket{path=\"/a\",le=\"2\"} 3\n"
                   "req_seconds_bucket{path=\"/a\",le=\"5\"} 3\n"
                   "req_seconds_bucket{path=\"/a\",le=\"+Inf\"} 4\n"
                   "req_seconds_sum{path=\"/a\"} 10\n"
                   "req_seconds_count{path=\"/a\"} 4\n");
    uint64_t cum[4];
    struct goc_histogram_snapshot s = { .cumulative = cum };
    ASSERT_EQ(goc_histogram_read(h, &s), 3);
    ASSERT(s.count == 4 && cum[3] == 4 && cum[0] == 2 && s.sum == 10);
    goc_registry_free(r);
}

TEST_G(metrics, summary_exposition)
{
    goc_registry *r = reg();
    struct goc_quantile q[] = { { 0.9, 0.01 }, { 0.5, 0.05 } };
    const char *ls[] = { "op" };
    struct goc_metric_opts o = { .type = GOC_METRIC_SUMMARY,
                                 .name = "rpc_seconds",
                                 .help = "RPC time.",
                                 .labels = ls,
                                 .nlabels = 1,
                                 .objectives = q,
                                 .nobjectives = 2 };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    goc_summary *a, *b;
    ASSERT_OK(goc_summary_with(m, (const char *[]){ "read" }, &a));
    ASSERT_OK(goc_summary_with(m, (const char *[]){ "write" }, &b));
    goc_summary_observe(a, 42);
    goc_summary_observe(a, 42);
    struct goc_metric_opts p = { .type = GOC_METRIC_SUMMARY,
                                 .name = "plain_bytes",
                                 .help = "No quantiles." };
    goc_metric *pm;
    ASSERT_OK(goc_metric_new(r, &p, &pm));
    goc_summary *ps;
    ASSERT_OK(goc_summary_with(pm, NULL, &ps));
    goc_summary_observe(ps, 1.5);
    goc_summary_observe(ps, 2);
    expect_text(r, "# HELP plain_bytes No quantiles.\n"
                   "# TYPE plain_bytes summary\n"
                   "plain_bytes_sum 3.5\n"
                   "plain_bytes_count 2\n"
                   "# HELP rpc_seconds RPC time.\n"
                   "# TYPE rpc_seconds summary\n"
                   "rpc_seconds{op=\"read\",quantile=\"0.5\"} 42\n"
                   "rpc_seconds{op=\"read\",quantile=\"0.9\"} 42\n"
                   "rpc_seconds_sum{op=\"read\"} 84\n"
                   "rpc_seconds_count{op=\"read\"} 2\n"
                   "rpc_seconds{op=\"write\",quantile=\"0.5\"} NaN\n"
                   "rpc_seconds{op=\"write\",quantile=\"0.9\"} NaN\n"
                   "rpc_seconds_sum{op=\"write\"} 0\n"
                   "rpc_seconds_count{op=\"write\"} 0\n");
    double v;
    ASSERT_EQ(goc_summary_quantile(b, 0.5, &v), -ENODATA);
    ASSERT(isnan(v));
    ASSERT_EQ(goc_summary_quantile(a, 0.7, &v), -EINVAL);
    ASSERT_OK(goc_summary_quantile(a, 0.9, &v));
    ASSERT(v == 42);
    double sum;
    ASSERT_EQ(goc_summary_count(a, &sum), 2);
    ASSERT(sum == 84);
    goc_registry_free(r);
}

TEST_G(metrics, escaping)
{
    goc_registry *r = reg();
    struct goc_metric_opts o = {
        .type = GOC_METRIC_GAUGE,
        .name = "esc",
        .help = "A \\ backslash,\na newline and \"quotes\".",
        .labels = (const char *[]){ "v" },
        .nlabels = 1
    };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    goc_gauge *g;
    const char *vals[] = { "back\\slash", "quo\"te", "new\nline", "", "ünï" };
    for (int i = 0; i < 5; i++) {
        ASSERT_OK(goc_gauge_with(m, &vals[i], &g));
        goc_gauge_set(g, i);
    }
    expect_text(r, "# HELP esc A \\\\ backslash,\\na newline and \"quotes\".\n"
                   "# TYPE esc gauge\n"
                   "esc{v=\"\"} 3\n"
                   "esc{v=\"back\\\\slash\"} 0\n"
                   "esc{v=\"new\\nline\"} 2\n"
                   "esc{v=\"quo\\\"te\"} 1\n"
                   "esc{v=\"ünï\"} 4\n");
    goc_registry_free(r);
}

static void expect_fmt(double v, const char *want)
{
    char buf[40];
    int n = goc_format_double(v, buf);
    ASSERT_STR(buf, want);
    ASSERT_EQ(n, strlen(want));
    if (!isnan(v))
        ASSERT(strtod(buf[0] == '+' ? buf + 1 : buf, NULL) == v ||
               (isinf(v) && strstr(buf, "Inf")));
}

TEST(metrics, special_floats)
{
    /* Go's strconv.FormatFloat(v, 'g', -1, 64) for each. */
    expect_fmt(0, "0");
    expect_fmt(-0.0, "-0");
    expect_fmt(1, "1");
    expect_fmt(-1, "-1");
    expect_fmt(0.1, "0.1");
    expect_fmt(0.1 + 0.2, "0.30000000000000004");
    /* Powers of two whose shortest form is not the correctly rounded
     * one at its length. */
    expect_fmt(0x1p-24, "5.960464477539063e-08");
    expect_fmt(0x1p89, "6.189700196426902e+26");
    for (int e = -1074; e <= 1023; e++) { /* every one reads back */
        char buf[40];
        double v = ldexp(1, e);
        goc_format_double(v, buf);
        if (strtod(buf, NULL) != v)
            ASSERT_FAIL("2^%d printed as %s", e, buf);
    }
    expect_fmt(100, "100");
    expect_fmt(123456, "123456");
    expect_fmt(1e6, "1e+06");
    expect_fmt(1234567, "1.234567e+06");
    expect_fmt(123456789, "1.23456789e+08");
    expect_fmt(0.0001, "0.0001");
    expect_fmt(0.00001, "1e-05");
    expect_fmt(1.5e-5, "1.5e-05");
    expect_fmt(2.5, "2.5");
    expect_fmt(1e21, "1e+21");
    expect_fmt(1e100, "1e+100");
    expect_fmt(5e-324, "5e-324");
    expect_fmt(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_fmt(9007199254740993.0, "9.007199254740992e+15");
    expect_fmt(INFINITY, "+Inf");
    expect_fmt(-INFINITY, "-Inf");
    expect_fmt(NAN, "NaN");

    goc_registry *r = reg();
    goc_metric *m = fam(r, GOC_METRIC_GAUGE, "f", (const char *[]){ "k" }, 1);
    const char *k[] = { "a", "b", "c", "d" };
    double v[] = { INFINITY, -INFINITY, NAN, 1e-7 };
    for (int i = 0; i < 4; i++) {
        goc_gauge *g;
        ASSERT_OK(goc_gauge_with(m, &k[i], &g));
        goc_gauge_set(g, v[i]);
    }
    double b[] = { 0.1, 1e6 };
    struct goc_metric_opts o = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "h",
                                 .help = "H.",
                                 .buckets = b,
                                 .nbuckets = 2 };
    goc_metric *hm;
    ASSERT_OK(goc_metric_new(r, &o, &hm));
    goc_histogram *h;
    ASSERT_OK(goc_histogram_with(hm, NULL, &h));
    goc_histogram_observe(h, NAN); /* counts in +Inf, as client_golang */
    expect_text(r, "# HELP f Help.\n# TYPE f gauge\n"
                   "f{k=\"a\"} +Inf\nf{k=\"b\"} -Inf\nf{k=\"c\"} NaN\n"
                   "f{k=\"d\"} 1e-07\n"
                   "# HELP h H.\n# TYPE h histogram\n"
                   "h_bucket{le=\"0.1\"} 0\nh_bucket{le=\"1e+06\"} 0\n"
                   "h_bucket{le=\"+Inf\"} 1\nh_sum NaN\nh_count 1\n");
    goc_registry_free(r);
}

TEST_G(metrics, label_order)
{
    goc_registry *r = reg();
    /* Declared zeta, alpha, mid: written sorted by name, series sorted by
     * their values in that order. */
    const char *ls[] = { "zeta", "alpha", "mid" };
    goc_metric *m = fam(r, GOC_METRIC_COUNTER, "c_total", ls, 3);
    const char *rows[][3] = { { "1", "b", "x" },
                              { "2", "a", "y" },
                              { "0", "b", "" },
                              { "3", "a", "y" } };
    for (int i = 0; i < 4; i++) {
        goc_counter *c;
        ASSERT_OK(goc_counter_with(m, rows[i], &c));
        ASSERT_OK(goc_counter_add(c, i + 1));
    }
    expect_text(r, "# HELP c_total Help.\n# TYPE c_total counter\n"
                   "c_total{alpha=\"a\",mid=\"y\",zeta=\"2\"} 2\n"
                   "c_total{alpha=\"a\",mid=\"y\",zeta=\"3\"} 4\n"
                   "c_total{alpha=\"b\",mid=\"\",zeta=\"0\"} 3\n"
                   "c_total{alpha=\"b\",mid=\"x\",zeta=\"1\"} 1\n");
    goc_registry_free(r);
}

static int try_new(goc_registry *r,
                   int type,
                   const char *name,
                   const char *help,
                   const char *const *labels,
                   size_t nl)
{
    struct goc_metric_opts o = { .type = type,
                                 .name = name,
                                 .help = help,
                                 .labels = labels,
                                 .nlabels = nl };
    goc_metric *m = NULL;
    int err = goc_metric_new(r, &o, &m);
    return err;
}

TEST_G(metrics, validation_changes_nothing)
{
    goc_registry *r = reg();
    goc_metric *m =
        fam(r, GOC_METRIC_COUNTER, "ok_total", (const char *[]){ "a" }, 1);
    goc_counter *c;
    ASSERT_OK(goc_counter_with(m, (const char *[]){ "x" }, &c));
    ASSERT_OK(goc_counter_add(c, 2));
    struct goc_metric_opts h = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "lat",
                                 .help = "L." };
    goc_metric *hm;
    ASSERT_OK(goc_metric_new(r, &h, &hm));
    char *before = text_of(r);

    int C = GOC_METRIC_COUNTER;
    ASSERT_EQ(try_new(r, C, "", "h", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, NULL, "h", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, "1abc", "h", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, "a-b", "h", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, "__reserved", "h", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, "no_help", NULL, NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, "no_help", "", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, "bad_utf8", "\xff", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, 99, "t", "h", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, GOC_METRIC_UNTYPED, "t", "h", NULL, 0), -EINVAL);
    ASSERT_EQ(try_new(r, C, "l", "h", (const char *[]){ "a:b" }, 1), -EINVAL);
    ASSERT_EQ(try_new(r, C, "l", "h", (const char *[]){ "__x" }, 1), -EINVAL);
    ASSERT_EQ(try_new(r, C, "l", "h", (const char *[]){ "9" }, 1), -EINVAL);
    ASSERT_EQ(try_new(r, C, "l", "h", (const char *[]){ "a", "a" }, 2),
              -EINVAL);
    ASSERT_EQ(
        try_new(r, GOC_METRIC_HISTOGRAM, "l", "h", (const char *[]){ "le" }, 1),
        -EINVAL);
    ASSERT_EQ(try_new(r, GOC_METRIC_SUMMARY, "l", "h",
                      (const char *[]){ "quantile" }, 1),
              -EINVAL);
    ASSERT_OK(try_new(r, C, "colon:name_total", "h", (const char *[]){ "le" },
                      1)); /* le is fine on a counter */
    /* Duplicates and sample-name clashes. */
    ASSERT_EQ(try_new(r, GOC_METRIC_GAUGE, "ok_total", "h", NULL, 0), -EEXIST);
    ASSERT_EQ(try_new(r, C, "lat_count", "h", NULL, 0), -EEXIST);
    ASSERT_EQ(try_new(r, GOC_METRIC_GAUGE, "lat_bucket", "h", NULL, 0),
              -EEXIST);
    ASSERT_EQ(try_new(r, GOC_METRIC_SUMMARY, "ok", "h", NULL, 0), 0);
    ASSERT_EQ(try_new(r, GOC_METRIC_SUMMARY, "ok_total_sum", "h", NULL, 0), 0);
    /* Buckets and objectives. */
    double dec[] = { 1, 0.5 }, dup[] = { 1, 1 }, nan[] = { NAN };
    struct goc_metric_opts b = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "bb",
                                 .help = "h",
                                 .buckets = dec,
                                 .nbuckets = 2 };
    ASSERT_EQ(goc_metric_new(r, &b, &hm), -EINVAL);
    b.buckets = dup;
    ASSERT_EQ(goc_metric_new(r, &b, &hm), -EINVAL);
    b.buckets = nan;
    b.nbuckets = 1;
    ASSERT_EQ(goc_metric_new(r, &b, &hm), -EINVAL);
    struct goc_quantile q1[] = { { 1.5, 0.01 } }, q2[] = { { 0.5, 0 } },
                        q3[] = { { 0.5, 0.1 }, { 0.5, 0.01 } };
    struct goc_metric_opts s = { .type = GOC_METRIC_SUMMARY,
                                 .name = "ss",
                                 .help = "h",
                                 .objectives = q1,
                                 .nobjectives = 1 };
    ASSERT_EQ(goc_metric_new(r, &s, &hm), -EINVAL);
    s.objectives = q2;
    ASSERT_EQ(goc_metric_new(r, &s, &hm), -EINVAL);
    s.objectives = q3;
    s.nobjectives = 2;
    ASSERT_EQ(goc_metric_new(r, &s, &hm), -EINVAL);
    s.nobjectives = 0;
    s.max_age = -1;
    ASSERT_EQ(goc_metric_new(r, &s, &hm), -EINVAL);
    struct goc_metric_opts t = {
        .type = C, .name = "tt", .help = "h", .track = true
    };
    ASSERT_EQ(goc_metric_new(r, &t, &hm), -EINVAL); /* track: gauges only */
    /* Children. */
    goc_gauge *g;
    goc_counter *c2;
    ASSERT_EQ(goc_gauge_with(m, (const char *[]){ "x" }, &g), -EINVAL);
    ASSERT_EQ(goc_counter_with(m, NULL, &c2), -EINVAL);
    ASSERT_EQ(goc_counter_with(m, (const char *[]){ NULL }, &c2), -EINVAL);
    ASSERT_EQ(goc_counter_with(m, (const char *[]){ "\xc0\x80" }, &c2),
              -EINVAL);
    ASSERT_EQ(goc_metric_remove(m, (const char *[]){ "nope" }), -ENOENT);
    /* A counter never decreases. */
    ASSERT_EQ(goc_counter_add(c, -1), -EINVAL);
    ASSERT_EQ(goc_counter_add(c, NAN), -EINVAL);
    ASSERT(goc_counter_value(c) == 2);

    /* The exposition is byte for byte what it was (the families that
     * registered have no series yet, so they are not written). */
    char *after = text_of(r);
    ASSERT_STR(after, before);
    free(before);
    free(after);
    goc_registry_free(r);
}

TEST(metrics, bucket_generators)
{
    double b[5];
    ASSERT_EQ(goc_buckets_linear(1, 0.5, 4, b), 4);
    ASSERT(b[0] == 1 && b[1] == 1.5 && b[2] == 2 && b[3] == 2.5);
    ASSERT_EQ(goc_buckets_exponential(0.001, 10, 5, b), 5);
    ASSERT(b[0] == 0.001 && b[4] == 0.001 * 10 * 10 * 10 * 10);
    double keep[5] = { 9, 9, 9, 9, 9 };
    memcpy(b, keep, sizeof b);
    ASSERT_EQ(goc_buckets_linear(1, 0.5, 0, b), -EINVAL);
    ASSERT_EQ(goc_buckets_linear(1, 0, 3, b), -EINVAL);
    ASSERT_EQ(goc_buckets_linear(1, -1, 3, b), -EINVAL);
    ASSERT_EQ(goc_buckets_linear(1e300, 1e308, 5, b), -EINVAL); /* overflow */
    ASSERT_EQ(goc_buckets_linear(1e20, 1, 3, b), -EINVAL); /* no increase */
    ASSERT_EQ(goc_buckets_exponential(0, 2, 3, b), -EINVAL);
    ASSERT_EQ(goc_buckets_exponential(-1, 2, 3, b), -EINVAL);
    ASSERT_EQ(goc_buckets_exponential(1, 1, 3, b), -EINVAL);
    ASSERT_EQ(goc_buckets_exponential(1, 2, 0, b), -EINVAL);
    ASSERT_EQ(goc_buckets_exponential(1e300, 1e10, 3, b), -EINVAL);
    ASSERT_EQ(goc_buckets_exponential(1, NAN, 3, b), -EINVAL);
    ASSERT_EQ(goc_buckets_linear(1, 1, 3, NULL), -EINVAL);
    ASSERT(memcmp(b, keep, sizeof b) == 0); /* untouched on failure */
}

TEST_G(metrics, remove_and_clear)
{
    goc_registry *r = reg();
    goc_metric *m =
        fam(r, GOC_METRIC_GAUGE, "conns", (const char *[]){ "peer" }, 1);
    goc_gauge *g;
    const char *peers[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(goc_gauge_with(m, &peers[i], &g));
        goc_gauge_set(g, i + 1);
    }
    ASSERT_OK(goc_metric_remove(m, &peers[1]));
    ASSERT_EQ(goc_metric_remove(m, &peers[1]), -ENOENT);
    expect_text(r, "# HELP conns Help.\n# TYPE conns gauge\n"
                   "conns{peer=\"a\"} 1\nconns{peer=\"c\"} 3\n");
    ASSERT_OK(goc_gauge_with(m, &peers[1], &g)); /* a fresh child, at 0 */
    ASSERT(goc_gauge_value(g) == 0);
    goc_metric_clear(m);
    expect_text(r, ""); /* a family without series is omitted */
    ASSERT_OK(goc_gauge_with(m, &peers[0], &g));
    goc_gauge_inc(g);
    expect_text(r, "# HELP conns Help.\n# TYPE conns gauge\n"
                   "conns{peer=\"a\"} 1\n");
    ASSERT_OK(goc_metric_unregister(m));
    expect_text(r, "");
    goc_registry_free(r);
}

/* ---- func metrics and collectors ---- */

struct fn_state {
    goc_registry *r;
    goc_metric *self;
    goc_collector *col;
    _Atomic int calls;
    int reentry; /* the unregister-from-inside result */
};

static double read_fn(void *arg)
{
    struct fn_state *s = arg;
    atomic_fetch_add(&s->calls, 1);
    /* Re-entering the registry from the callback must not deadlock. */
    goc_counter *c;
    if (goc_counter_new(s->r, "made_in_callback_total", "Made.", &c) == 0)
        goc_counter_inc(c);
    s->reentry = goc_metric_unregister(s->self);
    return 7.5;
}

static void collect(goc_metric_sink *k, void *arg)
{
    struct fn_state *s = arg;
    atomic_fetch_add(&s->calls, 1);
    ASSERT_OK(
        goc_sink_family(k, "rt_goroutines", "Goroutines.", GOC_METRIC_GAUGE));
    ASSERT_OK(goc_sink_sample(k, (const char *[]){ "state" },
                              (const char *[]){ "waiting" }, 1, 3));
    ASSERT_OK(goc_sink_sample(k, (const char *[]){ "state" },
                              (const char *[]){ "running" }, 1, 2));
    ASSERT_EQ(goc_sink_sample(k, (const char *[]){ "__bad" },
                              (const char *[]){ "x" }, 1, 2),
              -EINVAL);
    ASSERT_OK(goc_sink_family(k, "rt_latency_seconds", "Latency.",
                              GOC_METRIC_HISTOGRAM));
    double b[] = { 0.1, 1 };
    uint64_t cum[] = { 1, 3 };
    ASSERT_OK(goc_sink_histogram(k, NULL, NULL, 0, b, cum, 2, 1.25, 4));
    uint64_t badcum[] = { 3, 1 };
    ASSERT_EQ(goc_sink_histogram(k, NULL, NULL, 0, b, badcum, 2, 1, 4),
              -EINVAL);
    ASSERT_EQ(goc_sink_sample(k, NULL, NULL, 0, 1), -EINVAL); /* histogram */
    /* Clashes with the registered "fn_value": dropped at render. */
    ASSERT_OK(goc_sink_family(k, "fn_value", "Dup.", GOC_METRIC_UNTYPED));
    ASSERT_OK(goc_sink_sample(k, NULL, NULL, 0, 1));
    ASSERT_EQ(goc_sink_family(k, "bad name", "x", GOC_METRIC_GAUGE), -EINVAL);
    ASSERT_EQ(goc_sink_sample(k, NULL, NULL, 0, 1), -EINVAL); /* no family */
    ASSERT_EQ(goc_collector_remove(s->col), -EDEADLK);
}

TEST_G(metrics, func_and_collector)
{
    goc_registry *r = reg();
    struct fn_state s = { .r = r };
    ASSERT_EQ(goc_metric_func(r, GOC_METRIC_HISTOGRAM, "x", "h", read_fn, &s,
                              &s.self),
              -EINVAL);
    ASSERT_EQ(goc_metric_func(r, GOC_METRIC_GAUGE, "x", "h", NULL, &s, &s.self),
              -EINVAL);
    ASSERT_OK(goc_metric_func(r, GOC_METRIC_GAUGE, "fn_value", "Computed.",
                              read_fn, &s, &s.self));
    ASSERT_OK(goc_registry_add_collector(r, collect, &s, &s.col));
    expect_text(r, "# HELP fn_value Computed.\n# TYPE fn_value gauge\n"
                   "fn_value 7.5\n"
                   "# HELP rt_goroutines Goroutines.\n"
                   "# TYPE rt_goroutines gauge\n"
                   "rt_goroutines{state=\"running\"} 2\n"
                   "rt_goroutines{state=\"waiting\"} 3\n"
                   "# HELP rt_latency_seconds Latency.\n"
                   "# TYPE rt_latency_seconds histogram\n"
                   "rt_latency_seconds_bucket{le=\"0.1\"} 1\n"
                   "rt_latency_seconds_bucket{le=\"1\"} 3\n"
                   "rt_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                   "rt_latency_seconds_sum 1.25\n"
                   "rt_latency_seconds_count 4\n");
    ASSERT_EQ(s.reentry, -EDEADLK);
    ASSERT_EQ(atomic_load(&s.calls), 2);
    struct goc_registry_stats st;
    goc_registry_get_stats(r, &st);
    ASSERT_EQ(st.dropped_families, 2); /* bad name, clash */
    ASSERT_EQ(st.dropped_samples, 4);  /* bad label, bad histogram,
                                          histogram as sample, no family */
    /* The callback's own metric shows on the next scrape. */
    char *t = text_of(r);
    ASSERT(strstr(t, "made_in_callback_total 1\n"));
    free(t);
    /* After unregistering, callbacks never run again. */
    ASSERT_OK(goc_collector_remove(s.col));
    ASSERT_OK(goc_metric_unregister(s.self));
    ASSERT_EQ(goc_metric_unregister(s.self = NULL), -EINVAL);
    int calls = atomic_load(&s.calls);
    t = text_of(r);
    ASSERT(!strstr(t, "fn_value") && !strstr(t, "rt_"));
    free(t);
    ASSERT_EQ(atomic_load(&s.calls), calls);
    goc_registry_free(r);
}

/* A collector that is slow, so removal must wait for the scrape. */
static _Atomic int slow_in, slow_out;

static void slow_collect(goc_metric_sink *k, void *arg)
{
    (void)arg;
    atomic_store(&slow_in, 1);
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    goc_sink_family(k, "slow", "Slow.", GOC_METRIC_GAUGE);
    goc_sink_sample(k, NULL, NULL, 0, 1);
    atomic_store(&slow_out, 1);
}

static void scrape_once(void *arg)
{
    char *t = text_of(arg);
    free(t);
}

TEST_G(metrics, remove_waits_for_running_callback)
{
    goc_registry *r = reg();
    goc_collector *c;
    ASSERT_OK(goc_registry_add_collector(r, slow_collect, NULL, &c));
    ASSERT_OK(goc_go(scrape_once, r));
    while (!atomic_load(&slow_in))
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_OK(goc_collector_remove(c));
    ASSERT_EQ(atomic_load(&slow_out), 1); /* it returned before remove did */
    while (goc_num_goroutine() > 1)
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_registry_free(r);
}

/* ---- concurrency ---- */

struct par {
    goc_counter *c;
    goc_histogram *h;
    goc_gauge *g;
    long n;
    goc_wg *wg;
};

static void bump(struct par *p)
{
    for (long i = 0; i < p->n; i++) {
        goc_counter_inc(p->c);
        goc_counter_add(p->c, 2);
        goc_counter_add(p->c, 0.5);
        goc_gauge_inc(p->g);
        goc_histogram_observe(p->h, (double)(i % 4));
        if (i % 1024 == 0)
            goc_yield(); /* move around the Ps */
    }
}

static void bump_g(void *arg)
{
    bump(arg);
    goc_wg_done(((struct par *)arg)->wg);
}

static void *bump_t(void *arg)
{
    bump(arg);
    return NULL;
}

TEST_G(metrics, concurrent_updates_sum_exactly)
{
    goc_registry *r = reg();
    struct par p = { .n = test_scale(200000) };
    ASSERT_OK(goc_counter_new(r, "ops_total", "Ops.", &p.c));
    ASSERT_OK(goc_gauge_new(r, "level", "Level.", &p.g));
    double b[] = { 0, 1, 2 };
    struct goc_metric_opts o = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "v",
                                 .help = "V.",
                                 .buckets = b,
                                 .nbuckets = 3 };
    goc_metric *hm;
    ASSERT_OK(goc_metric_new(r, &o, &hm));
    ASSERT_OK(goc_histogram_with(hm, NULL, &p.h));
    int G = goc_maxprocs() * 4, T = 3;
    goc_wg wg = GOC_WG_INIT;
    p.wg = &wg;
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++)
        ASSERT_OK(goc_go(bump_g, &p));
    pthread_t th[3];
    for (int i = 0; i < T; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, bump_t, &p));
    goc_wg_wait(&wg, NULL);
    for (int i = 0; i < T; i++)
        test_join(th[i], NULL);
    double total = (double)p.n * (G + T);
    ASSERT(goc_counter_value(p.c) == total * 3.5);
    ASSERT(goc_gauge_value(p.g) == total);
    uint64_t cum[4];
    struct goc_histogram_snapshot s = { .cumulative = cum };
    goc_histogram_read(p.h, &s);
    ASSERT(s.count == (uint64_t)total && cum[3] == s.count);
    /* Each of 0, 1, 2, 3 a quarter of the time (p.n is a multiple of 4
     * at every scale used). */
    if (p.n % 4 == 0) {
        ASSERT(cum[0] == s.count / 4 && cum[1] == s.count / 2);
        ASSERT(s.sum == total / 4 * 6);
    }
    goc_registry_free(r);
}

struct scr {
    goc_histogram *h;
    goc_registry *r;
    _Atomic int stop;
    int64_t checks;
};

static void observe_all(struct par *p)
{
    for (long i = 0; i < p->n; i++) {
        goc_histogram_observe(p->h, (double)(i % 3)); /* 0, 1 or 2 */
        if (i % 512 == 0)
            goc_yield();
    }
}

static void observer(void *arg)
{
    observe_all(arg);
    goc_wg_done(((struct par *)arg)->wg);
}

static void *observer_t(void *arg)
{
    observe_all(arg);
    return NULL;
}

/* Parse "name_count N" and "+Inf"} N" out of one exposition. */
static uint64_t after(const char *t, const char *key)
{
    const char *p = strstr(t, key);
    ASSERT(p);
    return strtoull(p + strlen(key), NULL, 10);
}

static void scraper(void *arg)
{
    struct scr *s = arg;
    uint64_t cum[4];
    while (!atomic_load(&s->stop)) {
        struct goc_histogram_snapshot sn = { .cumulative = cum };
        goc_histogram_read(s->h, &sn);
        ASSERT(sn.count == cum[3]);
        /* Values are 0, 1, 2: the sum is exactly cum[1]-cum[0] + 2 *
         * (cum[2]-cum[1]) if buckets and sum describe the same set. */
        ASSERT(sn.sum == (double)(cum[1] - cum[0]) + 2.0 * (cum[2] - cum[1]));
        char *t = text_of(s->r);
        ASSERT_EQ(after(t, "obs_bucket{le=\"+Inf\"} "), after(t, "obs_count "));
        free(t);
        s->checks++;
        goc_yield();
    }
}

TEST_G(metrics, histogram_consistent_while_scraping)
{
    goc_registry *r = reg();
    double b[] = { 0, 1, 2 };
    struct goc_metric_opts o = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "obs",
                                 .help = "Obs.",
                                 .buckets = b,
                                 .nbuckets = 3 };
    goc_metric *hm;
    ASSERT_OK(goc_metric_new(r, &o, &hm));
    struct par p = { .n = test_scale(300000) };
    ASSERT_OK(goc_histogram_with(hm, NULL, &p.h));
    struct scr s = { .h = p.h, .r = r };
    goc_wg wg = GOC_WG_INIT;
    p.wg = &wg;
    int G = goc_maxprocs() * 2;
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++)
        ASSERT_OK(goc_go(observer, &p));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, observer_t, &p));
    ASSERT_OK(goc_go(scraper, &s));
    goc_wg_wait(&wg, NULL);
    test_join(th, NULL);
    atomic_store(&s.stop, 1);
    while (goc_num_goroutine() > 1)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_GT(s.checks, 0);
    uint64_t cum[4];
    struct goc_histogram_snapshot sn = { .cumulative = cum };
    goc_histogram_read(p.h, &sn);
    ASSERT_EQ(sn.count, (uint64_t)p.n * (G + 1));
    goc_registry_free(r);
}

/* ---- summary accuracy ---- */

static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

/* Observe a permutation of 1..n: each value is its own rank. */
static void observe_permutation(goc_summary *s, long n)
{
    uint64_t x = 88172645463325252ull;
    long *perm = malloc((size_t)n * sizeof *perm);
    ASSERT(perm);
    for (long i = 0; i < n; i++)
        perm[i] = i + 1;
    for (long i = n - 1; i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        long j = (long)(x % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (long i = 0; i < n; i++) {
        goc_summary_observe(s, (double)perm[i]);
        if (i % 3000 == 0) { /* reads in between must not disturb it */
            double v;
            goc_summary_quantile(s, 0.5, &v);
        }
    }
    free(perm);
}

/* Each objective's answer is within its rank error (plus one rank). */
static void check_quantiles(goc_summary *s,
                            const struct goc_quantile *q,
                            int nq,
                            long n)
{
    for (int i = 0; i < nq; i++) {
        double v;
        ASSERT_OK(goc_summary_quantile(s, q[i].q, &v));
        double err = fabs(v - q[i].q * n) / n;
        if (err > q[i].eps + 1.0 / n)
            ASSERT_FAIL("q=%g: got %g, rank error %g > %g", q[i].q, v, err,
                        q[i].eps);
    }
}

TEST_G(metrics, summary_quantiles_within_error)
{
    goc_registry *r = reg();
    struct goc_quantile q[] = { { 0.5, 0.05 }, { 0.9, 0.01 }, { 0.99, 0.001 } };
    goc_clock clk = { fake_clock, NULL };
    struct goc_metric_opts o = { .type = GOC_METRIC_SUMMARY,
                                 .name = "lat",
                                 .help = "L.",
                                 .objectives = q,
                                 .nobjectives = 3,
                                 .max_age = 10 * GOC_SECOND,
                                 .age_buckets = 5,
                                 .clock = &clk };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    goc_summary *s;
    ASSERT_OK(goc_summary_with(m, NULL, &s));
    long N = 20000;
    observe_permutation(s, N);
    check_quantiles(s, q, 3, N);
    /* The window: 9 s later the data is still there, at 11 s it is not. */
    fake_now += 9 * GOC_SECOND;
    double v;
    ASSERT_OK(goc_summary_quantile(s, 0.5, &v));
    fake_now += 2 * GOC_SECOND;
    ASSERT_EQ(goc_summary_quantile(s, 0.5, &v), -ENODATA);
    ASSERT_EQ(goc_summary_count(s, NULL), (uint64_t)N); /* lifetime totals */
    goc_summary_observe(s, 5);
    ASSERT_OK(goc_summary_quantile(s, 0.99, &v));
    ASSERT(v == 5);
    goc_registry_free(r);
}

/* The orders a summary's values arrive in. */
enum order { ASCENDING, DESCENDING, RANDOM, SAWTOOTH, NORDERS };

/* 1..n in @o, so that each value is its own rank. The sawtooth's teeth
 * are 1000 values long, each rising through the whole range. */
static long *values_in_order(enum order o, long n)
{
    long *v = malloc((size_t)n * sizeof *v);
    ASSERT(v);
    uint64_t x = 88172645463325252ull;
    long teeth = n / 1000 > 0 ? n / 1000 : 1, tooth = n / teeth;
    for (long i = 0; i < n; i++)
        v[i] = o == DESCENDING ? n - i
               : o == SAWTOOTH ? (i % tooth) * teeth + i / tooth + 1
                               : i + 1;
    for (long i = n - 1; o == RANDOM && i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        long j = (long)(x % (uint64_t)(i + 1)), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return v;
}

static goc_summary *summary_of(goc_registry *r,
                               const struct goc_quantile *q,
                               size_t nq)
{
    static goc_clock clk = { fake_clock, NULL }; /* one window throughout */
    struct goc_metric_opts o = { .type = GOC_METRIC_SUMMARY,
                                 .name = "lat",
                                 .help = "L.",
                                 .objectives = q,
                                 .nobjectives = nq,
                                 .age_buckets = 1,
                                 .clock = &clk };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    goc_summary *s;
    ASSERT_OK(goc_summary_with(m, NULL, &s));
    return s;
}

/* The minimum and maximum as objectives are exact: the stream keeps
 * both. The minimum was merged into the samples above it, up to 2 eps n
 * ranks (8000 of 100000 ascending values for eps = 0.05). */
TEST_G(metrics, summary_minimum_and_maximum_are_exact)
{
    const double eps[] = { 0.05, 0.01, 0.001 };
    long n = test_scale(100000);
    for (int o = 0; o < NORDERS; o++) {
        long *v = values_in_order((enum order)o, n);
        for (int k = 0; k < 3; k++) {
            goc_registry *r = reg();
            struct goc_quantile q[] = { { 0, eps[k] }, { 1, eps[k] } };
            goc_summary *s = summary_of(r, q, 2);
            for (long i = 0; i < n; i++)
                goc_summary_observe(s, (double)v[i]);
            double lo, hi;
            ASSERT_OK(goc_summary_quantile(s, 0, &lo));
            ASSERT_OK(goc_summary_quantile(s, 1, &hi));
            if (lo != 1 || hi != (double)n)
                ASSERT_FAIL("order %d eps %g: min %g max %g", o, eps[k], lo,
                            hi);
            goc_registry_free(r);
        }
        free(v);
    }
}

/* Every objective within its eps, whatever the order. CKMS as perks has
 * it let the rank fall below q n by up to e / (1 - 2e / (1 - q)) n on
 * descending input (0.0625 n for the median at eps 0.05). */
TEST_G(metrics, summary_quantiles_within_error_in_any_order)
{
    static const struct goc_quantile sets[][3] = {
        { { 0.5, 0.05 }, { 0.9, 0.01 }, { 0.99, 0.001 } },
        { { 0.1, 0.01 } },
        { { 0.01, 0.001 } },
        { { 0.25, 0.02 }, { 0.75, 0.02 } },
        { { 0, 0.01 }, { 0.5, 0.01 }, { 1, 0.001 } },
    };
    static const size_t nq[] = { 3, 1, 1, 2, 3 };
    long n = test_scale(100000);
    for (int o = 0; o < NORDERS; o++) {
        long *v = values_in_order((enum order)o, n);
        for (size_t k = 0; k < sizeof nq / sizeof nq[0]; k++) {
            goc_registry *r = reg();
            goc_summary *s = summary_of(r, sets[k], nq[k]);
            for (long i = 0; i < n; i++)
                goc_summary_observe(s, (double)v[i]);
            for (size_t i = 0; i < nq[k]; i++) {
                double x, want = sets[k][i].q * (double)n;
                ASSERT_OK(goc_summary_quantile(s, sets[k][i].q, &x));
                if (fabs(x - want) > sets[k][i].eps * (double)n + 1)
                    ASSERT_FAIL("order %d, q=%g: rank %g, error %g > %g", o,
                                sets[k][i].q, x, fabs(x - want) / (double)n,
                                sets[k][i].eps);
            }
            goc_registry_free(r);
        }
        free(v);
    }
}

/* A million observations keep a few dozen samples per objective, O((1/eps)
 * log(eps n)); perks' deltas kept 24773 of 10^6 descending values. */
TEST_G(metrics, summary_memory_stays_small)
{
    struct goc_quantile q[] = { { 0.5, 0.05 }, { 0.9, 0.01 }, { 0.99, 0.001 } };
    long n = test_scale(1000000);
    for (int o = 0; o < NORDERS; o++) {
        long *v = values_in_order((enum order)o, n);
        goc_registry *r = reg();
        goc_summary *s = summary_of(r, q, 3);
        struct qwindow *w = ((struct child *)(void *)s)->q;
        size_t most = 0;
        for (long i = 0; i < n; i++) {
            goc_summary_observe(s, (double)v[i]);
            if (i % 5000 == 0) {
                size_t k = goc__qwindow_samples(w);
                most = k > most ? k : most;
            }
        }
        if (most > 300)
            ASSERT_FAIL("order %d: %zu samples", o, most);
        check_quantiles(s, q, 3, n);
        goc_registry_free(r);
        free(v);
    }
}

/* A summary on the fake clock: the window of max_age in age_buckets. */
static goc_summary *clocked_summary(goc_registry *r,
                                    const char *name,
                                    int64_t max_age,
                                    int age_buckets)
{
    static struct goc_quantile q[] = { { 0.5, 0.05 } };
    static goc_clock clk = { fake_clock, NULL };
    struct goc_metric_opts o = { .type = GOC_METRIC_SUMMARY,
                                 .name = name,
                                 .help = "L.",
                                 .objectives = q,
                                 .nobjectives = 1,
                                 .max_age = max_age,
                                 .age_buckets = age_buckets,
                                 .clock = &clk };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    goc_summary *s;
    ASSERT_OK(goc_summary_with(m, NULL, &s));
    return s;
}

/* Observe 1..1000, @step ns apart, then expect their median. */
static void expect_median_kept(goc_summary *s, int64_t step)
{
    for (int i = 1; i <= 1000; i++) {
        goc_summary_observe(s, i);
        fake_now += step;
    }
    double v;
    ASSERT_OK(goc_summary_quantile(s, 0.5, &v));
    if (fabs(v - 500) > 51)
        ASSERT_FAIL("median %g", v);
}

/* The longest window: the end of a period, now + max_age / age_buckets,
 * overflowed and every observation looked expired. Now it saturates: a
 * period that would end past INT64_MAX never ends. */
TEST_G(metrics, summary_longest_max_age_keeps_observations)
{
    goc_registry *r = reg();
    fake_now = GOC_SECOND;
    expect_median_kept(clocked_summary(r, "one", INT64_MAX, 1), 1000);
    /* Two buckets: the first period ends; the next end lies past the
     * clock's range, so the stream that then answers keeps everything. */
    fake_now = GOC_SECOND;
    goc_summary *s = clocked_summary(r, "two", INT64_MAX, 2);
    expect_median_kept(s, INT64_MAX / 2000 + 1);
    goc_summary_observe(s, 500);
    fake_now = INT64_MAX - 1;
    double v;
    ASSERT_OK(goc_summary_quantile(s, 0.5, &v));
    ASSERT(fabs(v - 500) <= 51);
    goc_registry_free(r);
}

/* ---- writers ---- */

TEST_G(metrics, write_fd_file_and_default_registry)
{
    goc_counter *c;
    ASSERT_OK(goc_counter_new(NULL, "default_total", "In the default.", &c));
    goc_counter_inc(c);
    const char *want = "# HELP default_total In the default.\n"
                       "# TYPE default_total counter\ndefault_total 1\n";
    expect_text(NULL, want);
    expect_text(goc_registry_default(), want);
    int fds[2];
    ASSERT_OK(pipe(fds));
    ASSERT_OK(goc_metrics_write_fd(NULL, fds[1]));
    char buf[256] = { 0 };
    ASSERT_EQ(read(fds[0], buf, sizeof buf - 1), strlen(want));
    ASSERT_STR(buf, want);
    FILE *f = tmpfile();
    ASSERT(f);
    ASSERT_OK(goc_metrics_write_file(NULL, f));
    rewind(f);
    memset(buf, 0, sizeof buf);
    ASSERT_EQ(fread(buf, 1, sizeof buf - 1, f), strlen(want));
    ASSERT_STR(buf, want);
    fclose(f);
    close(fds[0]);
    close(fds[1]);
    ASSERT_EQ(goc_metrics_write_fd(NULL, -1), -EINVAL);
    ASSERT_EQ(goc_metrics_text(NULL, NULL, NULL), -EINVAL);
    goc_registry_free(goc_registry_default()); /* ignored */
    expect_text(NULL, want);
}

/* ---- HTTP ---- */

struct resp {
    int status;
    char head[1024];
    char body[8192];
    size_t blen;
};

/* Read one response (head, then Content-Length bytes) from c. */
static int read_resp(goc_fd *c, struct resp *r, bool head_only)
{
    size_t n = 0;
    char *end = NULL;
    memset(r, 0, sizeof *r);
    while (!end) {
        ssize_t k = goc_fd_read(c, r->head + n, 1, NULL); /* byte by byte:
                                                           * no over-read */
        if (k <= 0)
            return (int)(k ? k : -EPIPE);
        n += (size_t)k;
        r->head[n] = '\0';
        end = strstr(r->head, "\r\n\r\n");
    }
    ASSERT_EQ(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    const char *cl = strstr(r->head, "Content-Length: ");
    ASSERT(cl);
    size_t len = (size_t)atol(cl + 16);
    ASSERT_LT(len, sizeof r->body);
    r->blen = len;
    if (!head_only && len)
        ASSERT_EQ(goc_fd_read_full(c, r->body, len, NULL), (ssize_t)len);
    return 0;
}

static void send_req(goc_fd *c, const char *req)
{
    ASSERT_EQ(goc_fd_write(c, req, strlen(req), NULL), (ssize_t)strlen(req));
}

/*
 * recv(2) of one byte without waiting: n, or -errno. errno is read here,
 * in a frame that never parks: a goroutine may resume on another thread,
 * and a compiler keeps errno's (thread-local) address across a loop that
 * sleeps, so the caller reading it would read the old thread's.
 */
static __attribute__((noinline)) ssize_t recv_now(goc_fd *c, int flags)
{
    char b;
    ssize_t n = recv(goc_fd_num(c), &b, 1, MSG_DONTWAIT | flags);
    return n >= 0 ? n : -errno;
}

/*
 * Has the server closed c? Asked of the socket directly, without
 * parking: goc_fd_read() after a read that drained the socket waits for
 * a new readiness event, and an end or reset that raised its event before
 * that read never raises another (see the report on netpoll).
 */
static bool closed_by_peer(goc_fd *c)
{
    for (int i = 0; i < 5000; i++) {
        ssize_t n = recv_now(c, 0);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != -EWOULDBLOCK))
            return true;
        if (n > 0)
            return false;
        goc_sleep(GOC_MILLISECOND, NULL);
    }
    return false;
}

TEST_G(metrics, http_scrape_over_tcp)
{
    goc_registry *r = reg();
    goc_counter *c;
    ASSERT_OK(goc_counter_new(r, "scrapes_total", "Scrapes.", &c));
    goc_counter_add(c, 41);
    goc_server *srv;
    ASSERT_EQ(goc_metrics_serve(r, NULL, NULL, &srv), -EINVAL);
    ASSERT_OK(goc_metrics_serve(r, "127.0.0.1:0", NULL, &srv));
    char addr[GOC_ADDRSTRLEN];
    ASSERT_GT(goc_server_addr(srv, addr, sizeof addr), 0);
    ASSERT(strcmp(addr, "127.0.0.1:0") != 0); /* a real port was bound */

    goc_fd *k;
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    struct resp rs;
    send_req(k, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT(strncmp(rs.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ASSERT(strstr(rs.head, "\r\nContent-Type: text/plain; version=0.0.4; "
                           "charset=utf-8\r\n"));
    ASSERT(!strstr(rs.head, "Connection: close"));
    char *want = text_of(r);
    ASSERT_EQ(rs.blen, strlen(want));
    ASSERT(memcmp(rs.body, want, rs.blen) == 0);
    free(want);
    /* Keep-alive: the same connection serves the next requests, even
     * pipelined in one write. */
    goc_counter_inc(c);
    send_req(k, "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 200);
    ASSERT(strstr(rs.body, "scrapes_total 42\n"));
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 404);
    ASSERT_STR(rs.body, "404 page not found\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 405);
    ASSERT(strstr(rs.head, "\r\nAllow: GET, HEAD\r\n"));
    ASSERT_OK(read_resp(k, &rs, true));
    ASSERT_EQ(rs.status, 200);
    ASSERT_GT(rs.blen, 0);
    /* Connection: close is honoured. */
    send_req(k,
             "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 200);
    ASSERT(strstr(rs.head, "Connection: close\r\n"));
    ASSERT(closed_by_peer(k));
    goc_fd_close(k);
    /* HTTP/1.0 closes by default. */
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    send_req(k, "GET /metrics HTTP/1.0\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 200);
    ASSERT(closed_by_peer(k));
    goc_fd_close(k);
    goc_server_shutdown(srv, NULL);
    goc_server_free(srv);
    goc_registry_free(r);
}

TEST_G(metrics, http_bad_requests)
{
    goc_registry *r = reg();
    struct goc_metrics_http_opts o = { .max_request = 256 };
    goc_server *srv;
    struct goc_metrics_http_opts bad = { .max_request = 10 };
    ASSERT_EQ(goc_metrics_serve(r, "127.0.0.1:0", &bad, &srv), -EINVAL);
    /* A limit no buffer could hold was taken, and every connection was
     * then closed unanswered. */
    bad.max_request = SIZE_MAX / 2;
    ASSERT_EQ(goc_metrics_serve(r, "127.0.0.1:0", &bad, &srv), -EINVAL);
    bad.max_request = GOC_METRICS_MAX_REQUEST + 1;
    ASSERT_EQ(goc_metrics_serve(r, "127.0.0.1:0", &bad, &srv), -EINVAL);
    ASSERT_OK(goc_metrics_serve(r, "127.0.0.1:0", &o, &srv));
    char addr[GOC_ADDRSTRLEN];
    goc_server_addr(srv, addr, sizeof addr);
    goc_fd *k;
    struct resp rs;
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    send_req(k, "NONSENSE\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 400);
    ASSERT(closed_by_peer(k));
    goc_fd_close(k);
    /* A head over the limit: 431, then the connection ends. */
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    char big[600];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX: ", 35);
    big[sizeof big - 1] = '\0';
    send_req(k, big);
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 431);
    ASSERT(closed_by_peer(k));
    goc_fd_close(k);
    /* A body: answered, then closed. */
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    send_req(
        k, "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 405);
    ASSERT(strstr(rs.head, "Connection: close\r\n"));
    goc_fd_close(k);
    ASSERT_OK(goc_server_shutdown(srv, NULL));
    goc_server_free(srv);
    goc_registry_free(r);
}

/* A server of r on a free port; its address in addr. */
static goc_server *serve(goc_registry *r, char *addr)
{
    goc_server *srv;
    ASSERT_OK(goc_metrics_serve(r, "127.0.0.1:0", NULL, &srv));
    ASSERT_GT(goc_server_addr(srv, addr, GOC_ADDRSTRLEN), 0);
    return srv;
}

/*
 * Heads a proxy in front might read otherwise than the server (a length
 * with junk after it, a blank before a field's colon, a bare CR, two
 * lengths) are refused with 400 and the connection ends: the body after
 * them is never taken for a request of its own.
 */
/* Each head gets @status and a closed connection: what follows it (a
 * request of its own here) is never served. */
static void expect_answer_then_close(const char *const *heads,
                                     size_t n,
                                     int status)
{
    goc_registry *r = reg();
    char addr[GOC_ADDRSTRLEN];
    goc_server *srv = serve(r, addr);
    for (size_t i = 0; i < n; i++) {
        goc_fd *k;
        struct resp rs;
        ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
        send_req(k, heads[i]);
        send_req(k, "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
        ASSERT_OK(read_resp(k, &rs, false));
        if (rs.status != status)
            ASSERT_FAIL("head %zu: status %d", i, rs.status);
        ASSERT(closed_by_peer(k));
        goc_fd_close(k);
    }
    ASSERT_OK(goc_server_shutdown(srv, NULL));
    goc_server_free(srv);
    goc_registry_free(r);
}

static void expect_refused_heads(const char *const *heads, size_t n)
{
    expect_answer_then_close(heads, n, 400);
}

TEST_G(metrics, http_ambiguous_heads_are_refused)
{
    static const char two_lengths[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                      "Content-Length: 0\r\n"
                                      "Content-Length: 26\r\n\r\n";
    const char *heads[] = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0 26\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length : 26\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
        two_lengths,
        "GET /metrics HTTP/1.1\rX: y\r\n\r\n",
    };
    expect_refused_heads(heads, sizeof heads / sizeof heads[0]);
}

/* A bare LF inside a head was kept in a header's value: "X: y\n
 * Content-Length: 26" hid the length from us but not from a proxy that
 * ends lines at LF, and the body was served as a request of its own. */
TEST_G(metrics, http_bare_lf_in_a_head_is_refused)
{
    const char *heads[] = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX: y\nContent-Length: 26\r\n\r\n",
        "GET /metrics\n HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    expect_refused_heads(heads, sizeof heads / sizeof heads[0]);
}

/* An HTTP/1.1 request without a Host line, or with two, was served. */
TEST_G(metrics, http_host_is_required_once)
{
    const char *heads[] = {
        "GET /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        "GET /metrics HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    };
    expect_refused_heads(heads, sizeof heads / sizeof heads[0]);
    /* HTTP/1.0 may leave it out (and closes after the answer). */
    const char *http10 = "GET /metrics HTTP/1.0\r\n\r\n";
    expect_answer_then_close(&http10, 1, 200);
}

/* A counter's whole adds went to an integer that wrapped at 2^64: the
 * counter fell back to zero. */
TEST_G(metrics, counter_never_falls_past_two_to_the_64)
{
    goc_registry *r = reg();
    goc_counter *c;
    ASSERT_OK(goc_counter_new(r, "big_total", "Big.", &c));
    const double step = 9007199254740992.0; /* 2^53: the integer path */
    double before = 0;
    for (int i = 0; i < 4096; i++) {
        ASSERT_OK(goc_counter_add(c, step));
        goc_counter_inc(c);
        double v = goc_counter_value(c);
        if (v < before)
            ASSERT_FAIL("fell after %d adds: %.17g -> %.17g", i + 1, before, v);
        before = v;
    }
    ASSERT(before > 3.6e19); /* 4096 * 2^53 */
    goc_registry_free(r);
}

/* HTTP/1.0 with "Connection: keep-alive" is kept, and told so: without
 * the header an HTTP/1.0 client must assume the close. */
TEST_G(metrics, http10_keep_alive_is_said)
{
    goc_registry *r = reg();
    char addr[GOC_ADDRSTRLEN];
    goc_server *srv = serve(r, addr);
    goc_fd *k;
    struct resp rs;
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    for (int i = 0; i < 2; i++) {
        send_req(k, "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        ASSERT_OK(read_resp(k, &rs, false));
        ASSERT_EQ(rs.status, 200);
        ASSERT(strstr(rs.head, "\r\nConnection: keep-alive\r\n"));
    }
    goc_fd_close(k);
    ASSERT_OK(goc_server_shutdown(srv, NULL));
    goc_server_free(srv);
    goc_registry_free(r);
}

struct stopper {
    goc_server *srv;
    _Atomic int done;
};

static void stop_server(void *arg)
{
    struct stopper *st = arg;
    ASSERT_OK(goc_server_shutdown(st->srv, NULL));
    atomic_store(&st->done, 1);
}

/*
 * A client that always leaves its next request half-sent in the buffer
 * never waits idle in goc_conn_read_request(): the shutdown used to wait
 * for it as long as it kept going. Now the first response after the
 * shutdown began says "Connection: close", and the connection ends.
 */
TEST_G(metrics, http_pipelining_client_cannot_hold_a_shutdown)
{
    goc_registry *r = reg();
    char addr[GOC_ADDRSTRLEN];
    goc_server *srv = serve(r, addr);
    goc_fd *k;
    struct resp rs;
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    send_req(k, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /met");
    ASSERT_OK(read_resp(k, &rs, false));
    static struct stopper st;
    st = (struct stopper){ .srv = srv };
    ASSERT_OK(goc_go(stop_server, &st));
    bool told = false;
    for (int i = 0; i < 200 && !told; i++) {
        goc_sleep(GOC_MILLISECOND, NULL);
        send_req(k, "rics HTTP/1.1\r\nHost: x\r\n\r\nGET /met");
        if (read_resp(k, &rs, false) != 0)
            break;
        told = strstr(rs.head, "Connection: close\r\n") != NULL;
    }
    ASSERT(told);
    ASSERT(closed_by_peer(k));
    for (int i = 0; i < 5000 && !atomic_load(&st.done); i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    int stopped = atomic_load(&st.done);
    ASSERT_EQ(stopped, 1);
    goc_fd_close(k);
    goc_server_free(srv);
    goc_registry_free(r);
}

TEST_G(metrics, http_shutdown_closes_idle_and_refuses)
{
    goc_registry *r = reg();
    goc_gauge *g;
    ASSERT_OK(goc_gauge_new(r, "up", "Up.", &g));
    goc_gauge_set(g, 1);
    goc_server *srv;
    ASSERT_OK(goc_metrics_serve(r, "127.0.0.1:0", NULL, &srv));
    char addr[GOC_ADDRSTRLEN];
    goc_server_addr(srv, addr, sizeof addr);
    goc_shutdown *m;
    ASSERT_OK(goc_shutdown_new(NULL, &m));
    ASSERT_OK(goc_shutdown_add_server(m, "metrics", srv));
    goc_fd *k;
    struct resp rs;
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    send_req(k, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_STR(rs.body, "# HELP up Up.\n# TYPE up gauge\nup 1\n");
    /* k now sits idle in keep-alive: the shutdown closes it. */
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 10 * GOC_SECOND);
    ASSERT_OK(goc_shutdown_run(m, ctx));
    goc_ctx_destroy(ctx);
    struct goc_component_report rep;
    ASSERT_EQ(goc_shutdown_report(m, &rep, 1), 1);
    ASSERT_EQ(rep.state, GOC_COMPONENT_STOPPED);
    ASSERT(closed_by_peer(k));
    goc_fd_close(k);
    goc_fd *k2 = NULL;
    ASSERT_NE(goc_tcp_dial(addr, &k2, NULL), 0); /* nobody listens */
    goc_shutdown_free(m);
    goc_server_free(srv);
    goc_registry_free(r);
}

/* The value of the sample line that starts with @prefix, or -1. */
static double sample_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
        if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
            return strtod(l + n + 1, NULL);
        if (!strchr(l, '\n'))
            break;
    }
    return -1;
}

static void park_until_closed(void *arg)
{
    int v;
    goc_chan_recv(arg, &v, NULL);
    goc_chan_release(arg); /* the reference its spawner took for it */
}

TEST_G(metrics, runtime_statistics_exported)
{
    goc_registry *r = reg();
    goc_collector *c;
    ASSERT_EQ(goc_metrics_register_runtime(r, 0, NULL), -EINVAL);
    ASSERT_EQ(goc_metrics_register_runtime(r, 1u << 9, &c), -EINVAL);
    ASSERT_OK(goc_metrics_register_runtime(r, 0, &c));
    goc_chan *ch;
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &ch));
    int n = 40;
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(park_until_closed, goc_chan_retain(ch)));
    char *t = text_of(r);
    ASSERT(strstr(t, "# TYPE goc_goroutines gauge\n"));
    ASSERT(strstr(t, "# TYPE goc_context_switches_total counter\n"));
    ASSERT_GE(sample_value(t, "goc_goroutines"), n + 1);
    ASSERT_GE(sample_value(t, "goc_goroutines_created_total"), n + 1);
    ASSERT_EQ(sample_value(t, "goc_procs"), goc_maxprocs());
    ASSERT_GE(sample_value(t, "goc_runqueue_goroutines{queue=\"global\"}"), 0);
    ASSERT_GE(sample_value(t, "goc_runqueue_goroutines{queue=\"p0\"}"), 0);
    ASSERT_GT(sample_value(t, "process_resident_memory_bytes"), 0);
    ASSERT_GE(sample_value(t, "process_cpu_seconds_total"), 0);
    /* Prometheus's process collector: descriptors and the start time. */
    double fds = sample_value(t, "process_open_fds");
    ASSERT_GE(fds, 3);
    struct rlimit rl;
    ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
    ASSERT_EQ(sample_value(t, "process_max_fds"), (double)rl.rlim_cur);
    double started = sample_value(t, "process_start_time_seconds");
    ASSERT(started > (double)time(NULL) - 600 &&
           started <= (double)time(NULL) + 1);
    int two[2];
    ASSERT_OK(pipe(two));
    char *t2 = text_of(r);
    ASSERT_EQ(sample_value(t2, "process_open_fds"), fds + 2);
    free(t2);
    close(two[0]);
    close(two[1]);
    ASSERT_GT(sample_value(t, "goc_stack_reserved_bytes"), 0);
    ASSERT(strstr(t, "# TYPE goc_heap_inuse_bytes gauge\n"));
    ASSERT(strstr(t, "# TYPE goc_lib_allocs_total counter\n"));
    ASSERT_GT(sample_value(t, "goc_lib_heap_bytes"), 0);
    ASSERT_GT(sample_value(t, "goc_lib_heap_objects"), 0);
    ASSERT(!strstr(t, "goc_stack_resident_bytes")); /* not asked for */
    free(t);
    goc_chan_close(ch);
    ASSERT_OK(goc_collector_remove(c));
    t = text_of(r);
    ASSERT(!strstr(t, "goc_goroutines"));
    free(t);
    /* Only what is asked for. */
    ASSERT_OK(goc_metrics_register_runtime(
        r, GOC_STATS_STACK_RESIDENT | GOC_STATS_SCHED, &c));
    t = text_of(r);
    ASSERT_GT(sample_value(t, "goc_stack_resident_bytes"), 0);
    ASSERT(!strstr(t, "process_resident_memory_bytes"));
    free(t);
    ASSERT_OK(goc_collector_remove(c));
    goc_chan_release(ch);
    while (goc_num_goroutine() > 1)
        goc_sleep(1000000, NULL);
    goc_registry_free(r);
}

/* ---- fixes: idle connections, unregistering from callbacks, collector
 * series keys, gauge extremes reset, long names, kept server settings ---- */

/* Does c become readable (data, end or error) within about @ms? Asked of
 * the socket without parking, as closed_by_peer(). */
static bool readable_within(goc_fd *c, int ms)
{
    for (int i = 0; i < ms; i++) {
        ssize_t n = recv_now(c, MSG_PEEK);
        if (n >= 0 || (n != -EAGAIN && n != -EWOULDBLOCK))
            return true;
        goc_sleep(GOC_MILLISECOND, NULL);
    }
    return false;
}

TEST_G(metrics, http_idle_connections_time_out)
{
    goc_registry *r = reg();
    goc_gauge *g;
    ASSERT_OK(goc_gauge_new(r, "up", "Up.", &g));
    goc_gauge_set(g, 1);
    goc_server *srv;
    struct goc_metrics_http_opts bad = { .idle_timeout = -1 };
    ASSERT_EQ(goc_metrics_serve(r, "127.0.0.1:0", &bad, &srv), -EINVAL);
    struct goc_metrics_http_opts o = { .max_conns = 2,
                                       .timeout = 100 * GOC_MILLISECOND,
                                       .idle_timeout = 100 * GOC_MILLISECOND };
    ASSERT_OK(goc_metrics_serve(r, "127.0.0.1:0", &o, &srv));
    char addr[GOC_ADDRSTRLEN];
    goc_server_addr(srv, addr, sizeof addr);
    /* Two silent clients take both slots... */
    goc_fd *s1, *s2, *k;
    ASSERT_OK(goc_tcp_dial(addr, &s1, NULL));
    ASSERT_OK(goc_tcp_dial(addr, &s2, NULL));
    /* ...until the idle timeout closes them: the third one is served. */
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    send_req(k, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT(readable_within(k, 20000));
    struct resp rs;
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 200);
    ASSERT_STR(rs.body, "# HELP up Up.\n# TYPE up gauge\nup 1\n");
    ASSERT(closed_by_peer(s1));
    ASSERT(closed_by_peer(s2));
    /* A kept-alive connection idle after its request is closed too. */
    ASSERT(closed_by_peer(k));
    goc_fd_close(s1);
    goc_fd_close(s2);
    goc_fd_close(k);
    /* A head trickled in and never finished is closed after timeout. */
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    send_req(k, "GET /metr");
    ASSERT(closed_by_peer(k));
    goc_fd_close(k);
    ASSERT_OK(goc_server_shutdown(srv, NULL));
    goc_server_free(srv);
    goc_registry_free(r);
}

struct cross {
    goc_metric *fn_self, *plain, *fn_other;
    goc_collector *col_self, *col_other;
    int self_rc, plain_rc, fn_other_rc, col_self_rc, col_other_rc;
    _Atomic int other_calls;
};

static double other_fn(void *arg)
{
    struct cross *x = arg;
    atomic_fetch_add(&x->other_calls, 1);
    return 1;
}

static void other_collect(goc_metric_sink *k, void *arg)
{
    struct cross *x = arg;
    atomic_fetch_add(&x->other_calls, 1);
    goc_sink_family(k, "other", "Other.", GOC_METRIC_GAUGE);
    goc_sink_sample(k, NULL, NULL, 0, 1);
}

/* Registered first, so it runs before the entries it unregisters. */
static double cross_fn(void *arg)
{
    struct cross *x = arg;
    x->self_rc = goc_metric_unregister(x->fn_self);
    x->plain_rc = goc_metric_unregister(x->plain);
    x->fn_other_rc = goc_metric_unregister(x->fn_other);
    return 2;
}

static void cross_collect(goc_metric_sink *k, void *arg)
{
    struct cross *x = arg;
    x->col_self_rc = goc_collector_remove(x->col_self);
    x->col_other_rc = goc_collector_remove(x->col_other);
    goc_sink_family(k, "mine", "Mine.", GOC_METRIC_GAUGE);
    goc_sink_sample(k, NULL, NULL, 0, 3);
}

TEST_G(metrics, unregister_other_from_callback)
{
    goc_registry *r = reg();
    struct cross x = { 0 };
    ASSERT_OK(goc_metric_func(r, GOC_METRIC_GAUGE, "a_fn", "A.", cross_fn, &x,
                              &x.fn_self));
    goc_counter *c;
    ASSERT_OK(goc_counter_new(r, "b_total", "B.", &c));
    goc_counter_inc(c);
    ASSERT_OK(goc_metric_func(r, GOC_METRIC_GAUGE, "c_fn", "C.", other_fn, &x,
                              &x.fn_other));
    ASSERT_OK(goc_registry_add_collector(r, cross_collect, &x, &x.col_self));
    ASSERT_OK(goc_registry_add_collector(r, other_collect, &x, &x.col_other));
    /* A plain family with a child, unregistered from a_fn's callback. */
    struct goc_metric_opts o = { .type = GOC_METRIC_GAUGE,
                                 .name = "d",
                                 .help = "D." };
    ASSERT_OK(goc_metric_new(r, &o, &x.plain));
    goc_gauge *d;
    ASSERT_OK(goc_gauge_with(x.plain, NULL, &d));
    goc_gauge_set(d, 4);
    /* Entries unregistered during the scrape are left out of it, and
     * their callbacks do not run. */
    expect_text(r, "# HELP a_fn A.\n# TYPE a_fn gauge\na_fn 2\n"
                   "# HELP b_total B.\n# TYPE b_total counter\nb_total 1\n"
                   "# HELP mine Mine.\n# TYPE mine gauge\nmine 3\n");
    ASSERT_EQ(x.self_rc, -EDEADLK);
    ASSERT_EQ(x.plain_rc, 0);
    ASSERT_EQ(x.fn_other_rc, 0);
    ASSERT_EQ(x.col_self_rc, -EDEADLK);
    ASSERT_EQ(x.col_other_rc, 0);
    ASSERT_EQ(atomic_load(&x.other_calls), 0);
    /* Gone for good (the callbacks now pass NULL: -EINVAL); their own
     * entries are still there. */
    x.plain = x.fn_other = NULL;
    x.col_other = NULL;
    expect_text(r, "# HELP a_fn A.\n# TYPE a_fn gauge\na_fn 2\n"
                   "# HELP b_total B.\n# TYPE b_total counter\nb_total 1\n"
                   "# HELP mine Mine.\n# TYPE mine gauge\nmine 3\n");
    ASSERT_EQ(x.plain_rc, -EINVAL); /* NULL now */
    ASSERT_OK(goc_metric_unregister(x.fn_self));
    ASSERT_OK(goc_collector_remove(x.col_self));
    goc_registry_free(r);
}

static void mixed_collect(goc_metric_sink *k, void *arg)
{
    (void)arg;
    ASSERT_OK(goc_sink_family(k, "foo", "Foo.", GOC_METRIC_GAUGE));
    ASSERT_OK(goc_sink_sample(k, (const char *[]){ "b" },
                              (const char *[]){ "x" }, 1, 2));
    ASSERT_OK(goc_sink_sample(k, (const char *[]){ "a" },
                              (const char *[]){ "x" }, 1, 1));
    ASSERT_OK(goc_sink_sample(k, NULL, NULL, 0, 3));
    ASSERT_OK(goc_sink_sample(k, (const char *[]){ "b", "a" },
                              (const char *[]){ "y", "x" }, 2, 4));
    ASSERT_OK(goc_sink_sample(k, (const char *[]){ "ab" },
                              (const char *[]){ "" }, 1, 5));
    /* The same series twice (in another label order): one is dropped. */
    ASSERT_OK(goc_sink_sample(k, (const char *[]){ "a", "b" },
                              (const char *[]){ "x", "y" }, 2, 4));
}

TEST_G(metrics, collector_series_keyed_by_label_names)
{
    goc_registry *r = reg();
    goc_collector *c;
    ASSERT_OK(goc_registry_add_collector(r, mixed_collect, NULL, &c));
    expect_text(r, "# HELP foo Foo.\n# TYPE foo gauge\n"
                   "foo 3\n"
                   "foo{a=\"x\"} 1\n"
                   "foo{a=\"x\",b=\"y\"} 4\n"
                   "foo{ab=\"\"} 5\n"
                   "foo{b=\"x\"} 2\n");
    struct goc_registry_stats st;
    goc_registry_get_stats(r, &st);
    ASSERT_EQ(st.dropped_samples, 1);
    ASSERT_EQ(st.dropped_families, 0);
    goc_registry_free(r);
}

/*
 * A reset racing with a set that lowers the minimum must not leave the
 * minimum above the value. Each round starts both sides together, the
 * reset shifted by a delay that sweeps the window; the setter lowers the
 * value to a new minimum each round, so only a lost update breaks
 * min <= value afterwards.
 */
struct xrace {
    goc_gauge *g;
    long rounds;
    _Atomic long go, done;
};

static void spin(long n)
{
    for (volatile long i = 0; i < n; i++)
        ;
}

static void *xrace_setter(void *arg)
{
    struct xrace *x = arg;
    for (long i = 1; i <= x->rounds; i++) {
        while (atomic_load(&x->go) < i)
            sched_yield(); /* valgrind runs one thread at a time */
        spin((i * 7) % 13);
        goc_gauge_set(x->g, (double)-i);
        atomic_store(&x->done, i);
    }
    return NULL;
}

TEST_G(metrics, gauge_extremes_reset_keeps_value_in_window)
{
    goc_registry *r = reg();
    struct goc_metric_opts o = { .type = GOC_METRIC_GAUGE,
                                 .name = "depth",
                                 .help = "Depth.",
                                 .track = true };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    struct xrace x = { .rounds = test_scale(300000) };
    ASSERT_OK(goc_gauge_with(m, NULL, &x.g));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, xrace_setter, &x));
    struct goc_gauge_extremes ex;
    long bad = 0;
    for (long i = 1; i <= x.rounds; i++) {
        atomic_store(&x.go, i);
        spin(i % 29);
        ASSERT_OK(goc_gauge_extremes(x.g, true, &ex));
        ASSERT(ex.min <= ex.value && ex.value <= ex.max);
        while (atomic_load(&x.done) < i)
            sched_yield();
        ASSERT_OK(goc_gauge_extremes(x.g, false, &ex));
        bad += ex.min > ex.value || ex.max < ex.value;
    }
    test_join(t, NULL);
    ASSERT_EQ(bad, 0);
    ASSERT_OK(goc_gauge_extremes(x.g, false, &ex));
    ASSERT(ex.value == (double)-x.rounds && ex.min <= ex.value);
    goc_registry_free(r);
}

TEST_G(metrics, long_names_clash)
{
    goc_registry *r = reg();
    size_t n = 2000;
    char *base = malloc(n + 16), *other = malloc(n + 16);
    ASSERT(base && other);
    memset(base, 'x', n);
    base[n] = '\0';
    goc_metric *h, *m;
    struct goc_metric_opts o = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = base,
                                 .help = "H." };
    ASSERT_OK(goc_metric_new(r, &o, &h));
    static const char *const sufs[] = { "_count", "_sum", "_bucket", "" };
    for (int i = 0; i < 4; i++) {
        snprintf(other, n + 16, "%s%s", base, sufs[i]);
        struct goc_metric_opts c = { .type = GOC_METRIC_COUNTER,
                                     .name = other,
                                     .help = "C." };
        ASSERT_EQ(goc_metric_new(r, &c, &m), -EEXIST);
    }
    /* The other way round: a counter first, then a summary over it. */
    snprintf(other, n + 16, "%s_count", base);
    other[0] = 'y';
    struct goc_metric_opts c = { .type = GOC_METRIC_COUNTER,
                                 .name = other,
                                 .help = "C." };
    ASSERT_OK(goc_metric_new(r, &c, &m));
    other[n] = '\0'; /* y...x, the summary's name */
    struct goc_metric_opts s = { .type = GOC_METRIC_SUMMARY,
                                 .name = other,
                                 .help = "S." };
    ASSERT_EQ(goc_metric_new(r, &s, &m), -EEXIST);
    /* A name that only shares a prefix does not clash. */
    snprintf(other, n + 16, "%s_counts", base);
    ASSERT_OK(goc_metric_new(r, &c, &m));
    free(base);
    free(other);
    goc_registry_free(r);
}

static size_t kept_settings(goc_registry *r)
{
    size_t n = 0;
    goc__lock_acquire(&r->mu);
    for (struct http_cfg *h = r->http; h; h = h->next)
        n++;
    goc__lock_release(&r->mu);
    return n;
}

TEST_G(metrics, serve_default_registry_keeps_settings_once)
{
    goc_registry *r = goc_registry_default();
    goc_gauge *g;
    ASSERT_OK(goc_gauge_new(NULL, "served", "Served.", &g));
    size_t before = kept_settings(r);
    for (int i = 0; i < 5; i++) {
        goc_server *srv;
        ASSERT_OK(goc_metrics_serve(NULL, "127.0.0.1:0", NULL, &srv));
        char addr[GOC_ADDRSTRLEN];
        goc_server_addr(srv, addr, sizeof addr);
        goc_fd *k;
        ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
        send_req(
            k, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        struct resp rs;
        ASSERT_OK(read_resp(k, &rs, false));
        ASSERT_STR(rs.body, "# HELP served Served.\n# TYPE served gauge\n"
                            "served 0\n");
        goc_fd_close(k);
        ASSERT_OK(goc_server_shutdown(srv, NULL));
        goc_server_free(srv);
    }
    ASSERT_EQ(kept_settings(r), before + 1);
    /* Other settings are kept apart. */
    struct goc_metrics_http_opts o = { .idle_timeout = GOC_SECOND };
    goc_server *srv;
    ASSERT_OK(goc_metrics_serve(NULL, "127.0.0.1:0", &o, &srv));
    goc_server_free(srv);
    ASSERT_OK(goc_metrics_serve(NULL, "127.0.0.1:0", &o, &srv));
    goc_server_free(srv);
    ASSERT_EQ(kept_settings(r), before + 2);
}

/* The minimum (q = 0) as an objective: its biased bound, 2er/q, was
 * infinite, every sample merged into the last, and q = 0 answered the
 * maximum. */
TEST_G(metrics, summary_minimum_objective_within_error)
{
    goc_registry *r = reg();
    struct goc_quantile q[] = { { 0, 0.01 }, { 0.5, 0.05 } };
    struct goc_metric_opts o = { .type = GOC_METRIC_SUMMARY,
                                 .name = "lat_min",
                                 .help = "L.",
                                 .objectives = q,
                                 .nobjectives = 2 };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    goc_summary *s;
    ASSERT_OK(goc_summary_with(m, NULL, &s));
    observe_permutation(s, 20000);
    check_quantiles(s, q, 2, 20000);
    goc_registry_free(r);
}

static _Atomic bool panic_now;

static double panics_when_told(void *arg)
{
    (void)arg;
    if (atomic_load(&panic_now))
        goc_panic(-EIO, "gauge callback failed");
    return 1;
}

static int scrape_into_nothing(void *arg)
{
    char *t;
    int rc = goc_metrics_text(arg, &t, NULL);
    if (rc == 0)
        free(t);
    return rc;
}

struct unregistering {
    goc_metric *m;
    _Atomic bool done;
};

static void *unregister_it(void *arg)
{
    struct unregistering *u = arg;
    ASSERT_OK(goc_metric_unregister(u->m));
    atomic_store(&u->done, true);
    return NULL;
}

static void quiet(const char *msg, void *arg)
{
    (void)msg;
    (void)arg;
}

static int collector_panics_in;

static void collector_panics(goc_metric_sink *s, void *arg)
{
    (void)s;
    (void)arg;
    collector_panics_in++;
    goc_panic(-EIO, "collector failed");
}

/*
 * A func metric or collector whose callback panics during a scrape run
 * under goc_try(): the panic reaches the goc_try(), and the registry is
 * whole. The callback's marks stayed taken: unregistering it waited for
 * ever, the list of running callbacks kept a record on a dead stack, and
 * the scrape's references were never dropped. Over HTTP the scrape
 * fails alone, with a 500.
 */
TEST_G(metrics, panicking_callback_fails_its_scrape_alone)
{
    goc_registry *r = reg();
    goc_metric *m;
    ASSERT_OK(goc_metric_func(r, GOC_METRIC_GAUGE, "flaky", "Flaky.",
                              panics_when_told, NULL, &m));
    atomic_store(&panic_now, true);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(scrape_into_nothing, r, &p), GOC_EPANIC);
    ASSERT_STR(goc_panic_info_message(p), "gauge callback failed");
    goc_panic_info_free(p);
    /* Over HTTP: a 500 for that scrape, and the server serves on. */
    goc_server *srv;
    ASSERT_OK(goc_metrics_serve(r, "127.0.0.1:0", NULL, &srv));
    char addr[GOC_ADDRSTRLEN];
    ASSERT_GT(goc_server_addr(srv, addr, sizeof addr), 0);
    goc_fd *k;
    ASSERT_OK(goc_tcp_dial(addr, &k, NULL));
    struct resp rs;
    goc_set_log_hook(quiet, NULL); /* the panic's report */
    send_req(k, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    goc_set_log_hook(NULL, NULL);
    ASSERT_EQ(rs.status, 500);
    atomic_store(&panic_now, false);
    send_req(k, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_OK(read_resp(k, &rs, false));
    ASSERT_EQ(rs.status, 200);
    ASSERT(strstr(rs.body, "flaky 1\n"));
    goc_fd_close(k);
    goc_server_shutdown(srv, NULL);
    goc_server_free(srv);
    /* Unregistering it returns (from a plain thread, bounded). */
    static struct unregistering u;
    u.m = m;
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, unregister_it, &u));
    for (int i = 0; i < 5000 && !atomic_load(&u.done); i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT(atomic_load(&u.done)); /* else it waits for ever */
    ASSERT_OK(pthread_join(t, NULL));
    /* A collector likewise. */
    goc_collector *c;
    ASSERT_OK(goc_registry_add_collector(r, collector_panics, NULL, &c));
    ASSERT_EQ(goc_try(scrape_into_nothing, r, NULL), GOC_EPANIC);
    ASSERT_EQ(collector_panics_in, 1);
    ASSERT_OK(goc_collector_remove(c));
    ASSERT_EQ(goc_try(scrape_into_nothing, r, NULL), 0);
    goc_registry_free(r);
}

/* A summary "lat" with an "op" label and a median objective, timed by
 * @clk (which must outlive it). */
static goc_metric *summary_timed_by(goc_registry *r, const goc_clock *clk)
{
    static const struct goc_quantile q[] = { { 0.5, 0.05 } };
    static const char *labels[] = { "op" };
    struct goc_metric_opts o = { .type = GOC_METRIC_SUMMARY,
                                 .name = "lat",
                                 .help = "Latency.",
                                 .labels = labels,
                                 .nlabels = 1,
                                 .objectives = q,
                                 .nobjectives = 1,
                                 .clock = clk };
    goc_metric *m;
    ASSERT_OK(goc_metric_new(r, &o, &m));
    return m;
}

static goc_metric *clocked_family;
static _Atomic bool clock_reenters;
static _Atomic int64_t clocked_time;

/* A clock that keeps a series of its own in the family it times. */
static int64_t reentrant_clock(void *arg)
{
    (void)arg;
    if (atomic_exchange(&clock_reenters, false)) {
        goc_summary *x;
        ASSERT_OK(
            goc_summary_with(clocked_family, (const char *[]){ "clock" }, &x));
        atomic_store(&clock_reenters, true);
    }
    return atomic_fetch_add(&clocked_time, 1000) + 1000;
}

static void *summary_with_and_scrape(void *arg)
{
    goc_summary *s;
    ASSERT_OK(goc_summary_with(clocked_family, (const char *[]){ "get" }, &s));
    goc_summary_observe(s, 1.0);
    char *text;
    ASSERT_OK(goc_metrics_text(arg, &text, NULL));
    free(text);
    return (void *)1;
}

/* A summary's clock ran under the family's lock (making a series, and in
 * every scrape), which goc/clock.h promises it never does: a clock that
 * used its own family deadlocked. */
TEST(metrics, summary_clock_never_runs_under_the_family_lock)
{
    goc_registry *r;
    ASSERT_OK(goc_registry_new(&r));
    static const goc_clock clk = { reentrant_clock, NULL };
    clocked_family = summary_timed_by(r, &clk);
    atomic_store(&clock_reenters, true);
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, summary_with_and_scrape, r));
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    void *done = NULL;
    ASSERT_OK(pthread_timedjoin_np(t, &done, &until)); /* else deadlocked */
    ASSERT(done == (void *)1);
    goc_registry_free(r);
}

static _Atomic bool summary_clock_panics;

static int64_t clock_that_may_panic(void *arg)
{
    (void)arg;
    if (atomic_load(&summary_clock_panics))
        goc_panic(-EIO, "clock failed");
    return goc_now();
}

static int make_series(void *arg)
{
    goc_summary *x;
    return goc_summary_with(arg, (const char *[]){ "put" }, &x);
}

/* A summary's clock that panics in a scrape (or as a series is made)
 * unwound past the scrape's clean-up: every such scrape leaked its
 * families and a reference on every registered metric, which were then
 * never freed. It is run as the other callbacks are. */
TEST_G(metrics, panicking_summary_clock_leaks_nothing)
{
    goc_registry *r = reg();
    static const goc_clock clk = { clock_that_may_panic, NULL };
    goc_metric *m = summary_timed_by(r, &clk);
    goc_summary *s;
    ASSERT_OK(goc_summary_with(m, (const char *[]){ "get" }, &s));
    goc_summary_observe(s, 1.0);
    atomic_store(&summary_clock_panics, true);
    int64_t before = 0;
    for (int i = 0; i < 101; i++) {
        if (i == 1) /* after any first-use allocations */
            before = test_lib_objects();
        ASSERT_EQ(goc_try(scrape_into_nothing, r, NULL), GOC_EPANIC);
        ASSERT_EQ(goc_try(make_series, m, NULL), GOC_EPANIC);
    }
    ASSERT_LT(test_lib_objects() - before, 10);
    atomic_store(&summary_clock_panics, false);
    ASSERT_EQ(goc_try(scrape_into_nothing, r, NULL), 0);
    goc_registry_free(r);
}

/* Every P's run queue is exported, however many Ps there are. */
static int runq_main(void *arg)
{
    (void)arg;
    goc_registry *r = reg();
    goc_collector *c;
    ASSERT_OK(goc_metrics_register_runtime(r, GOC_STATS_SCHED, &c));
    int n = goc_maxprocs();
    ASSERT_EQ(n, 300);
    char *t = text_of(r);
    char key[64];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "goc_runqueue_goroutines{queue=\"p%d\"}", i);
        ASSERT_GE(sample_value(t, key), 0);
    }
    snprintf(key, sizeof key, "goc_runqueue_goroutines{queue=\"p%d\"}", n);
    ASSERT_EQ(sample_value(t, key), -1);
    free(t);
    ASSERT_OK(goc_collector_remove(c));
    goc_registry_free(r);
    return 0;
}

TEST(metrics, runtime_runqueue_of_every_p)
{
    struct goc_config cfg = { .max_procs = 300 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(runq_main, NULL));
    test_no_leaks();
}

/* ---- a summary's clock is a callback of its family ---- */

static _Atomic bool clock_slow;
static _Atomic int clock_running;

/* A clock that computes for a while (it never blocks) when told to. */
static int64_t slow_clock(void *arg)
{
    (void)arg;
    if (atomic_load(&clock_slow)) {
        atomic_store(&clock_running, 1);
        for (int64_t end = goc_now() + 200 * GOC_MILLISECOND; goc_now() < end;)
            ;
        atomic_store(&clock_running, 0);
    }
    return goc_now();
}

static goc_metric *clock_unregisters;
static _Atomic int clock_unregister_rc = 1;

/* A clock that unregisters its own family, once. */
static int64_t self_unregistering_clock(void *arg)
{
    (void)arg;
    goc_metric *m = clock_unregisters;
    clock_unregisters = NULL;
    if (m)
        atomic_store(&clock_unregister_rc, goc_metric_unregister(m));
    return goc_now();
}

static void *scrape_on_thread(void *arg)
{
    char *text;
    ASSERT_OK(goc_metrics_text(arg, &text, NULL));
    free(text);
    return NULL;
}

/* A scrape read a summary's clock without marking the call, so
 * unregistering the family returned while the clock was still running
 * (its argument could then be freed under it); and the clock's own
 * family could be unregistered from inside it. */
TEST(metrics, unregister_waits_for_a_running_summary_clock)
{
    goc_registry *r = reg();
    static const goc_clock clk = { slow_clock, NULL };
    goc_metric *m = summary_timed_by(r, &clk);
    atomic_store(&clock_slow, true);
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, scrape_on_thread, r));
    WAIT_UNTIL(atomic_load(&clock_running));
    ASSERT_OK(goc_metric_unregister(m));
    int still = atomic_load(&clock_running);
    atomic_store(&clock_slow, false);
    ASSERT_OK(pthread_join(t, NULL));
    ASSERT_EQ(still, 0);
    /* From inside the clock, as from a func metric's callback. */
    static const goc_clock self = { self_unregistering_clock, NULL };
    m = summary_timed_by(r, &self);
    clock_unregisters = m;
    scrape_on_thread(r);
    ASSERT_EQ(atomic_load(&clock_unregister_rc), -EDEADLK);
    ASSERT_OK(goc_metric_unregister(m));
    goc_registry_free(r);
}

/* A "Connection: close" line followed by one saying keep-alive kept the
 * connection open: the later line overrode the close, which wins
 * wherever it is said. */
TEST_G(metrics, http_close_wins_over_a_later_keep_alive)
{
    const char *heads[] = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Connection: keep-alive\r\n\r\n",
        "GET /metrics HTTP/1.0\r\nConnection: close\r\n"
        "Connection: keep-alive\r\n\r\n",
    };
    expect_answer_then_close(heads, sizeof heads / sizeof heads[0], 200);
}

static _Atomic int sink_rc[4];

/* Runs out of memory on a sample, then offers bad ones. */
static void collect_after_oom(goc_metric_sink *k, void *arg)
{
    (void)arg;
    const char *bad[] = { "__reserved" }, *v[] = { "x" };
    double b[] = { 1 };
    uint64_t cum[] = { 1 };
    ASSERT_OK(goc_sink_family(k, "after_oom", "Help.", GOC_METRIC_GAUGE));
    goc__fault_after(0);
    atomic_store(&sink_rc[0], goc_sink_sample(k, NULL, NULL, 0, 1));
    goc__fault_after(-1);
    atomic_store(&sink_rc[1], goc_sink_sample(k, bad, v, 1, 1));
    atomic_store(&sink_rc[2], goc_sink_histogram(k, NULL, NULL, 0, b, cum, 1, 1,
                                                 1)); /* not a histogram */
    ASSERT_OK(goc_sink_family(k, "after_oom_h", "Help.", GOC_METRIC_HISTOGRAM));
    atomic_store(&sink_rc[3],
                 goc_sink_histogram(k, bad, v, 1, b, cum, 1, 1, 1));
}

/* Once a scrape had run out of memory, every refused sample said
 * -ENOMEM, bad input included. */
TEST_G(metrics, sink_refuses_bad_samples_with_einval_after_oom)
{
    goc_registry *r = reg();
    goc_collector *c;
    ASSERT_OK(goc_registry_add_collector(r, collect_after_oom, NULL, &c));
    char *t = NULL;
    ASSERT_EQ(goc_metrics_text(r, &t, NULL), -ENOMEM);
    ASSERT_EQ(atomic_load(&sink_rc[0]), -ENOMEM);
    ASSERT_EQ(atomic_load(&sink_rc[1]), -EINVAL);
    ASSERT_EQ(atomic_load(&sink_rc[2]), -EINVAL);
    ASSERT_EQ(atomic_load(&sink_rc[3]), -EINVAL);
    ASSERT_OK(goc_collector_remove(c));
    goc_registry_free(r);
}
