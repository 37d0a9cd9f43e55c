/* Test harness shared by the CPU and GPU tests: checks that report file:line and keep going,
 * fresh random inputs (the seed is printed so a failure can be replayed with REEL_TEST_SEED),
 * relative L2 error, and a private temporary folder per test program.
 * A test's main ends with `return check_done();` (0 pass, 1 fail, 77 skipped). */
#ifndef REEL_TEST_CHECK_H
#define REEL_TEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dit/backend.h"

extern int check_failures;
extern int check_count;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        check_count++;                                                          \
        if (!(cond)) {                                                          \
            check_failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* Asserts a reel call returned REEL_OK, printing its message otherwise. */
#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        int check_st_ = (expr);                                                 \
        CHECK(check_st_ == 0, "%s -> %d: %s", #expr, check_st_, err_msg());     \
    } while (0)

/* Seeds from REEL_TEST_SEED or the clock, prints it; call once at the start of main. */
uint64_t check_seed(const char *test_name);
uint64_t check_rand_u64(void);
double check_rand_uniform(double lo, double hi);
double check_rand_normal(void);
void check_fill_uniform(float *x, size_t n, float lo, float hi);
void check_fill_normal(float *x, size_t n, float stddev);

/* ||a - b|| / ||b|| over n values (b is the reference); NaN in either gives +inf. */
double check_rel_l2(const float *a, const float *b, size_t n);
double check_rel_l2_d(const float *a, const double *b, size_t n);

/* A fresh folder for this test program's files (under REEL_TEST_TMP or /tmp), path joined. */
const char *check_tmpdir(void);
const char *check_path(const char *name); /* static buffer: tmpdir/name */
/* Entries of a folder, . and .. not counted; -1 if it cannot be opened. */
int check_count_entries(const char *dir);

/* GPU tests: returns a CUDA backend, or NULL after printing why the test is skipped. */
backend *check_cuda_backend(void);

int check_done(void);
int check_skip(const char *why);

#endif
