/* Samplers: schedules against the values worked out from the reference formulas (spec §4.3,
 * §4.5), exactness on straight flow paths, and single UniPC updates against the reference's
 * general recursion (the R rho = b system built term by term, not the closed forms the sampler
 * uses), with and without classifier-free guidance (the reference's v = u + g (c - u) formed in
 * double here). The samplers run on the CPU backend over host tensors. Tolerances: single
 * updates 1e-5 (1 + |x|) (the f32 state against double), straight paths rel L2 2e-6 after up
 * to 50 f32 roundings of the state. */
#include "check.h"

#include "dit/error.h"
#include "pipelines/scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static backend *be;

/* One f32 value as a tensor on the CPU backend. */
static tensor scalar(float *v) { return tensor_1d(v, DT_F32, DEV_CPU, 1); }

/* One step over scalars; uncond NULL: no guidance. */
static int step1(scheduler *s, int k, float *cond, float *uncond, double g, float *x)
{
    tensor c = scalar(cond), u = uncond ? scalar(uncond) : (tensor){0}, xt = scalar(x);
    return sched_step(s, k, &c, uncond ? &u : NULL, g, &xt);
}

/* A fresh prediction pair and the guided velocity the reference forms from it (g = 1: the
 * conditional one alone, *u untouched). */
static double draw_velocity(double g, float *c, float *u)
{
    *c = (float)check_rand_normal();
    if (g == 1.0)
        return *c;
    *u = (float)check_rand_normal();
    return *u + g * ((double)*c - *u);
}

/* A sampler over one value, its schedule (steps + 1 entries) in sg, and a random start. */
static scheduler *scalar_sampler(enum sched_kind kind, int steps, double shift, double *sg,
                                 float *x0)
{
    scheduler *s = NULL;
    CHECK_OK(sched_create(kind, steps, shift, be, 1, &s));
    if (kind == SCHED_DPMPP)
        sched_sigmas_dpmpp(steps, shift, sg, NULL);
    else
        sched_sigmas_unipc(steps, shift, sg, NULL);
    *x0 = (float)check_rand_normal();
    return s;
}

static const int t_s5[50] = {999, 995, 991, 987, 982, 978, 973, 968, 963, 957, 952, 946, 940,
                             934, 927, 920, 913, 906, 898, 890, 882, 873, 863, 854, 843, 833,
                             821, 809, 796, 783, 768, 753, 737, 720, 701, 681, 660, 636, 611,
                             584, 555, 522, 487, 448, 405, 356, 302, 241, 172, 92};
static const int t_s3[50] = {999, 992, 985, 978, 971, 963, 956, 948, 939, 931, 922, 913, 904,
                             894, 884, 874, 864, 853, 841, 829, 817, 805, 792, 778, 764, 749,
                             734, 718, 701, 684, 666, 647, 627, 606, 585, 562, 538, 512, 486,
                             458, 428, 396, 363, 327, 290, 249, 206, 160, 111, 57};
static const int t_s8[50] = {999, 997, 994, 991, 989, 986, 983, 979, 976, 973, 969, 965, 961,
                             957, 953, 948, 944, 939, 934, 928, 922, 916, 910, 903, 896, 888,
                             880, 871, 862, 852, 841, 830, 817, 804, 789, 773, 756, 737, 716,
                             692, 666, 636, 603, 565, 521, 470, 409, 337, 249, 140};

static void check_schedule(double shift, const int *want)
{
    double sig[51];
    float t[51];
    sched_sigmas_unipc(50, shift, sig, t);
    int bad = 0;
    for (int k = 0; k < 50; k++)
        bad += (int)t[k] != want[k];
    CHECK(bad == 0, "UniPC timesteps for shift %g differ in %d places", shift, bad);
    CHECK(sig[50] == 0.0, "final sigma %g", sig[50]);
}

/* The reference's UniC/UniP with the general b recursion and a 2x2 solve (Cramer), scalar. */
static double lam(double s) { return log(1 - s) - log(s); }

