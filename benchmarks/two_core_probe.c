/* Can the two cores of this machine share one small training step?
 *
 * A probe, not part of skmlp: built and run by benchmarks/two_core_probe.py,
 * which links it to SciPy's OpenBLAS (the BLAS skmlp's kernels call) and
 * writes benchmarks/results/two-core-probe.md. It measures
 *
 *   1. the hand-off: one thread raises a flag, a spinning second thread
 *      answers it (a round trip, the least any split of a step pays twice);
 *   2. moving data between the cores: one thread writes n doubles, the other
 *      reads them and answers (a round trip);
 *   3. the step of benchmark case 2 in float64 (64-100-10, batch 32: the five
 *      matrix products, ReLU, its derivative and a plain SGD update of both
 *      weight matrices), per step,
 *        a. in one thread;
 *        b. in two threads, each owning half of the hidden units (48 and 52)
 *           in matrices of its own (a blocked layout: no cache line is
 *           written by both threads); the only exchanges are the output
 *           layer's partial sums (32 x 10) and its error (32 x 10);
 *        c. the same split over shared row-major matrices, the layout of
 *           skmlp's parameter vector and of its activations (rows padded to
 *           104 doubles, split at column 48, so no cache line is written by
 *           both threads: only neighbouring lines are);
 *        d. whole steps in both threads at once, each on data of its own
 *           (nothing exchanged): the time of one thread's steps, which
 *           shows whether the two cores slow each other down at all.
 *
 * The second thread spins between tasks (as OpenBLAS's threads do); the
 * first hands a task over by bumping a counter. BLAS runs one thread.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
void scipy_cblas_dgemm(int, int, int, int, int, int, double, const double *, int,
                       const double *, int, double, double *, int);
void scipy_openblas_set_num_threads(int);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double *alloc(size_t n, double fill)
{
    double *p = aligned_alloc(128, ((n * sizeof(double) + 127) / 128) * 128);
    for (size_t i = 0; i < n; i++)
        p[i] = fill * (double)((i * 7919) % 1000 - 500) / 500.0;
    return p;
}

/* ---- 1 and 2: hand-off and transfer ------------------------------------ */

static atomic_int turn;
static double *buf;
static int buf_n, rounds;

static void *answer(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != 1)
            __builtin_ia32_pause();
        double s = 0;
        for (int j = 0; j < buf_n; j++)
            s += buf[j];
        buf[0] += s * 0;
        atomic_store_explicit(&turn, 0, memory_order_release);
    }
    return NULL;
}

static double round_trip_us(int n, int n_rounds)
{
    pthread_t th;
    buf_n = n;
    rounds = n_rounds;
    buf = alloc(n > 0 ? n : 1, 1);
    atomic_store(&turn, 0);
    pthread_create(&th, NULL, answer, NULL);
    double t0 = now();
    for (int i = 0; i < rounds; i++) {
        for (int j = 0; j < n; j++)
            buf[j] += 1;
        atomic_store_explicit(&turn, 1, memory_order_release);
        while (atomic_load_explicit(&turn, memory_order_acquire) != 0)
            __builtin_ia32_pause();
    }
    double dt = (now() - t0) / rounds * 1e6;
    pthread_join(th, NULL);
    free(buf);
    return dt;
}

/* ---- 3: the step -------------------------------------------------------- */

enum { B = 32, IN = 64, H = 100, OUT = 10, SPLIT = 48, LD_SHARED = 104 };

/* One thread's view of its hidden units lo..hi: pointers to column lo of the
 * (fan_in x units) / (batch x units) matrices with leading dimension ld, and
 * to row lo of the (units x OUT) ones. */
typedef struct {
    int n, ld, n_steps;
    double *W1, *Z1, *D1, *G1;   /* columns lo..hi */
    double *W2, *G2;             /* rows lo..hi */
    double *Z2;                  /* this thread's partial output (B x OUT) */
    const double *X;             /* batch (B x IN), read by both halves */
    double *D2;                  /* output error (B x OUT), read by both */
    double *Z2_sum;
} Part;

