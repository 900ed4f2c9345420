"""Karpathy's recipe checks: batch independence, causality, the input-independent baseline, and
parameters that the optimizer owns and updates; and the declared models the plugin runs them on."""
