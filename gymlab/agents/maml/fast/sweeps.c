/* The Gaussian MLP's R-operator sweeps of gaussian_mlp.py, fused and run tile by tile.
 *
 * A KL Hessian product of MAML-TRPO is a chain of sweeps over every step of every task,
 * each a few matrix products and elementwise passes per layer. Run one torch op at a time,
 * each op reads and writes whole [tasks, steps, width] tensors (megabytes), so the sweeps
 * stream through memory many times; here each sweep runs over tiles of TILE steps of one
 * task at a time, so its intermediates stay in the core's cache, and the matrix products
 * are kernels.h's register-blocked AVX2/FMA kernel, shaped for these tiles (thin
 * observations included). Same arithmetic as the torch path; sums are taken in another
 * order, so the numbers agree to float32 rounding (tested in tests/test_maml_native.py).
 *
 * The layout of every array is kernels.h's; the passes (forward, backward, the first
 * layer's sums) are in passes.c. Built by native.py.
 */
#include "kernels.h"

/* Forward sweep on a tile: R{h_l} of every hidden layer and R{mu} (in s->z), steps n0..,
 * task k: R{z_l} = h_{l-1} dW_l^T + R{h_{l-1}} W_l^T + db_l, R{h_l} = act'(z_l) R{z_l}. */
static void tangent(const Shape *sh, int k, long rows, long n0, int m,
                    const float *const *inputs, const float *const *slopes,
                    const float *const *weights, const float *const *weights_t,
                    const float *const *d_weights, const float *const *d_weights_t,
                    const float *const *d_biases, Scratch *s) {
    const float *r_in = NULL;
    for (int l = 0; l < sh->layers; l++) {
        int in = sh->width[l], out = sh->width[l + 1];
        float *z = l + 1 < sh->layers ? s->r_input[l] : s->z;
        const float *x = inputs[l] + ((long)k * rows + n0) * in;
        long at = (long)k * in * out;
        times_transposed(m, out, in, x, d_weights[l] + at, d_weights_t[l] + at, z, 0);
        if (r_in) times_transposed(m, out, in, r_in, weights[l] + at, weights_t[l] + at, z, 1);
        const float *db = d_biases[l] + (long)k * out;
        const float *slope = l + 1 < sh->layers ? slopes[l] + ((long)k * rows + n0) * out : NULL;
        for (int n = 0; n < m; n++) {
            float *zn = z + (long)n * out;
            if (slope)
                for (int o = 0; o < out; o++) zn[o] = (zn[o] + db[o]) * slope[(long)n * out + o];
            else
                for (int o = 0; o < out; o++) zn[o] += db[o];
        }
        r_in = z;
    }
}

/* Task k's terms of H w that FirstLayer's sums hold (gaussian_mlp.FirstLayer), added to
 * a product made without them: with dW~_0 = [dW_0, db_0], g_w[1] += T dW~_0 and
 * [g_w[0], g_b[0]] += T dW_1 + U dW~_0. */
static void add_first_layer_terms(const int *width, int k, const float *first_t,
                                  const float *first_u, const float *const *d_weights,
                                  const float *const *d_biases, float *const *g_w,
                                  float *const *g_b) {
    int d = width[0], d1 = d + 1, h0 = width[1], h1 = width[2];
    const float *t = first_t + (long)k * h1 * h0 * d1;  /* [o, j, i] */
    const float *u = first_u ? first_u + (long)k * h0 * d1 * d1 : NULL;  /* [j, i, i'] */
    const float *dw0 = d_weights[0] + (long)k * h0 * d, *db0 = d_biases[0] + (long)k * h0;
    const float *dw1 = d_weights[1] + (long)k * h1 * h0;
    float *gw0 = g_w[0] + (long)k * h0 * d, *gb0 = g_b[0] + (long)k * h0;
    float *gw1 = g_w[1] + (long)k * h1 * h0;
    float direction[64];  /* [dW_0, db_0] of unit j; d + 1 <= THIN_INPUT (gaussian_mlp) */
    for (int j = 0; j < h0; j++) {
        for (int i = 0; i < d; i++) direction[i] = dw0[j * d + i];
        direction[d] = db0[j];
        for (int i = 0; i < d1; i++) {
            float sum = 0;
            for (int o = 0; o < h1; o++) sum += t[((long)o * h0 + j) * d1 + i] * dw1[(long)o * h0 + j];
            if (u)
                for (int i2 = 0; i2 < d1; i2++) sum += u[((long)j * d1 + i) * d1 + i2] * direction[i2];
            if (i < d) gw0[j * d + i] += sum; else gb0[j] += sum;
        }
        for (int o = 0; o < h1; o++) {
            float sum = 0;
            for (int i = 0; i < d1; i++) sum += t[((long)o * h0 + j) * d1 + i] * direction[i];
            gw1[(long)o * h0 + j] += sum;
        }
    }
}

