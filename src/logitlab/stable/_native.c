/* float32 CPU kernels of logitlab.stable's compiled fast paths: the BCE loss sum and
 * gradient in one pass, and the softmax cross-entropy passes (at the end of this file).
 *
 * Compiled at first use by logitlab/stable/_native.py with the machine's C compiler
 * (-O3 -march=native -fno-math-errno -fno-trapping-math: the last lets the compiler
 * turn the selects below into vector blends; nothing is reassociated).  The compiler
 * may contract a * b + c into one fused multiply-add: every bound below holds for
 * either (a fused operation rounds once where the two apart round twice).
 *
 * For each element, in float64 (u = 2**-53):
 *   e     = exp(-|z|)                         within 4 u (relative), see exp_neg
 *   loss  = (max(z, 0) - z y) + log1p(e)      within 10 u (relative), see bce_block
 *   v     = (sigma(z) - y) gs                 within the bound written in bce_block
 * where gs is the incoming gradient over the mean's divisor.  v is rounded to float32
 * once; an element whose error interval holds a float32 rounding boundary is written as
 * NaN and counted (a near-tie, recomputed exactly by the caller).  An element whose
 * logit is not finite or whose target is outside [0, 1] is counted as declined: the
 * caller then discards everything and runs its general kernels.
 *
 * The bounds are proved in the comments and checked against mpmath by
 * tests/stable/test_native.py.
 */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define U 1.1102230246251565e-16 /* 2**-53 */
#define BLOCK 512

/* exp(-a) for float64 a >= 0 (a float32 magnitude widened), within 4 u (relative) for
 * a <= 708 and 0 beyond (where exp(-a) < 2**-1021: an absolute error the callers'
 * 2**-1000 terms cover).
 *
 * a = k log 2 + r with k = round(a / log 2) <= 1021 and |r| <= 0.3466 (Cody and Waite):
 * LN2_HI has 32 significant bits, so k LN2_HI is exact and a - k LN2_HI is exact
 * (Sterbenz: a and k LN2_HI are within a factor 2 for k >= 1); subtracting k LN2_LO
 * rounds once (u |r|, at most 0.35 u absolute, so 0.35 u relative in exp(-r)), and
 * LN2_HI + LN2_LO is within 2**-89 of log 2 (k times that: below 0.001 u).
 * exp(x), x = -r, is its Taylor polynomial to x**13 / 13!, summed as
 * p = (1 + x) + x**2 Q(x): the remainder is below 0.3466**14 / 14! * e**0.3466 < 0.06 u.
 * 1 + x rounds within u p (|1 + x| <= p) and the last addition within u p.  Q, Estrin's
 * scheme on the coefficients 1 / j! (each within u), has four levels of rounding, each
 * within u of a partial sum that is at most Q: 5 u of Q; with the roundings of x**2
 * and of x**2 Q, and x**2 Q <= 0.095 p, all of it is below 0.7 u of p.
 * Multiplying by 2**-k is exact (the result stays normal).  In all:
 * 0.35 + 0.06 + 1 + 1 + 0.7 < 4 u.
 */
static inline double exp_neg(double a) {
    const double LOG2E = 1.4426950408889634;
    const double LN2_HI = 6.93147180369123816490e-01; /* 0x3FE62E42FEE00000 */
    const double LN2_LO = 1.90821492927058770002e-10; /* 0x3DEA39EF35793C76 */
    const double MAGIC = 6755399441055744.0;          /* 1.5 * 2**52: rounds to integer */
    double aa = a > 708.0 ? 708.0 : a;
    double kk = aa * LOG2E + MAGIC;
    double k = kk - MAGIC;
    int64_t kbits;
    memcpy(&kbits, &kk, sizeof kbits);
    double x = -((aa - k * LN2_HI) - k * LN2_LO);
    double x2 = x * x, x4 = x2 * x2, x8 = x4 * x4;
    double q0 = 1.0 / 2 + x * (1.0 / 6);
    double q1 = 1.0 / 24 + x * (1.0 / 120);
    double q2 = 1.0 / 720 + x * (1.0 / 5040);
    double q3 = 1.0 / 40320 + x * (1.0 / 362880);
    double q4 = 1.0 / 3628800 + x * (1.0 / 39916800);
    double q5 = 1.0 / 479001600 + x * (1.0 / 6227020800.0);
    double r0 = q0 + x2 * q1, r1 = q2 + x2 * q3, r2 = q4 + x2 * q5;
    double q = (r0 + x4 * r1) + x8 * r2;
    double p = (1.0 + x) + x2 * q;
    /* 2**-k from its bits: k is the low bits of kk (0 <= k <= 1021) */
    int64_t sbits = (int64_t)(1023 - (kbits & 0xfffff)) << 52;
    double scale;
    memcpy(&scale, &sbits, sizeof scale);
    return a > 708.0 ? 0.0 : p * scale;
}

