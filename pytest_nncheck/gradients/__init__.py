"""Numerical gradient checking: finite differences, probe sampling, kink recording, seeding."""
from .check import assert_gradients, check_gradients

__all__ = ["assert_gradients", "check_gradients"]