static double ref_corrector(const double *sg, int k, int order, double x_last, double m_k,
                            double m1, double m2)
{
    double h = lam(sg[k]) - lam(sg[k - 1]), hh = -h, phi1 = expm1(hh), B = expm1(hh);
    double rks[2], D1 = 0;
    int nr = 0;
    if (order == 2) {
        rks[nr++] = (lam(sg[k - 2]) - lam(sg[k - 1])) / h;
        D1 = (m2 - m1) / rks[0];
    }
    rks[nr++] = 1.0;
    double b[2], R[2][2], hk = phi1 / hh - 1, fact = 1;
    for (int i = 1; i <= order; i++) {
        for (int j = 0; j < nr; j++)
            R[i - 1][j] = pow(rks[j], i - 1);
        b[i - 1] = hk * fact / B;
        fact *= i + 1;
        hk = hk / hh - 1 / fact;
    }
    double rho_last, corr = 0;
    if (order == 1) {
        rho_last = 0.5;
    } else {
        double det = R[0][0] * R[1][1] - R[0][1] * R[1][0];
        double r0 = (b[0] * R[1][1] - R[0][1] * b[1]) / det;
        rho_last = (R[0][0] * b[1] - b[0] * R[1][0]) / det;
        corr = r0 * D1;
    }
    double at = 1 - sg[k];
    double base = sg[k] / sg[k - 1] * x_last - at * phi1 * m1;
    return base - at * B * (corr + rho_last * (m_k - m1));
}

static double ref_predictor(const double *sg, int k, int order, double x, double m_k, double m1)
{
    double h = lam(sg[k + 1]) - lam(sg[k]), hh = -h, phi1 = expm1(hh), B = expm1(hh);
    double at = 1 - sg[k + 1];
    double out = sg[k + 1] / sg[k] * x - at * phi1 * m_k;
    if (order == 2) {
        double r = (lam(sg[k - 1]) - lam(sg[k])) / h;
        out -= at * B * 0.5 * ((m1 - m_k) / r);
    }
    return out;
}

static void test_unipc_updates(double g)
{
    const int N = 6;
    double sg[7];
    float x;
    scheduler *s = scalar_sampler(SCHED_UNIPC, N, 5.0, sg, &x);
    double xr = x, x_last = 0, m1 = 0, m2 = 0;
    int order_prev = 0, lon = 0;
    for (int k = 0; k < N; k++) {
        float c, u;
        double v = draw_velocity(g, &c, &u);
        double m = xr - (double)(float)sg[k] * v;
        if (k > 0)
            xr = ref_corrector(sg, k, order_prev, x_last, m, m1, m2);
        int p = N - k < 2 ? N - k : 2;
        if (p > lon + 1)
            p = lon + 1;
        order_prev = p;
        x_last = xr;
        xr = sg[k + 1] == 0 ? m : ref_predictor(sg, k, p, xr, m, m1);
        m2 = m1;
        m1 = m;
        lon = lon < 2 ? lon + 1 : 2;
        /* feed reel the same predictions at its own (float) sample */
        CHECK_OK(step1(s, k, &c, g == 1.0 ? NULL : &u, g, &x));
        CHECK(fabs(x - xr) <= 1e-5 * (1 + fabs(xr)), "UniPC step %d, guidance %g: %.8f vs "
              "reference %.8f", k, g, x, xr);
        xr = x; /* continue both from reel's float state so errors do not compound */
    }
    sched_free(s);
}

