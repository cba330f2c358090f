/* The Gaussian MLP's forward and backward passes, kept for the sweeps of sweeps.c, and
 * the first layer's sums (gaussian_mlp.FirstLayer), tile by tile on kernels.h's kernels
 * (the layout of every array is kernels.h's). Built by native.py. */
#include "kernels.h"

/* The mean network's forward pass, kept for the sweeps (gaussian_mlp.GaussianMLP.forward):
 * hidden[l] and slopes[l] [tasks, steps, width[l + 1]] for each hidden layer, mean
 * [tasks, steps, A]; obs [tasks, steps, width[0]]. */
int forward(long tasks, long rows, long layers, const int *width, const float *obs,
            const float *const *weights, const float *const *weights_t,
            const float *const *biases, long use_tanh,
            float *const *hidden, float *const *slopes, float *mean) {
    if (layers < 1 || layers > MAX_LAYERS) return -2;
    for (int k = 0; k < tasks; k++) {
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            long first_row = (long)k * rows + n0;
            const float *x = obs + first_row * width[0];
            for (int l = 0; l < layers; l++) {
                int in = width[l], out = width[l + 1];
                float *z = l + 1 < layers ? hidden[l] + first_row * out : mean + first_row * out;
                const float *b = biases[l] + (long)k * out;
                for (int n = 0; n < m; n++) memcpy(z + (long)n * out, b, sizeof(float) * out);
                times_transposed(m, out, in, x, weights[l] + (long)k * in * out,
                                 weights_t[l] + (long)k * in * out, z, 1);
                if (l + 1 < layers) activate((long)m * out, use_tanh, z, slopes[l] + first_row * out);
                x = z;
            }
        }
    }
    return 0;
}

/* The backward pass from d_mean [tasks, steps, A] (gaussian_mlp.GaussianMLP.backward):
 * per layer g_w [tasks, out, in] and g_b [tasks, out]; with `deltas` (not NULL), also
 * each hidden layer's dL/dz (deltas[l]) and dL/dh (d_hidden[l]), [tasks, steps, width]. */
int backward(long tasks, long rows, long layers, const int *width,
             const float *const *inputs, const float *const *slopes,
             const float *const *weights, const float *d_mean, float *const *g_w,
             float *const *g_b, float *const *deltas, float *const *d_hidden) {
    Shape sh;
    Scratch s;
    int failed = prepare(layers, width, &sh, &s);
    if (failed) return failed;
    int act = width[layers];
    for (int k = 0; k < tasks; k++) {
        zero_gradients(&sh, k, g_w, g_b);
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            long first_row = (long)k * rows + n0;
            const float *delta = d_mean + first_row * act;
            for (int l = layers - 1; l >= 0; l--) {
                int in = width[l], out = width[l + 1];
                add_outer(m, out, in, delta, inputs[l] + first_row * in, g_w[l] + (long)k * out * in);
                add_column_sums(m, out, delta, g_b[l] + (long)k * out);
                if (l == 0) break;
                float *spare = delta == s.r_delta ? s.r_other : s.r_delta;
                float *dh = deltas ? d_hidden[l - 1] + first_row * in : spare;
                float *next = deltas ? deltas[l - 1] + first_row * in : spare;
                times(m, in, out, delta, weights[l] + (long)k * out * in, dh, 0);
                const float *slope = slopes[l - 1] + first_row * in;
                for (long i = 0; i < (long)m * in; i++) next[i] = dh[i] * slope[i];
                delta = next;
            }
        }
    }
    free(s.block);
    return 0;
}

/* gaussian_mlp.FirstLayer's sums for thin observations (d + 1 <= 64 inputs with the
 * bias's), with x~ = [x, 1], s = act'(z_0), delta = dL/dz_1, c = -2 h_0 dL/dh_0 (tanh):
 * t [tasks, H_1, H_0, d + 1] = sum_n delta[n, o] s[n, j] x~[n, i] and, for tanh, u [tasks,
 * H_0, d + 1, d + 1] = sum_n s c[n, j] x~[n, i] x~[n, i'] (u NULL for ReLU). */
int first_layer_sums(long tasks, long rows, const int *width, const float *obs,
                     const float *slope, const float *hidden, const float *d_hidden,
                     const float *delta, float *t, float *u) {
    int d = width[0], d1 = d + 1, h0 = width[1], h1 = width[2];
    if (d1 > 64) return -2;
    float *spread = malloc(sizeof(float) * TILE * h0 * d1);
    float *curve = malloc(sizeof(float) * TILE * h0);
    float *outer = malloc(sizeof(float) * TILE * d1 * d1);
    if (!spread || !curve || !outer) { free(spread); free(curve); free(outer); return -1; }
    for (int k = 0; k < tasks; k++) {
        float *tk = t + (long)k * h1 * h0 * d1, *uk = u ? u + (long)k * h0 * d1 * d1 : NULL;
        memset(tk, 0, sizeof(float) * h1 * h0 * d1);
        if (uk) memset(uk, 0, sizeof(float) * h0 * d1 * d1);
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            long first_row = (long)k * rows + n0;
            for (int n = 0; n < m; n++) {
                const float *x = obs + (first_row + n) * d;
                const float *sn = slope + (first_row + n) * h0;
                float *row = spread + (long)n * h0 * d1;
                for (int j = 0; j < h0; j++) {
                    for (int i = 0; i < d; i++) row[j * d1 + i] = sn[j] * x[i];
                    row[j * d1 + d] = sn[j];
                }
                if (uk) {
                    const float *h = hidden + (first_row + n) * h0, *dh = d_hidden + (first_row + n) * h0;
                    for (int j = 0; j < h0; j++) curve[(long)n * h0 + j] = -2 * sn[j] * h[j] * dh[j];
                    float *o = outer + (long)n * d1 * d1;
                    for (int i = 0; i < d1; i++)
                        for (int i2 = 0; i2 < d1; i2++)
                            o[i * d1 + i2] = (i < d ? x[i] : 1) * (i2 < d ? x[i2] : 1);
                }
            }
            add_outer(m, h1, h0 * d1, delta + first_row * h1, spread, tk);
            if (uk) add_outer(m, h0, d1 * d1, curve, outer, uk);
        }
    }
    free(spread); free(curve); free(outer);
    return 0;
}
