"""The rule registry: every rule class, in code order. A code is never reused for another meaning."""
from __future__ import annotations

from typing import Dict, List, Type

from .adam_without_bias_correction import AdamWithoutBiasCorrection
from .bad_step_size import BadStepSize
from .clip_after_step import ClipAfterStep
from .constant_weight_init import ConstantWeightInit
from .discarded_tensor_result import DiscardedTensorResult
from .base import Rule
from .dropout_without_scaling import DropoutWithoutScaling
from .eval_mode_missing import EvalModeMissing
from .eval_without_no_grad import EvalWithoutNoGrad
from .forward_difference import ForwardDifference
from .gradcheck_float32 import GradcheckFloat32
from .gradcheck_randomness import GradcheckRandomness
from .grid_search import GridSearch
from .linear_scale_sampling import LinearScaleSampling
from .loss_accumulated_as_tensor import LossAccumulatedAsTensor
from .missing_lr_decay import MissingLrDecay
from .missing_zero_grad import MissingZeroGrad
from .optimizer_never_stepped import OptimizerNeverStepped
from .requires_grad_typo import RequiresGradTypo
from .scheduler_misuse import SchedulerMisuse
from .sigmoid_before_bce import SigmoidBeforeBce
from .small_gaussian_init import SmallGaussianInit
from .softmax_before_cross_entropy import SoftmaxBeforeCrossEntropy
from .softmax_over_one_class import SoftmaxOverOneClass
from .softmax_without_dim import SoftmaxWithoutDim
from .unguarded_relative_error import UnguardedRelativeError
from .unshuffled_training_loader import UnshuffledTrainingLoader
from .unused_lr_decay import UnusedLrDecay
from .weight_decay_on_norm_and_bias import WeightDecayOnNormAndBias
from .zero_grad_before_step import ZeroGradBeforeStep

ALL_RULES: List[Type[Rule]] = sorted([
    GradcheckFloat32, ForwardDifference, BadStepSize, UnguardedRelativeError, GradcheckRandomness,
    MissingLrDecay, SchedulerMisuse, MissingZeroGrad, SoftmaxBeforeCrossEntropy, GridSearch,
    LinearScaleSampling, UnusedLrDecay, SigmoidBeforeBce, SoftmaxWithoutDim,
    UnshuffledTrainingLoader, EvalWithoutNoGrad, LossAccumulatedAsTensor, EvalModeMissing,
    DiscardedTensorResult, RequiresGradTypo, ZeroGradBeforeStep, ClipAfterStep,
    OptimizerNeverStepped, AdamWithoutBiasCorrection, DropoutWithoutScaling,
    SoftmaxOverOneClass, ConstantWeightInit, SmallGaussianInit, WeightDecayOnNormAndBias,
], key=lambda rule: rule.code)

BY_CODE: Dict[str, Type[Rule]] = {rule.code: rule for rule in ALL_RULES}
DEFAULT_RULES: List[Type[Rule]] = [rule for rule in ALL_RULES if rule.default]