/* log1p(e) for float64 e in [0, 1] within 5 u (relative) plus 2**-1072: the series of
 * logitlab.stable._bce_compiled.log1p_unit (whose docstring has the proof), with
 * P = 1 + t Q(t) and Q by Estrin's scheme instead of Horner's: Q's four levels of
 * rounding (5 u of Q, with its coefficients) reach P damped by t Q <= 0.014, and the
 * last addition rounds within u: P stays within the proof's 1.3 u. */
static inline double log1p_unit(double e) {
    const double LN2 = 0.6931471805599453;
    int upper = e >= 0.5;
    double s = (upper ? e - 1.0 : e) / (upper ? e + 3.0 : e + 2.0);
    double t = s * s;
    double t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    double q0 = 1.0 / 3 + t * (1.0 / 5), q1 = 1.0 / 7 + t * (1.0 / 9);
    double q2 = 1.0 / 11 + t * (1.0 / 13), q3 = 1.0 / 15 + t * (1.0 / 17);
    double q4 = 1.0 / 19 + t * (1.0 / 21);
    double r0 = q0 + t2 * q1, r1 = q2 + t2 * q3;
    double q = (r0 + t4 * r1) + t8 * q4;
    double poly = 1.0 + t * q;
    double l = 2.0 * (s * poly);
    return upper ? l + LN2 : l;
}

/* One block of at most BLOCK elements: the losses into loss[], the gradient into grad[]
 * when want_grad (a compile-time constant after inlining), the counts added.
 *
 * Loss: m - z y rounds once (z y is exact: two float32 factors); log1p(e) is within
 * 4 u + 5 u (exp's error passes through log1p at most as is, e / (1 + e) <= log1p(e));
 * the sum of the two non-negative terms rounds once: within 10 u.
 *
 * Gradient: r = 1 / (1 + e) is within 4 u (1 + e: u, e's 4 u scaled by e / (1 + e) <=
 * 1/2: 2 u, the division: u) and e r within 9 u, relative; both are at most 1, so
 * sigma(z) and sigma(-z) are within 9 u absolute.  For y 0 or 1, d = sigma(z) or
 * -sigma(-z) is within 9 u relative; otherwise d = sigma(z) - y is within 9 u + u |d|.
 * With gs within u of g / N and one rounding of v = d gs: |gs| 9.5 u + 3 u |v| (soft)
 * or 11 u |v| (hard targets).  The bound used, |gs| (12 u + 2**-1020) + 16 u |v| +
 * 2**-1000, covers both and float64 underflow.
 */
static inline __attribute__((always_inline)) void bce_block(
    const float *restrict z, const float *restrict y, float *restrict grad,
    double *restrict loss, int64_t m, double gs, int want_grad,
    int64_t *declined, int64_t *near) {
    const double ags = fabs(gs);
    const double soft_b = ags * (12 * U + 0x1p-1020) + 0x1p-1000;
    const double hard_b = ags * 0x1p-1020 + 0x1p-1000;
    int32_t dec = 0, nr = 0; /* at most BLOCK each */
    for (int64_t i = 0; i < m; i++) {
        float zf = z[i], yf = y[i];
        double z64 = zf, y64 = yf;
        int ok = (fabsf(zf) <= 3.40282346638528859811704183484516925e38f) & (yf >= 0.0f) &
                 (yf <= 1.0f);
        dec += !ok;
        double e = exp_neg(fabs(z64));
        double l = ((z64 >= 0.0 ? z64 : 0.0) - z64 * y64) + log1p_unit(e);
        loss[i] = ok ? l : 0.0;
        if (want_grad) {
            double r = 1.0 / (1.0 + e);
            double er = e * r;
            double sz = z64 >= 0.0 ? r : er;
            double smz = z64 >= 0.0 ? er : r;
            double d = y64 == 1.0 ? -smz : sz - y64;
            double v = d * gs;
            int hard = (y64 == 0.0) | (y64 == 1.0);
            double b = (hard ? hard_b : soft_b) + fabs(v) * (16 * U);
            float lo = (float)(v - b), hi = (float)(v + b);
            int n_ = lo != hi;
            nr += n_;
            grad[i] = n_ ? NAN : (float)v;
        }
    }
    *declined += dec;
    *near += nr;
}

