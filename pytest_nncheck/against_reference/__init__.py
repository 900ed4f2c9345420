"""Fused and low-precision kernels checked against a float64 reference (FlashAttention's rule)."""
from .check import assert_against_reference, check_against_reference
from .registry import RegisteredReference, reference, registered_reference

__all__ = ["RegisteredReference", "assert_against_reference", "check_against_reference",
           "reference", "registered_reference"]
