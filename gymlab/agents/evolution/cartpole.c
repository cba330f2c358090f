/* CartPole populations, each (network, episode) pair run to its end: compiled.py's
 * `_cartpole_episodes` in C, operation for operation (its docstring says what the
 * arguments are). Built with -ffp-contract=off and without basic-block vectorisation so
 * that every float64 operation rounds as numpy's and gymnasium's do (the tests check it
 * episode by episode). Returns 0, or -1 when out of memory. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

enum { RELU, TANH, ELU, SILU, LINEAR };

int cartpole_episodes(const double *params, int64_t n_params, const int64_t *sizes,
                      int64_t n_sizes, int64_t activation, const int64_t *networks,
                      int64_t n_networks, const double *starts, int64_t n_starts,
                      int64_t max_steps, const double *norm_mean, const double *norm_std,
                      double clip, int64_t use_norm, int64_t obs_stats, double *returns,
                      int64_t *lengths, double *obs_sum, double *obs_sq_sum)
{
    const double gravity = 9.8, masscart = 1.0, masspole = 0.1, length = 0.5,
                 force_mag = 10.0, tau = 0.02;
    const double total_mass = masspole + masscart;
    const double polemass_length = masspole * length;
    const double theta_threshold = 12 * 2 * M_PI / 360;
    const int64_t n_layers = n_sizes - 1;
    int64_t width = 0;
    for (int64_t k = 0; k < n_sizes; k++)
        if (sizes[k] > width) width = sizes[k];
    double *x_in = malloc(2 * width * sizeof(double)); /* a layer's input, then the next's */
    if (x_in == NULL) return -1;
    double *x_out = x_in + width;
    for (int64_t q = 0; q < n_networks; q++) {
        const int64_t p = networks[q];
        const double *w = params + p * n_params;
        for (int64_t e = 0; e < n_starts; e++) {
            double x = starts[e * 4], x_dot = starts[e * 4 + 1];
            double theta = starts[e * 4 + 2], theta_dot = starts[e * 4 + 3];
            int64_t steps = 0;
            double episode_sum[4] = {0, 0, 0, 0}, episode_sq_sum[4] = {0, 0, 0, 0};
            for (;;) {
                /* the observation the policy sees is the float32 one */
                const double obs[4] = {(float)x, (float)x_dot, (float)theta, (float)theta_dot};
                for (int i = 0; i < 4; i++) {
                    double v = obs[i];
                    if (obs_stats) {
                        episode_sum[i] += v;
                        episode_sq_sum[i] += v * v;
                    }
                    if (use_norm) { /* ObsNorm: clip((obs - mean) / std) as float32 */
                        v = (v - norm_mean[i]) / norm_std[i];
                        v = v < -clip ? -clip : v > clip ? clip : v;
                        v = (double)(float)v;
                    }
                    x_in[i] = v;
                }
                const double *layer_w = w;
                for (int64_t layer = 0; layer < n_layers; layer++) {
                    const int64_t n_in = sizes[layer], n_out = sizes[layer + 1];
                    const double *bias = layer_w + n_in * n_out;
                    /* each output sums its inputs in order i = 0, 1, ..., then adds the bias */
                    for (int64_t j = 0; j < n_out; j++) x_out[j] = 0.0;
                    for (int64_t i = 0; i < n_in; i++) {
                        const double xi = x_in[i], *row = layer_w + i * n_out;
                        for (int64_t j = 0; j < n_out; j++) x_out[j] += xi * row[j];
                    }
                    const int hidden = layer < n_layers - 1;
                    for (int64_t j = 0; j < n_out; j++) {
                        double v = x_out[j] + bias[j];
                        if (hidden) {
                            if (activation == RELU) v = v > 0.0 ? v : 0.0;
                            else if (activation == TANH) v = tanh(v);
                            else if (activation == ELU) v = v > 0 ? v : expm1(v);
                            else if (activation == SILU) v = v / (1.0 + exp(-v));
                        }
                        x_in[j] = v;
                    }
                    layer_w = bias + n_out;
                }
                int64_t action = 0; /* argmax: the first of the largest outputs */
                for (int64_t j = 1; j < sizes[n_layers]; j++)
                    if (x_in[j] > x_in[action]) action = j;
                const double force = action == 1 ? force_mag : -force_mag;
                const double costheta = cos(theta), sintheta = sin(theta);
                const double temp =
                    (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass;
                const double thetaacc = (gravity * sintheta - costheta * temp) /
                    (length * (4.0 / 3.0 - masspole * (costheta * costheta) / total_mass));
                const double xacc = temp - polemass_length * thetaacc * costheta / total_mass;
                x = x + tau * x_dot;
                x_dot = x_dot + tau * xacc;
                theta = theta + tau * theta_dot;
                theta_dot = theta_dot + tau * thetaacc;
                steps++;
                if (fabs(x) > 2.4 || fabs(theta) > theta_threshold || steps >= max_steps) break;
            }
            returns[p * n_starts + e] = (double)steps; /* one reward per step */
            lengths[p * n_starts + e] = steps;
            if (obs_stats)
                for (int i = 0; i < 4; i++) {
                    obs_sum[p * 4 + i] += episode_sum[i];
                    obs_sq_sum[p * 4 + i] += episode_sq_sum[i];
                }
        }
    }
    free(x_in);
    return 0;
}