/* DPM-Solver++ 2M (midpoint) as fm_solvers.py writes it, scalar */
static void test_dpmpp_updates(double g)
{
    const int N = 5;
    double sg[6];
    float x;
    scheduler *s = scalar_sampler(SCHED_DPMPP, N, 3.0, sg, &x);
    double m_prev = 0;
    for (int k = 0; k < N; k++) {
        float c, u;
        double v = draw_velocity(g, &c, &u);
        double m = x - (double)(float)sg[k] * v, want;
        double alpha_t = 1 - sg[k + 1];
        if (sg[k + 1] == 0) {
            want = m;
        } else if (k == 0) { /* lambda_0 = -inf: x_1 = sigma_1 x_0 + alpha_1 m_0 */
            want = sg[1] * x + alpha_t * m;
        } else {
            double h = lam(sg[k + 1]) - lam(sg[k]);
            double h0 = k >= 2 ? lam(sg[k]) - lam(sg[k - 1]) : INFINITY;
            double D0 = m, D1 = isinf(h0) ? 0 : (m - m_prev) / (h0 / h);
            want = sg[k + 1] / sg[k] * x - alpha_t * (exp(-h) - 1) * D0 -
                   0.5 * alpha_t * (exp(-h) - 1) * D1;
        }
        CHECK_OK(step1(s, k, &c, g == 1.0 ? NULL : &u, g, &x));
        CHECK(fabs(x - want) <= 1e-5 * (1 + fabs(want)), "DPM++ step %d, guidance %g: %.8f vs %.8f",
              k, g, x, want);
        m_prev = m;
    }
    sched_free(s);
}

/* Euler: x + fp32(sigma_{k+1} - sigma_k) v, v guided as the reference forms it */
static void test_euler_updates(double g)
{
    const int N = 4;
    double sg[5];
    float x;
    scheduler *s = scalar_sampler(SCHED_EULER, N, 5.0, sg, &x);
    for (int k = 0; k < N; k++) {
        float c, u;
        double v = draw_velocity(g, &c, &u);
        double want = x + (double)(float)(sg[k + 1] - sg[k]) * v;
        CHECK_OK(step1(s, k, &c, g == 1.0 ? NULL : &u, g, &x));
        CHECK(fabs(x - want) <= 1e-5 * (1 + fabs(want)), "Euler step %d, guidance %g: %.8f vs %.8f",
              k, g, x, want);
    }
    sched_free(s);
}

/* On a straight path x = (1 - sigma) x0 + sigma e the velocity e - x0 is exact, and every
 * sampler must land on x0. Guided (g != 1), cond and uncond are the two slices of one [2, 257]
 * prediction, both holding the exact velocity, which guidance then leaves as it is. */
static void test_straight_path(enum sched_kind kind, int steps, double g)
{
    const int64_t n = 257;
    float *x0 = malloc(n * sizeof *x0), *e = malloc(n * sizeof *e), *x = malloc(n * sizeof *x);
    float *v = malloc(2 * n * sizeof *v);
    check_fill_normal(x0, n, 1.0f);
    check_fill_normal(e, n, 1.0f);
    scheduler *s;
    CHECK_OK(sched_create(kind, steps, 5.0, be, n, &s));
    double s0 = sched_sigma(s, 0);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)((1 - s0) * x0[i] + s0 * e[i]);
        v[i] = v[n + i] = e[i] - x0[i];
    }
    tensor vt = tensor_2d(v, DT_F32, DEV_CPU, 2, n), xt = tensor_1d(x, DT_F32, DEV_CPU, n);
    tensor cond = tensor_slice(&vt, 0, 0, 1), uncond = tensor_slice(&vt, 0, 1, 1);
    for (int k = 0; k < steps; k++)
        CHECK_OK(sched_step(s, k, &cond, g == 1.0 ? NULL : &uncond, g, &xt));
    double err = check_rel_l2(x, x0, (size_t)n);
    CHECK(err < 2e-6, "%s, %d steps, guidance %g: straight path ends %.3e from x0",
          sched_kind_name(kind), steps, g, err);
    sched_free(s);
    free(x0), free(e), free(x), free(v);
}