static inline __attribute__((always_inline)) void bce_run(
    const float *z, const float *y, float *grad, int64_t n, double gs, int want_grad,
    double *out_sum, int64_t *out_declined, int64_t *out_near, int64_t *index,
    int64_t capacity) {
    double loss[BLOCK] __attribute__((aligned(64)));
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t declined = 0, near = 0, found = 0;
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t m = n - start < BLOCK ? n - start : BLOCK;
        int64_t before = near;
        bce_block(z + start, y + start, want_grad ? grad + start : grad, loss, m, gs,
                  want_grad, &declined, &near);
        if (want_grad && near != before)
            for (int64_t j = 0; j < m && found < capacity; j++)
                if (isnan(grad[start + j])) index[found++] = start + j;
        int64_t j = 0;
        for (; j + 8 <= m; j += 8)
            for (int q = 0; q < 8; q++) acc[q] += loss[j + q];
        for (; j < m; j++) acc[0] += loss[j];
    }
    double total = 0.0;
    for (int q = 0; q < 8; q++) total += acc[q];
    *out_sum = total;
    *out_declined = declined;
    *out_near = near;
}

/* The loss sum and, when grad is not NULL, the gradient for incoming gs, with the
 * indices of the first `capacity` near-ties written to index[] (all of them when
 * *out_near <= capacity). */
void logitlab_bce_f32(const float *z, const float *y, float *grad, int64_t n, double gs,
                      double *out_sum, int64_t *out_declined, int64_t *out_near,
                      int64_t *index, int64_t capacity) {
    if (grad)
        bce_run(z, y, grad, n, gs, 1, out_sum, out_declined, out_near, index, capacity);
    else
        bce_run(z, y, grad, n, gs, 0, out_sum, out_declined, out_near, index, 0);
}

/* For the tests: exp_neg and log1p_unit elementwise. */
void logitlab_exp_neg(const double *a, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = exp_neg(a[i]);
}

void logitlab_log1p_unit(const double *e, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = log1p_unit(e[i]);
}


/* ---- softmax cross-entropy, float32 logits, class-index targets, no label smoothing ----
 *
 * The C passes of logitlab/stable/_softmax_fast.py (whose docstring has the formulas and
 * the bounds), for rows of C classes with maximum m (float64) at column k:
 *
 *   e_c = exp(-(m - z_c)) = exp(d_c)    within 4 u + |d_c| u (exp_neg and the rounding of
 *                                        m - z_c), at most (2.1 + 3 max(|d_c|, 0.95)) u:
 *                                        the torch path's bound with the spread floored
 *                                        at 0.95 (the caller floors it)
 *   r = sum_{c != k} e_c                 folded pairwise exactly as pairwise_ does
 *                                        (b[i] += b[i + h], h = ceil(w / 2)): the same
 *                                        ceil(log2 C) levels
 *
 * and, for the backward, v_j = c e_j rounded as the torch path rounds it: lo =
 * float(v (1 - kr)) and hi = float(v (1 + kr)) with the row's relative bound kr; lo is
 * written, and (row, j) is reported where lo != hi (not at the target and arg-max
 * columns, whose values the caller computes from bulk = (c e_t, c e_k)).
 */

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f splat8(float x) { return (v8f){x, x, x, x, x, x, x, x}; }

/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros) */
static inline v8f select8(v8i mask, v8f a, v8f b) {
    return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask));
}

/* Per row of [0, rows): m[i], the largest logit (as torch.max, ignoring none: a row
 * holding a NaN has nan[i] = 1 and the rest of its outputs are not used), k[i], its
 * first column, r[i] = sum_{c != k} exp(z_c - m') with m' = m, or 0 for a row of -inf
 * only, and spread[i] = min(m' - min_c z_c, tail).  buf holds C doubles. */