/* H w per task, H the Hessian of the inner loss sum_n c_n (0.5 |(a_n - mu_n) / sigma|^2 +
 * sum log sigma) at the stored pass (gaussian_mlp.inner_hessian_product). Out: per layer
 * g_w [tasks, out, in] and g_b [tasks, out], and g_log_std [tasks, A] = sum_n c_n s_n
 * (R{mu_n} + (a_n - mu_n) r), the log-std's part before its factor 2 (r: the log-std
 * direction, s = (a - mu) / sigma^2). With `first_t` (gaussian_mlp.FirstLayer's sums T,
 * and U or NULL), the terms that meet only the first layer's direction come from those. */
int hessian_product(long tasks, long rows, long layers, const int *width,
                    const float *const *inputs, const float *const *slopes,
                    const float *const *deltas, const float *const *d_hidden, long use_tanh,
                    const float *const *weights, const float *const *weights_t,
                    const float *const *d_weights, const float *const *d_weights_t,
                    const float *const *d_biases, const float *coeff, const float *inv_var,
                    const float *scaled, const float *diff, const float *r_log_std,
                    const float *first_t, const float *first_u, float *const *g_w,
                    float *const *g_b, float *g_log_std) {
    if (first_t && (layers < 2 || width[0] >= 64)) return -2;
    int held = first_t != NULL;
    Shape sh;
    Scratch s;
    int failed = prepare(layers, width, &sh, &s);
    if (failed) return failed;
    int act = width[layers];
    for (int k = 0; k < tasks; k++) {
        zero_gradients(&sh, k, g_w, g_b);
        float *g_ls = g_log_std + (long)k * act;
        memset(g_ls, 0, sizeof(float) * act);
        const float *iv = inv_var + (long)k * act, *rls = r_log_std + (long)k * act;
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            tangent(&sh, k, rows, n0, m, inputs, slopes, weights, weights_t, d_weights,
                    d_weights_t, d_biases, &s);
            /* R{dL/dmu} = c (R{mu} / sigma^2 + 2 s r) */
            float *rd = s.r_delta, *other = s.r_other;
            for (int n = 0; n < m; n++) {
                long row = (long)k * rows + n0 + n;
                float c = coeff[row];
                for (int a = 0; a < act; a++) {
                    float rmu = s.z[n * act + a], sc = scaled[row * act + a];
                    rd[n * act + a] = c * (iv[a] * rmu + 2 * sc * rls[a]);
                    g_ls[a] += c * sc * (rmu + diff[row * act + a] * rls[a]);
                }
            }
            for (int l = layers - 1; l >= 0; l--) {
                int in = width[l], out = width[l + 1];
                const float *x = inputs[l] + ((long)k * rows + n0) * in;
                float *gw = g_w[l] + (long)k * out * in;
                add_outer(m, out, in, rd, x, gw);
                add_column_sums(m, out, rd, g_b[l] + (long)k * out);
                if (l == 0) break;
                int first_held = held && l == 1;
                const float *delta = deltas[l] + ((long)k * rows + n0) * out;
                const float *r_in = s.r_input[l - 1];
                if (!first_held) add_outer(m, out, in, delta, r_in, gw);
                /* R{dL/dh_{l-1}} = R{delta_l} W_l + delta_l dW_l, then R{delta_{l-1}} =
                 * act' R{dL/dh} + curvature R{h}, the curvature dL/dh act''(z) / act'(z):
                 * -2 h dL/dh for tanh, 0 for ReLU */
                times(m, in, out, rd, weights[l] + (long)k * out * in, other, 0);
                if (!first_held)
                    times(m, in, out, delta, d_weights[l] + (long)k * out * in, other, 1);
                const float *slope = slopes[l - 1] + ((long)k * rows + n0) * in;
                if (!first_held && use_tanh) {
                    const float *h = inputs[l] + ((long)k * rows + n0) * in;
                    const float *dh = d_hidden[l - 1] + ((long)k * rows + n0) * in;
                    for (long i = 0; i < (long)m * in; i++)
                        other[i] = other[i] * slope[i] - 2 * h[i] * dh[i] * r_in[i];
                } else {
                    for (long i = 0; i < (long)m * in; i++) other[i] *= slope[i];
                }
                float *t = rd; rd = other; other = t;
            }
        }
        if (held) add_first_layer_terms(width, k, first_t, first_u, d_weights, d_biases, g_w, g_b);
    }
    free(s.block);
    return 0;
}

