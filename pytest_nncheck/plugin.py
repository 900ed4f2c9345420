"""pytest glue: options, markers, the ``nncheck`` fixture, layer collection, summary, JSON report.

Without ``--nncheck`` nothing is imported or collected (no torch import), and tests marked
``@pytest.mark.nncheck`` are skipped. All numerics live in the library; this module translates.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

_RECORD_KEY = "nncheck"


def pytest_addhooks(pluginmanager: Any) -> None:
    from . import hookspecs
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("nncheck", "neural-network checks (pytest-nncheck)")
    group.addoption("--nncheck", action="store_true", default=False,
                    help="run nncheck checks: gradient-check the layers in nncheck_modules and "
                         "the tests marked @pytest.mark.nncheck")
    group.addoption("--nncheck-seed", type=int, default=None, help="seed for every check (0)")
    group.addoption("--nncheck-device", choices=("auto", "cpu", "cuda"), default=None,
                    help="device for checks: auto (CUDA when present), cpu or cuda")
    group.addoption("--nncheck-report", metavar="PATH", default=None,
                    help="write a JSON report of every nncheck check to PATH")
    group.addoption("--nncheck-modules", default=None,
                    help="comma- or space-separated import paths to scan for custom layers")
    parser.addini("nncheck_seed", "seed for every nncheck check", default="0")
    parser.addini("nncheck_device", "device for nncheck checks: auto, cpu or cuda", default="auto")
    parser.addini("nncheck_modules", "import paths scanned for custom layers", type="args",
                  default=[])
    parser.addini("nncheck_report", "path of the JSON report", default="")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "nncheck: an expensive neural-network check; runs only "
                                       "under pytest --nncheck")
    if config.getoption("--nncheck") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(NNCheckReporter(config), "nncheck-reporter")


def _setting(config: Any, name: str) -> Any:
    value = config.getoption(f"--nncheck-{name}")
    return value if value is not None else config.getini(f"nncheck_{name}")


def _modules(config: Any) -> List[str]:
    option = config.getoption("--nncheck-modules")
    if option:
        return [m for m in option.replace(",", " ").split() if m]
    return list(config.getini("nncheck_modules"))


class NNCheckFixture:
    """The checks with the session's seed and device as defaults (``nncheck.assert_gradients``)."""

    def __init__(self, seed: int, device: str) -> None:
        self.seed = seed
        self.device = device

    def check_gradients(self, fn: Any, *inputs: Any, **options: Any) -> Any:
        from . import check_gradients
        return check_gradients(fn, *inputs, **{"seed": self.seed, **options})

    def assert_gradients(self, fn: Any, *inputs: Any, **options: Any) -> Any:
        from . import assert_gradients
        return assert_gradients(fn, *inputs, **{"seed": self.seed, **options})

    def check_initial_loss(self, *args: Any, **options: Any) -> Any:
        from . import check_initial_loss
        return check_initial_loss(*args, **options)

    def assert_initial_loss(self, *args: Any, **options: Any) -> Any:
        from . import assert_initial_loss
        return assert_initial_loss(*args, **options)

    def _overfit_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        options = {"seed": self.seed, "device": self.device, **options}
        if str(options["device"]).startswith("cuda"):
            import torch
            if not torch.cuda.is_available():
                pytest.skip(f"device={options['device']!r} but CUDA is not available here")
        return options

    def check_overfit(self, *args: Any, **options: Any) -> Any:
        from . import check_overfit
        return check_overfit(*args, **self._overfit_options(options))

    def assert_overfit(self, *args: Any, **options: Any) -> Any:
        from . import assert_overfit
        return assert_overfit(*args, **self._overfit_options(options))


@pytest.fixture
def nncheck(request: Any) -> NNCheckFixture:
    """The nncheck checks, seeded and placed as the session is configured."""
    config = request.config
    return NNCheckFixture(int(_setting(config, "seed")), _setting(config, "device"))


class GradientCheckFailed(Exception):
    """Raised by a layer item; pytest shows the report table instead of a traceback."""