static void forward(const Part *p)
{
    scipy_cblas_dgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, B, p->n, IN, 1.0, p->X, IN, p->W1, p->ld,
                      0.0, p->Z1, p->ld);
    for (int r = 0; r < B; r++)
        for (int j = 0; j < p->n; j++) {
            double v = p->Z1[r * p->ld + j];
            p->Z1[r * p->ld + j] = v < 0 ? 0 : v;
        }
    scipy_cblas_dgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, B, OUT, p->n, 1.0, p->Z1, p->ld, p->W2,
                      OUT, 0.0, p->Z2, OUT);
}

static void output_error(int parts, const Part *ps)
{
    for (int i = 0; i < B * OUT; i++) {
        double z = ps[0].Z2[i];
        for (int k = 1; k < parts; k++)
            z += ps[k].Z2[i];
        ps[0].Z2_sum[i] = z;
        ps[0].D2[i] = 1e-3 * z;
    }
}

static void backward(const Part *p)
{
    scipy_cblas_dgemm(ROW_MAJOR, TRANS, NO_TRANS, p->n, OUT, B, 1.0, p->Z1, p->ld, p->D2, OUT,
                      0.0, p->G2, OUT);
    scipy_cblas_dgemm(ROW_MAJOR, NO_TRANS, TRANS, B, p->n, OUT, 1.0, p->D2, OUT, p->W2, OUT,
                      0.0, p->D1, p->ld);
    for (int r = 0; r < B; r++)
        for (int j = 0; j < p->n; j++)
            if (p->Z1[r * p->ld + j] == 0)
                p->D1[r * p->ld + j] = 0;
    scipy_cblas_dgemm(ROW_MAJOR, TRANS, NO_TRANS, IN, p->n, B, 1.0, p->X, IN, p->D1, p->ld,
                      0.0, p->G1, p->ld);
    for (int i = 0; i < IN; i++)
        for (int j = 0; j < p->n; j++)
            p->W1[i * p->ld + j] -= 1e-6 * p->G1[i * p->ld + j];
    for (int i = 0; i < p->n * OUT; i++)
        p->W2[i] -= 1e-6 * p->G2[i];
}

static atomic_int task, finished, stop;
static Part helper_part;

static void *helper(void *arg)
{
    (void)arg;
    int seen = 0;
    for (;;) {
        int t;
        while ((t = atomic_load_explicit(&task, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&stop, memory_order_relaxed))
                return NULL;
            __builtin_ia32_pause();
        }
        seen = t;
        if (t & 1)
            forward(&helper_part);
        else
            backward(&helper_part);
        atomic_fetch_add_explicit(&finished, 1, memory_order_release);
    }
}

static void both(int t, const Part *mine)
{
    int before = atomic_load_explicit(&finished, memory_order_relaxed);
    atomic_store_explicit(&task, t, memory_order_release);
    if (t & 1)
        forward(mine);
    else
        backward(mine);
    while (atomic_load_explicit(&finished, memory_order_acquire) == before)
        __builtin_ia32_pause();
}

static double step_us(int threads, Part *ps, int steps)
{
    double t0;
    if (threads == 1) {
        t0 = now();
        for (int s = 0; s < steps; s++) {
            forward(&ps[0]);
            output_error(1, ps);
            backward(&ps[0]);
        }
        return (now() - t0) / steps * 1e6;
    }
    pthread_t th;
    helper_part = ps[1];
    atomic_store(&task, 0);
    atomic_store(&finished, 0);
    atomic_store(&stop, 0);
    pthread_create(&th, NULL, helper, NULL);
    int t = 0;
    t0 = now();
    for (int s = 0; s < steps; s++) {
        both(++t, &ps[0]);
        output_error(2, ps);
        both(++t, &ps[0]);
    }
    double dt = (now() - t0) / steps * 1e6;
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    return dt;
}

static void *whole_steps(void *arg)
{
    Part *p = arg;
    for (int s = 0; s < p->n_steps; s++) {
        forward(p);
        output_error(1, p);
        backward(p);
    }
    return NULL;
}

