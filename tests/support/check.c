#include "check.h"

#include "dit/error.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int check_failures;
int check_count;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static const char *test_name_ = "test";

uint64_t check_seed(const char *test_name)
{
    test_name_ = test_name;
    const char *env = getenv("REEL_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (seed == 0)
        seed = 1;
    rng_state = seed;
    printf("%s: seed %llu (replay with REEL_TEST_SEED=%llu)\n", test_name, (unsigned long long)seed,
           (unsigned long long)seed);
    return seed;
}

uint64_t check_rand_u64(void)
{
    /* xorshift64*: plenty for test data, identical on every machine for a given seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

double check_rand_uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(check_rand_u64() >> 11) / 9007199254740992.0);
}

double check_rand_normal(void)
{
    double u1 = check_rand_uniform(1e-300, 1.0), u2 = check_rand_uniform(0.0, 1.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void check_fill_uniform(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)check_rand_uniform(lo, hi);
}

void check_fill_normal(float *x, size_t n, float stddev)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(stddev * check_rand_normal());
}

double check_rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    if (isnan(num) || isnan(den))
        return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double check_rel_l2_d(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    if (isnan(num) || isnan(den))
        return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

const char *check_tmpdir(void)
{
    static char dir[512];
    if (dir[0])
        return dir;
    const char *base = getenv("REEL_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(dir, sizeof dir, "%s/%s.XXXXXX", base, test_name_);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    return dir;
}

int check_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

const char *check_path(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", check_tmpdir(), name);
    return path;
}

backend *check_cuda_backend(void)
{
    backend *be = NULL;
    if (backend_cuda_create(0, &be) < 0) {
        printf("skipped: no CUDA backend (%s)\n", err_msg());
        return NULL;
    }
    return be;
}

int check_done(void)
{
    if (check_failures) {
        printf("%s: %d of %d checks FAILED\n", test_name_, check_failures, check_count);
        return 1;
    }
    printf("%s: all %d checks passed\n", test_name_, check_count);
    return 0;
}

int check_skip(const char *why)
{
    printf("%s: skipped: %s\n", test_name_, why);
    return 77;
}
