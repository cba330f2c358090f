"""Machinery every algorithm shares: configs, run directories, logging, evaluation, spaces."""