void logitlab_softmax_rows_f32(const float *z, int64_t rows, int64_t C, double tail,
                               double *m, int64_t *k, int64_t *nan, double *r,
                               double *spread, double *buf) {
    for (int64_t i = 0; i < rows; i++) {
        const float *zr = z + i * C;
        /* extremes and a sum in eight lanes, written with vector types (the compiler
         * kept the same loop on scalars scalar, and a reduction in the exp loop would
         * keep that loop scalar); the sum is NaN where a NaN is */
        v8f high = splat8(-INFINITY), low = splat8(INFINITY), sum = splat8(0.0f);
        int64_t c = 0;
        for (; c + 8 <= C; c += 8) {
            v8f v;
            memcpy(&v, zr + c, sizeof v);
            high = select8(v > high, v, high);
            low = select8(v < low, v, low);
            sum += v;
        }
        float hs[8], ls[8], ss[8];
        memcpy(hs, &high, sizeof hs);
        memcpy(ls, &low, sizeof ls);
        memcpy(ss, &sum, sizeof ss);
        for (; c < C; c++) {
            float v = zr[c];
            hs[0] = v > hs[0] ? v : hs[0];
            ls[0] = v < ls[0] ? v : ls[0];
            ss[0] += v;
        }
        float largest = hs[0], smallest = ls[0], total = ss[0];
        for (int q = 1; q < 8; q++) {
            largest = hs[q] > largest ? hs[q] : largest;
            smallest = ls[q] < smallest ? ls[q] : smallest;
            total += ss[q];
        }
        int64_t has_nan = 0;
        if (isnan(total)) /* a NaN, or +inf and -inf together */
            for (c = 0; c < C; c++) has_nan |= isnan(zr[c]);
        /* the first column holding it, eight at a time */
        int64_t first = -1;
        for (c = 0; c + 8 <= C && first < 0; c += 8) {
            v8f v;
            memcpy(&v, zr + c, sizeof v);
            v8i hit = v == splat8(largest);
            int32_t h[8];
            memcpy(h, &hit, sizeof h);
            if (h[0] | h[1] | h[2] | h[3] | h[4] | h[5] | h[6] | h[7])
                for (int q = 7; q >= 0; q--)
                    if (h[q]) first = c + q;
        }
        for (; c < C && first < 0; c++)
            if (zr[c] == largest) first = c;
        if (first < 0) first = 0; /* a row of NaN only (declined) */
        m[i] = C > 0 ? (double)largest : -INFINITY;
        k[i] = first;
        nan[i] = has_nan;
        const double mi = largest == -INFINITY ? 0.0 : (double)largest;
        double widest = C > 0 ? mi - (double)smallest : 0.0;
        for (c = 0; c < C; c++) buf[c] = exp_neg(mi - (double)zr[c]);
        if (C > 0) buf[first] = 0.0;
        int64_t w = C;
        while (w > 1) {
            int64_t h = (w + 1) / 2;
            for (int64_t j = 0; j < w - h; j++) buf[j] += buf[j + h];
            w = h;
        }
        r[i] = C > 0 ? buf[0] : 0.0;
        spread[i] = widest < tail ? widest : tail;
    }
}

/* The gradient's bulk for rows [0, rows): out = lo (see above), bulk[2 i] = c e_t and
 * bulk[2 i + 1] = c e_k; the flat indices (i C + j, of this part) where lo != hi are
 * written to flagged[] up to capacity, their count to *n_flagged (all of them counted:
 * more than capacity means the caller searches itself). */
void logitlab_softmax_grad_f32(const float *z, int64_t rows, int64_t C, const double *m,
                               const double *c, const double *kr, const int64_t *t,
                               const int64_t *k, float *out, double *bulk,
                               int64_t *flagged, int64_t capacity, int64_t *n_flagged) {
    int64_t found = 0;
    for (int64_t i = 0; i < rows; i++) {
        const float *zr = z + i * C;
        float *orow = out + i * C;
        const double mi = m[i], ci = c[i], low = 1.0 - kr[i], high = 1.0 + kr[i];
        const int64_t ti = t[i], ki = k[i];
        int32_t apart = 0; /* any element apart (the rescan leaves out t and k) */
        for (int64_t j = 0; j < C; j++) {
            double v = ci * exp_neg(mi - (double)zr[j]);
            float lo = (float)(v * low), hi = (float)(v * high);
            orow[j] = lo;
            apart |= lo != hi;
        }
        bulk[2 * i] = ci * exp_neg(mi - (double)zr[ti]);
        bulk[2 * i + 1] = ci * exp_neg(mi - (double)zr[ki]);
        if (apart) {
            for (int64_t j = 0; j < C; j++) {
                double v = ci * exp_neg(mi - (double)zr[j]);
                if ((float)(v * low) != (float)(v * high) && j != ti && j != ki) {
                    if (found < capacity) flagged[found] = i * C + j;
                    found++;
                }
            }
        }
    }
    *n_flagged = found;
}