int main(void)
{
    check_seed("test_sched");
    CHECK_OK(backend_cpu_create(2, &be));
    if (!be)
        return check_done();
    check_schedule(5.0, t_s5);
    check_schedule(3.0, t_s3);
    check_schedule(8.0, t_s8);

    /* first sigma: shift applied to fp32(0.999) */
    double sig[51];
    float t[51], tu[51];
    sched_sigmas_unipc(50, 5.0, sig, tu);
    double s999 = (double)(float)0.999;
    CHECK(sig[0] == (double)(float)(5 * s999 / (1 + 4 * s999)), "first UniPC sigma %.9f", sig[0]);

    /* DPM++ starts at sigma 1 (t = 1000) and otherwise truncates at most one higher */
    sched_sigmas_dpmpp(50, 5.0, sig, t);
    CHECK(t[0] == 1000 && sig[0] == 1.0, "DPM++ first step t=%g sigma=%g", t[0], sig[0]);
    int ups = 0, bad = 0;
    for (int k = 1; k < 50; k++) {
        int d = (int)t[k] - (int)tu[k];
        ups += d == 1;
        bad += d != 0 && d != 1;
    }
    CHECK(bad == 0, "DPM++ timesteps differ from UniPC's by more than one");
    static const int listed[] = {921, 864, 844, 797, 769, 637, 612, 585, 523, 357, 303};
    for (size_t i = 0; i < sizeof listed / sizeof listed[0]; i++) {
        int found = 0;
        for (int k = 0; k < 50; k++)
            found |= (int)t[k] == listed[i];
        CHECK(found, "DPM++ timestep %d missing", listed[i]);
    }
    CHECK(ups >= 11, "only %d DPM++ timesteps above UniPC's", ups);

    for (double g = 1.0; g <= 5.0; g += 4.0) {
        test_unipc_updates(g);
        test_dpmpp_updates(g);
        test_euler_updates(g);
    }
    for (int steps = 1; steps <= 12; steps += 11) {
        test_straight_path(SCHED_UNIPC, steps, 1.0);
        test_straight_path(SCHED_DPMPP, steps, 1.0);
        test_straight_path(SCHED_EULER, steps, 1.0);
        test_straight_path(SCHED_UNIPC, steps, 5.0);
        test_straight_path(SCHED_DPMPP, steps, 5.0);
        test_straight_path(SCHED_EULER, steps, 5.0);
    }
    test_straight_path(SCHED_UNIPC, 50, 1.0);

    /* an order-1 UniPC predictor is an Euler step */
    {
        scheduler *a, *b;
        float xa = 0.3f, xb = 0.3f, v = -1.7f;
        CHECK_OK(sched_create(SCHED_UNIPC, 10, 3.0, be, 1, &a));
        CHECK_OK(sched_create(SCHED_EULER, 10, 3.0, be, 1, &b));
        CHECK_OK(step1(a, 0, &v, NULL, 1.0, &xa));
        CHECK_OK(step1(b, 0, &v, NULL, 1.0, &xb));
        CHECK(fabsf(xa - xb) < 1e-6f, "first UniPC step %.8f vs Euler %.8f", xa, xb);
        CHECK(step1(a, 2, &v, NULL, 1.0, &xa) == REEL_E_INVALID, "out-of-order step accepted");
        /* a prediction of another size is refused by name, before any work */
        float two[2] = {0};
        tensor x = scalar(&xa), c1 = scalar(&v), u2 = tensor_1d(two, DT_F32, DEV_CPU, 2);
        CHECK(sched_step(a, 1, &c1, &u2, 5.0, &x) == REEL_E_INVALID &&
                  strstr(err_msg(), "uncond"), "uncond of 2 values for 1: %s", err_msg());
        sched_free(a);
        sched_free(b);
    }
    enum sched_kind kind;
    CHECK(sched_kind_from_name("ddim", &kind) == REEL_E_INVALID && strstr(err_msg(), "unipc"),
          "unknown sampler name: %s", err_msg());
    CHECK(sched_create(SCHED_UNIPC, 0, 5.0, be, 1, &(scheduler *){NULL}) == REEL_E_INVALID,
          "0 steps accepted");
    backend_free(be);
    return check_done();
}