static double independent_us(Part *mine, Part *other, int steps)
{
    pthread_t th;
    mine->n_steps = other->n_steps = steps;
    pthread_create(&th, NULL, whole_steps, other);
    double t0 = now();
    whole_steps(mine);
    double dt = (now() - t0) / steps * 1e6;
    pthread_join(th, NULL);
    return dt;
}

static void inputs(Part *p, const double *X, double *D2, double *Z2_sum)
{
    p->X = X;
    p->D2 = D2;
    p->Z2_sum = Z2_sum;
}

static void whole(Part *p)
{
    p->n = H;
    p->ld = H;
    p->W1 = alloc(IN * H, 0.1);
    p->Z1 = alloc(B * H, 0);
    p->D1 = alloc(B * H, 0);
    p->G1 = alloc(IN * H, 0);
    p->W2 = alloc(H * OUT, 0.1);
    p->G2 = alloc(H * OUT, 0);
    p->Z2 = alloc(B * OUT, 0);
}

static void blocked(Part *ps)
{
    for (int k = 0; k < 2; k++) {
        Part *p = &ps[k];
        p->n = k == 0 ? SPLIT : H - SPLIT;
        p->ld = p->n;
        p->W1 = alloc(IN * p->n, 0.1);
        p->Z1 = alloc(B * p->n, 0);
        p->D1 = alloc(B * p->n, 0);
        p->G1 = alloc(IN * p->n, 0);
        p->W2 = alloc(p->n * OUT, 0.1);
        p->G2 = alloc(p->n * OUT, 0);
        p->Z2 = alloc(B * OUT, 0);
    }
}

static void shared(Part *ps)
{
    double *W1 = alloc(IN * LD_SHARED, 0.1), *Z1 = alloc(B * LD_SHARED, 0);
    double *D1 = alloc(B * LD_SHARED, 0), *G1 = alloc(IN * LD_SHARED, 0);
    double *W2 = alloc(H * OUT, 0.1), *G2 = alloc(H * OUT, 0);
    for (int k = 0; k < 2; k++) {
        Part *p = &ps[k];
        int lo = k == 0 ? 0 : SPLIT;
        p->n = k == 0 ? SPLIT : H - SPLIT;
        p->ld = LD_SHARED;
        p->W1 = W1 + lo;
        p->Z1 = Z1 + lo;
        p->D1 = D1 + lo;
        p->G1 = G1 + lo;
        p->W2 = W2 + lo * OUT;
        p->G2 = G2 + lo * OUT;
        p->Z2 = alloc(B * OUT, 0);
    }
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 5, steps = argc > 2 ? atoi(argv[2]) : 20000;
    scipy_openblas_set_num_threads(1);
    const double *X = alloc(B * IN, 1);
    double *D2 = alloc(B * OUT, 0), *Z2_sum = alloc(B * OUT, 0);
    Part one[1], split_blocked[2], split_shared[2], apart[2];
    whole(one);
    blocked(split_blocked);
    shared(split_shared);
    whole(&apart[0]);
    whole(&apart[1]);
    inputs(&one[0], X, D2, Z2_sum);
    for (int k = 0; k < 2; k++) {
        inputs(&split_blocked[k], X, D2, Z2_sum);
        inputs(&split_shared[k], X, D2, Z2_sum);
        inputs(&apart[k], alloc(B * IN, 1), alloc(B * OUT, 0), alloc(B * OUT, 0));
    }
    for (int r = 0; r < repeats; r++) {
        printf("handoff_us %.3f\n", round_trip_us(0, steps));
        int sizes[] = {320, 3200, 6400};
        for (int i = 0; i < 3; i++)
            printf("transfer_us %d %.3f\n", sizes[i], round_trip_us(sizes[i], steps));
        printf("step_us one_thread %.3f\n", step_us(1, one, steps));
        printf("step_us two_threads_blocked %.3f\n", step_us(2, split_blocked, steps));
        printf("step_us two_threads_shared %.3f\n", step_us(2, split_shared, steps));
        printf("step_us two_threads_apart %.3f\n", independent_us(&apart[0], &apart[1], steps));
        fflush(stdout);
    }
    return 0;
}
