"""The network-design environment: search space, builder, datasets, candidate training, env."""