class LayerGradientItem(pytest.Item):
    """One custom layer's gradient check: ``nncheck::mypkg.layers::Swish::gradients``."""

    def __init__(self, *, layer: Any, registered: Dict[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = layer
        self.registered = registered

    def runtest(self) -> None:
        from .discovery import CannotBuild, build_example
        from .gradients.seeded import seeded
        from .errors import NNCheckError
        from .devices import resolve_device
        record: Dict[str, Any] = {"nodeid": self.nodeid, "kind": "gradients",
                                  "layer": self.layer.qualified, "outcome": "skipped",
                                  "max_rel_error": None, "worst_entry": None,
                                  "kinks_crossed": None, "duration": 0.0}
        self.user_properties.append((_RECORD_KEY, record))
        start = time.perf_counter()
        try:
            with seeded(int(_setting(self.config, "seed"))):  # same example in every process
                try:
                    built, explicit = build_example(self.layer, self.registered)
                except CannotBuild as reason:
                    self._skip(str(reason))
            try:
                device = resolve_device(_setting(self.config, "device"))
            except NNCheckError as error:
                self._skip(str(error))
            fn, *inputs = [_to(value, device) for value in built]
            try:
                report = self._check(fn, inputs)
            except NNCheckError as error:
                if explicit:
                    record["outcome"] = "failed"
                    raise
                self._skip(f"the inferred example for {self.layer.qualified} does not run "
                           f"({error}); register one explicitly")
            worst = report.worst
            record.update(max_rel_error=report.max_rel_error, kinks_crossed=report.kinks_crossed,
                          worst_entry=worst.worst_probe if worst is not None else None,
                          outcome={"passed": "passed", "inconclusive": "inconclusive"}.get(
                              report.verdict, "failed"))
            if report.failed:
                raise GradientCheckFailed(report.render())
            if report.inconclusive:
                self._skip(report.notes[-1])
        finally:
            record["duration"] = round(time.perf_counter() - start, 6)

    def _check(self, fn: Any, inputs: List[Any]) -> Any:
        from . import check_gradients
        return check_gradients(fn, *inputs, seed=int(_setting(self.config, "seed")))

    def repr_failure(self, excinfo: Any, style: Optional[str] = None) -> str:
        if excinfo.errisinstance(GradientCheckFailed):
            if self.config.get_terminal_writer().hasmarkup:
                from .summary import colour_report
                return colour_report(str(excinfo.value))
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple:
        import inspect
        try:
            path = inspect.getsourcefile(self.layer.cls)
            line = inspect.getsourcelines(self.layer.cls)[1] - 1
        except (OSError, TypeError):
            path, line = self.layer.module, None
        return path, line, self.nodeid

    def _skip(self, reason: str) -> None:
        """Skip, reported at the layer's class definition rather than inside the plugin."""
        try:
            raise pytest.skip.Exception(reason, _use_item_location=True)
        except TypeError:  # a pytest without item locations for skips
            pytest.skip(reason)


def _to(value: Any, device: Any) -> Any:
    if hasattr(value, "to") and not isinstance(value, type):
        moved = value.to(device)
        if getattr(value, "requires_grad", False) and getattr(value, "is_leaf", False) \
                and moved is not value:
            moved = moved.detach().requires_grad_()
        return moved
    return value


class LayerClassCollector(pytest.Collector):
    """The checks of one layer class (today: its gradients)."""

    def __init__(self, *, layer: Any, registered: Dict[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = layer
        self.registered = registered

    def collect(self) -> List[Any]:
        return [LayerGradientItem.from_parent(self, name="gradients", layer=self.layer,
                                              registered=self.registered)]


class LayerModuleCollector(pytest.Collector):
    """The layer classes defined in one scanned module."""

    def __init__(self, *, module_name: str, registered: Dict[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.module_name = module_name
        self.registered = registered

    def collect(self) -> List[Any]:
        from .discovery import find_layers
        try:
            layers = find_layers(self.module_name)
        except ImportError as error:
            raise self.CollectError(
                f"cannot import {self.module_name!r} from nncheck_modules: {error}; fix the import "
                f"path in nncheck_modules (or --nncheck-modules), e.g. set pythonpath = src") \
                from error
        return [LayerClassCollector.from_parent(self, name=layer.name, layer=layer,
                                                registered=self.registered) for layer in layers]


class NNCheckRoot(pytest.Collector):
    """``nncheck``: the root of the automatically collected checks."""

    def __init__(self, *, modules: List[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.modules = modules

    def collect(self) -> List[Any]:
        registered: Dict[Any, Any] = {}
        for result in self.config.hook.pytest_nncheck_examples(config=self.config):
            registered.update(result or {})
        return [LayerModuleCollector.from_parent(self, name=name, module_name=name,
                                                 registered=registered) for name in self.modules]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: Any, config: Any, items: List[Any]) -> None:
    if not config.getoption("--nncheck"):
        skip = pytest.mark.skip(reason="nncheck check: run with pytest --nncheck")
        for item in items:
            if item.get_closest_marker("nncheck") is not None:
                item.add_marker(skip)
        return
    modules = _modules(config)
    if modules:
        root = NNCheckRoot.from_parent(session, name="nncheck", nodeid="nncheck", modules=modules)
        items.extend(session.genitems(root))


class NNCheckReporter:
    """Collects the check records (also from xdist workers) for the summary and the JSON report."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.records: List[Dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        for key, record in getattr(report, "user_properties", ()):
            if key == _RECORD_KEY and report.when == "call":
                self.records.append(dict(record))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records:
            if not _modules(self.config):
                terminalreporter.write_line(
                    "nncheck: no layers were checked because nncheck_modules is not set; add "
                    "nncheck_modules = [\"mypkg.layers\"] to [tool.pytest.ini_options]")
            return
        from .summary import render_summary
        terminalreporter.section("nncheck")
        terminalreporter.write(render_summary(self.records, terminalreporter.hasmarkup))

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        path = _setting(self.config, "report")
        if path:
            checks = sorted(self.records, key=lambda r: r["nodeid"])
            Path(path).write_text(json.dumps({"exitstatus": int(exitstatus), "checks": checks},
                                             indent=2), encoding="utf-8")
