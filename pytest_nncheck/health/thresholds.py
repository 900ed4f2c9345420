"""The numbers the training-health judges use, each with its source and the benchmark that set it.

"The zoo" is ``tests/health/zoo.py``: healthy and sick runs that ``benchmarks/health.py`` and the
tests train; a value "chosen on the zoo" is one at which every sick run is caught with its code and
no healthy run raises a problem (the figures are in README.md, "Benchmarks").
"""

# Vanishing gradients, AUTOTRAINER (Zhang et al., ICSE 2021, beta_1 and beta_2): the first
# layer's gradient norm is below 1e-3 of the last layer's and below 1e-4 in absolute terms. Kept
# as published: on the zoo the sick runs sit at ratios below 1e-6, the healthy ones above 1e-2.
VANISHING_RATIO = 1e-3
VANISHING_FIRST_NORM = 1e-4

# Exploding gradients, AUTOTRAINER (beta_3): first/last-layer gradient-norm ratio above 70.
EXPLODING_RATIO = 70.0

# Exploding gradients, our addition for homogeneous (ReLU) networks, where scaling every weight
# up leaves AUTOTRAINER's first/last ratio unchanged: a gradient norm above 2x the weight's own
# norm in at least two weight tensors. One is not enough: the output layer's gradient follows the
# loss's scale (MSE on large targets, a zero-initialised head reach 8x..93x on correct models of
# the recipe zoo, every other weight there at most 0.1). Zoo: healthy runs at most 0.6 anywhere;
# a ReLU net initialised 6x too large 6.3..9.0 in its hidden layers and 50 in its last.
EXPLODING_GRADIENT_TO_WEIGHT = 2.0
EXPLODING_LAYERS = 2

# Dying ReLU, AUTOTRAINER (gamma): 70% of a layer's units are zero for the whole batch. AUTOTRAINER
# counts zero gradient entries over the whole network; we count units that never fire, per layer,
# which a healthy network keeps near 0 (zoo: at most 0.16 on healthy runs).
DEAD_FRACTION = 0.7

# Saturation, DeepDiagnosis (Wardat et al., ICSE 2022): more than half of the tanh/sigmoid
# pre-activations lie beyond +-5, where the derivative is below 0.007 (sigmoid) / 2e-4 (tanh).
SATURATION_PREACTIVATION = 5.0
SATURATED_FRACTION = 0.5

# Update/weight ratio, CS231n "Neural Networks Part 3": about 1e-3 is healthy; much lower means
# the learning rate is too low, much higher too high. Judged on matrices and kernels only. Low:
# the median over the run below 1e-5 (zoo: healthy runs >= 2.6e-3, lr 1e-7 and SGD 1e-4 runs
# <= 1.2e-5 for their smallest layer). High: the largest ratio above 0.5 (a step that moves a
# weight by half its norm) for PERSISTENT_SAMPLES samples in a row; Adam at lr 1e-3 on small
# layers gives 1e-2..6e-2 (zoo), Adam at lr 1 gives 7..14 in its first steps.
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 0.5

# A problem seen in this many consecutive samples is reported (a one-step spike is not a trend).
PERSISTENT_SAMPLES = 3

# Loss shape, CS231n's loss-curve sketch ("very high learning rate" explodes, "low" decreases
# slowly). Diverged: a loss this many times the initial one (AUTOTRAINER flags 1e5 in absolute
# terms; a ratio works for any loss scale).
DIVERGED_FACTOR = 10.0
# Not decreasing: the last tenth of the run is within 1% of the first tenth (chosen on the zoo:
# healthy runs fall by >= 20% in 60 steps, lr 1e-7 by < 0.01%).
NOT_DECREASING_FRACTION = 0.01
# Oscillating (AUTOTRAINER's "unstable" rule on accuracy, zeta = 0.03 and eta = 0.2, applied to the
# loss): over the second half of the run, at least 20% of the steps rise by more than 3% of the
# initial loss.
OSCILLATION_RISE = 0.03
OSCILLATION_SHARE = 0.2
# Runs shorter than this many losses are not judged on their shape.
MIN_LOSSES = 10

# Overfitting, Karpathy's recipe ("overfit, then regularize") and CS231n's train/validation gap:
# the validation loss has risen 10% above its best while the training loss kept falling.
OVERFIT_RISE = 0.10