/* J_f^T diag(weight_n / sigma^2) J_f w per task (the log-std's part is left to the
 * caller). With P_l = d mu / d z_l per step ([A, width] for hidden layer l), J_f w =
 * sum_l P_l (h_{l-1} dW_l^T + db_l) and J_f^T y has layer l's gradient delta_l^T h_{l-1},
 * delta_l = y P_l, so each layer costs a matrix product each way, not two: P_l is a
 * constant of the product. The last hidden layer's is W_L diag(act'), made here; the
 * lower ones come in `jacobians` ([tasks, steps, A, width], hidden layers 0..layers-3). */
int jacobian_gram(long tasks, long rows, long layers, const int *width,
                  const float *const *inputs, const float *const *slopes,
                  const float *const *jacobians, const float *last_weight,
                  const float *const *d_weights, const float *const *d_weights_t,
                  const float *const *d_biases,
                  const float *step_weight, const float *inv_var, float *const *g_w,
                  float *const *g_b) {
    Shape sh;
    Scratch s;
    int failed = prepare(layers, width, &sh, &s);
    if (failed) return failed;
    int act = width[layers];
    float *r_mu = malloc(sizeof(float) * TILE * act);
    if (!r_mu) { free(s.block); return -1; }
    for (int k = 0; k < tasks; k++) {
        zero_gradients(&sh, k, g_w, g_b);
        const float *iv = inv_var + (long)k * act;
        const float *w_last = last_weight + (long)k * act * width[layers - 1];
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            memset(r_mu, 0, sizeof(float) * m * act);
            for (int l = 0; l < layers; l++) {  /* J_f w */
                int in = width[l], out = width[l + 1];
                float *u = s.z;
                long first_row = (long)k * rows + n0;
                times_transposed(m, out, in, inputs[l] + first_row * in,
                                 d_weights[l] + (long)k * in * out,
                                 d_weights_t[l] + (long)k * in * out, u, 0);
                const float *db = d_biases[l] + (long)k * out;
                for (int n = 0; n < m; n++)
                    for (int o = 0; o < out; o++) u[(long)n * out + o] += db[o];
                if (l == layers - 1) {
                    for (long i = 0; i < (long)m * act; i++) r_mu[i] += u[i];
                } else if (l == layers - 2) {
                    const float *slope = slopes[l] + first_row * out;
                    for (long i = 0; i < (long)m * out; i++) u[i] *= slope[i];
                    for (int n = 0; n < m; n++)
                        for (int a = 0; a < act; a++)
                            r_mu[n * act + a] += dot(out, w_last + (long)a * out, u + (long)n * out);
                } else {
                    const float *jac = jacobians[l] + first_row * act * out;
                    for (int n = 0; n < m; n++)
                        for (int a = 0; a < act; a++)
                            r_mu[n * act + a] += dot(out, jac + ((long)n * act + a) * out,
                                                     u + (long)n * out);
                }
            }
            for (int n = 0; n < m; n++) {  /* y = M J_f w */
                float c = step_weight[(long)k * rows + n0 + n];
                for (int a = 0; a < act; a++) r_mu[n * act + a] *= c * iv[a];
            }
            for (int l = 0; l < layers; l++) {  /* J_f^T y */
                int in = width[l], out = width[l + 1];
                long first_row = (long)k * rows + n0;
                const float *delta = r_mu;
                if (l < layers - 1) {
                    float *d = s.r_delta;
                    memset(d, 0, sizeof(float) * m * out);
                    const float *jac = l == layers - 2 ? NULL : jacobians[l] + first_row * act * out;
                    for (int n = 0; n < m; n++) {
                        float *dn = d + (long)n * out;
                        for (int a = 0; a < act; a++) {
                            float y = r_mu[n * act + a];
                            const float *p = jac ? jac + ((long)n * act + a) * out
                                                 : w_last + (long)a * out;
                            for (int o = 0; o < out; o++) dn[o] += y * p[o];
                        }
                        if (!jac) {
                            const float *slope = slopes[l] + (first_row + n) * out;
                            for (int o = 0; o < out; o++) dn[o] *= slope[o];
                        }
                    }
                    delta = d;
                }
                add_outer(m, out, in, delta, inputs[l] + first_row * in, g_w[l] + (long)k * out * in);
                add_column_sums(m, out, delta, g_b[l] + (long)k * out);
            }
        }
    }
    free(r_mu);
    free(s.block);
    return 0;
}
