"""Differentiable solvers: a QP (qpth), a conic program (cvxpylayers) and ODE solvers (torchdiffeq).

Their forwards run iterations whose comparisons flip under a tiny step while the output stays
smooth; their backwards are implicit (KKT systems, adjoint ODEs). Problems are feasible and
well posed: the QP's quadratic term is L Lᵀ + I (symmetric by construction, as a layer that learns
it is written), the inequalities hold strictly at a known point.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

from .case import LAYER, Case, seeded, seeded_module


def _qp_problem():
    size, inequalities = 5, 4
    factor = seeded(size, size, seed=10, scale=0.5)
    linear = seeded(size, seed=11)
    constraints = seeded(inequalities, size, seed=12)
    feasible = seeded(size, seed=13, requires_grad=False)
    bound = (constraints.detach() @ feasible + 0.5).requires_grad_()
    return factor, linear, constraints, bound


def _qp(factor, linear, constraints, bound, equality=None, target=None):
    from qpth.qp import QPFunction

    quadratic = factor @ factor.t() + torch.eye(factor.shape[0], dtype=factor.dtype)
    empty = torch.empty(0, dtype=factor.dtype)
    equality = empty if equality is None else equality
    target = empty if target is None else target
    return QPFunction(verbose=-1)(quadratic, linear, constraints, bound, equality, target)


def _qp_with_equality(factor, linear, constraints, bound, equality):
    feasible = seeded(factor.shape[0], seed=13, requires_grad=False)
    return _qp(factor, linear, constraints, bound, equality, equality @ feasible)


def _least_squares_layer(tolerance: float):
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    x = cp.Variable(4)
    design, target = cp.Parameter((6, 4)), cp.Parameter(6)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(design @ x - target) + 0.1 * cp.sum_squares(x)),
                         [x >= 0, cp.sum(x) <= 2])
    layer = CvxpyLayer(problem, parameters=[design, target], variables=[x],
                       solver_args={"eps": tolerance})
    return lambda a, b: layer(a, b)[0]


class ODEBlock(nn.Module):
    """A neural ODE block: dy/dt = MLP(y), integrated over [0, 1] (how torchdiffeq is used)."""

    def __init__(self, adjoint: bool, method: str, **options) -> None:
        super().__init__()
        self.dynamics = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))
        self.adjoint, self.method, self.options = adjoint, method, options

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.dynamics(y)

    def integrate(self, y0: torch.Tensor) -> torch.Tensor:
        from torchdiffeq import odeint, odeint_adjoint

        times = torch.tensor([0.0, 0.5, 1.0], dtype=y0.dtype)
        solve = odeint_adjoint if self.adjoint else odeint
        return solve(self, y0, times, method=self.method, **self.options)


class Integrated(nn.Module):
    """Calls ``ODEBlock.integrate``: the module under check owns the dynamics' parameters."""

    def __init__(self, block: ODEBlock) -> None:
        super().__init__()
        self.block = block

    def forward(self, y0: torch.Tensor) -> torch.Tensor:
        return self.block.integrate(y0)


def _ode(adjoint: bool, method: str, **options):
    return lambda: (seeded_module(lambda: Integrated(ODEBlock(adjoint, method, **options)), seed=14),
                    seeded(2, 3, seed=15))


def _event_time(y0: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """When a decaying state first falls to 0.5: the event time's gradient comes from the implicit
    function theorem (torchdiffeq's ImplicitFnGradientRerouting)."""
    from torchdiffeq import odeint_event

    start = torch.tensor(0.0, dtype=y0.dtype)
    event_t, _ = odeint_event(lambda t, y: -rate * y, y0, start,
                              event_fn=lambda t, y: y.sum() - 0.5, method="dopri5",
                              rtol=1e-10, atol=1e-12)
    return event_t


def _unchecked_assign(value: torch.Tensor) -> torch.Tensor:
    """Writes ``value`` into a Runge-Kutta scratch buffer, as torchdiffeq's RK step does."""
    from torchdiffeq._impl.rk_common import _UncheckedAssign

    scratch = torch.zeros(3, 4, dtype=value.dtype)
    weights = torch.arange(1.0, 5.0, dtype=value.dtype)
    return _UncheckedAssign.apply(scratch, value, (Ellipsis, 1)) * weights


def _next_after(x: torch.Tensor) -> torch.Tensor:
    from torchdiffeq._impl.misc import _nextafter

    return _nextafter(x, x + 1) * x


def cases() -> List[Case]:
    return [
        Case("qpth.QPFunction inequalities", "qpth", lambda: (_qp, *_qp_problem())),
        Case("qpth.QPFunction with equality", "qpth",
             lambda: (_qp_with_equality, *_qp_problem(), seeded(1, 5, seed=16))),
        Case("cvxpylayers.CvxpyLayer nonnegative least squares", "cvxpylayers",
             lambda: (_least_squares_layer(1e-12), seeded(6, 4, seed=17), seeded(6, seed=18))),
        Case("torchdiffeq.OdeintAdjointMethod dopri5", "torchdiffeq",
             _ode(True, "dopri5", rtol=1e-10, atol=1e-10), kind=LAYER),
        Case("torchdiffeq odeint dopri5 (_UncheckedAssign)", "torchdiffeq",
             _ode(False, "dopri5", rtol=1e-10, atol=1e-10), kind=LAYER),
        Case("torchdiffeq odeint rk4 fixed grid", "torchdiffeq",
             _ode(False, "rk4", options={"step_size": 0.1}), kind=LAYER),
        Case("torchdiffeq.ImplicitFnGradientRerouting event time", "torchdiffeq",
             lambda: (_event_time, seeded(2, seed=19, scale=0.1, shift=1.0),
                      seeded(2, seed=20, scale=0.1, shift=1.0))),
        Case("torchdiffeq._UncheckedAssign", "torchdiffeq",
             lambda: (_unchecked_assign, seeded(3, seed=21))),
        Case("torchdiffeq._StitchGradient (nextafter)", "torchdiffeq",
             lambda: (_next_after, seeded(5, seed=22))),
    ]
