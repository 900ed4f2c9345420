"""pytest glue: options, markers, the ``nncheck`` fixture, layer collection, summary, JSON report.

Without ``--nncheck`` nothing is imported or collected (no torch import), and tests marked
``@pytest.mark.nncheck`` are skipped. All numerics live in the library; this module translates.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from .settings import Settings, SettingsError, read_settings

_RECORD_KEY = "nncheck"
_CHECK_KEY = "nncheck-check"
_ID_PREFIX = "nncheck::"
_SETTINGS = pytest.StashKey[Settings]()
_SELECTED = pytest.StashKey[List[str]]()
_EMPTY_MODULES = pytest.StashKey[List[str]]()
# A failing layer shows at most this many lines: the report table, or the error and its frame.
MAX_FAILURE_LINES = 40


def pytest_addhooks(pluginmanager: Any) -> None:
    from . import hookspecs
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("nncheck", "neural-network checks (pytest-nncheck)")
    group.addoption("--nncheck", action="store_true", default=False,
                    help="run nncheck checks: gradient-check the layers in nncheck_modules and "
                         "the tests marked @pytest.mark.nncheck")
    group.addoption("--nncheck-seed", default=None, help="seed for every check (0)")
    group.addoption("--nncheck-device", default=None,
                    help="device for checks: auto (CUDA when present), cpu, cuda or cuda:N")
    group.addoption("--nncheck-report", metavar="PATH", default=None,
                    help="write a JSON report of every nncheck check to PATH")
    group.addoption("--nncheck-modules", default=None,
                    help="comma- or space-separated modules or packages to scan for custom layers")
    group.addoption("--nncheck-html", metavar="DIR", default=None,
                    help="write the training-health HTML reports to DIR")
    parser.addini("nncheck_seed", "seed for every nncheck check", default="0")
    parser.addini("nncheck_device", "device for nncheck checks: auto, cpu, cuda or cuda:N",
                  default="auto")
    parser.addini("nncheck_modules", "modules or packages scanned for custom layers", type="args",
                  default=[])
    parser.addini("nncheck_report", "path of the JSON report", default="")
    parser.addini("nncheck_html", "folder for the training-health HTML reports", default="")
    parser.addini("nncheck_exclude", "layers not to check: module.Class or Class patterns",
                  type="args", default=[])
    parser.addini("nncheck_dtypes", "dtypes fused layers are checked in against their reference "
                                    "(default: the layer's own)", type="args", default=[])


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "nncheck: an expensive neural-network check; runs only "
                                       "under pytest --nncheck")
    if not config.getoption("--nncheck"):
        return
    from . import _require_torch
    try:
        _require_torch()
        config.stash[_SETTINGS] = read_settings(config)
    except (ImportError, SettingsError) as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[_SELECTED] = [arg for arg in config.args if arg.startswith(_ID_PREFIX)]
    config.args[:] = [arg for arg in config.args if not arg.startswith(_ID_PREFIX)]
    config.stash[_EMPTY_MODULES] = []
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(NNCheckReporter(config), "nncheck-reporter")


def _settings(config: Any) -> Settings:
    if _SETTINGS not in config.stash:  # the fixture used without --nncheck: defaults, no CUDA test
        config.stash[_SETTINGS] = read_settings(config, check_device=False)
    return config.stash[_SETTINGS]


def _record_check(node: Any, name: str, report: Any) -> None:
    """What one fixture check found, kept on the test for the JSON (and HTML) report."""
    record: Dict[str, Any] = {"check": name.replace("assert_", "").replace("check_", ""),
                              "passed": bool(getattr(report, "passed", True))}
    if hasattr(report, "to_dict"):
        record["figures"] = report.to_dict()
    folder = _settings(node.config).html
    if folder and hasattr(report, "save_html"):
        from .health.html import page_name
        name = page_name(f"{node.nodeid}::{record['check']}")
        Path(folder).mkdir(parents=True, exist_ok=True)
        report.save_html(str(Path(folder) / name))
        record["html"] = name
    node.user_properties.append((_CHECK_KEY, record))


class NNCheckFixture:
    """The checks of ``pytest_nncheck`` with the session's seed and device as defaults.

    ``nncheck.assert_overfit(...)`` is ``pytest_nncheck.assert_overfit(..., seed=<session seed>,
    device=<session device>)``; every report lands in the JSON report under this test.
    """

    def __init__(self, seed: int, device: str, node: Any = None) -> None:
        self.seed = seed
        self.device = device
        self._node = node

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not name.startswith(("check_", "assert_")):
            raise AttributeError(name)
        import pytest_nncheck
        try:
            function = getattr(pytest_nncheck, name)
        except AttributeError:
            raise AttributeError(f"pytest_nncheck has no check named {name!r}") from None
        # An assert_* twin takes **options: its check_* twin says which defaults apply.
        twin = getattr(pytest_nncheck, name.replace("assert_", "check_", 1), function)
        accepted = inspect.signature(twin).parameters
        defaults = {key: value for key, value in (("seed", self.seed), ("device", self.device))
                    if key in accepted}

        def run(*args: Any, **options: Any) -> Any:
            __tracebackhide__ = True
            from .reports import CheckFailed
            try:
                report = function(*args, **{**defaults, **options})
            except CheckFailed as failure:
                if self._node is not None:
                    _record_check(self._node, name, failure.report)
                raise
            if self._node is not None:
                _record_check(self._node, name, report)
            return report

        run.__name__ = name
        return run


@pytest.fixture
def nncheck(request: Any) -> NNCheckFixture:
    """The nncheck checks, seeded and placed as the session is configured."""
    settings = _settings(request.config)
    return NNCheckFixture(settings.seed, settings.device, request.node)


class CheckFailedInItem(Exception):
    """Raised by a layer item; pytest shows the report table instead of a traceback."""

    def __init__(self, report: Any) -> None:
        super().__init__(report.render())
        self.report = report


class NNCheckItem(pytest.Item):
    """What every collected nncheck item shares: a record for the JSON report, and failures shown
    as the report's table (or the error's line and the user's frames), never our stack."""

    label = ""

    def repr_failure(self, excinfo: Any, style: Optional[str] = None) -> str:
        if excinfo.errisinstance(CheckFailedInItem):
            text = _bounded(excinfo.value.report)
            if self.config.get_terminal_writer().hasmarkup:
                from .summary import colour_report
                return colour_report(text)
            return text
        return self._short_error(excinfo)

    def _short_error(self, excinfo: Any) -> str:
        """The one-line error and the user's own frames (the example's factory, the forward),
        not ours, torch's or pytest's; followed through the chain of causes."""
        import traceback

        import torch

        from .errors import first_line
        ours = (str(Path(__file__).parent), str(Path(torch.__file__).parent), "_pytest", "pluggy")
        frames, error = [], excinfo.value
        while error is not None:
            frames += [frame for frame in traceback.extract_tb(error.__traceback__)
                       if not any(part in frame.filename for part in ours)]
            error = error.__cause__
        lines = [f"{self.label}: {first_line(excinfo.value)}"]
        for frame in frames[-3:]:
            lines.append(f"  {frame.filename}:{frame.lineno}")
            if frame.line:
                lines.append(f"    {frame.line.strip()[:200]}")
        return "\n".join(lines)

    def _skip(self, reason: str) -> None:
        """Skip, reported at the checked class rather than inside the plugin."""
        try:
            raise pytest.skip.Exception(reason, _use_item_location=True)
        except TypeError:  # a pytest without item locations for skips
            pytest.skip(reason)


def _bounded(report: Any) -> str:
    """A report's text in at most MAX_FAILURE_LINES lines: its failing rows first."""
    text = report.render()
    lines = text.splitlines()
    if len(lines) <= MAX_FAILURE_LINES:
        return text
    if "only_problems" in inspect.signature(report.render).parameters:
        return report.render(only_problems=True, max_rows=MAX_FAILURE_LINES // 2)
    return "\n".join(lines[:MAX_FAILURE_LINES - 1] + [
        f"... {len(lines) - MAX_FAILURE_LINES + 1} more lines (the JSON report has them all)"])


class LayerItem(NNCheckItem):
    """One check of one custom layer: ``nncheck::mypkg.layers::Swish::gradients`` runs
    check_gradients on its example; ``...::RMSNorm::reference[bfloat16]`` runs a fused layer
    against its registered float64 reference in one precision (``nncheck_dtypes``, by default
    the layer's own)."""

    def __init__(self, *, layer: Any, registered: Dict[Any, Any], kind: str,
                 dtype: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = layer
        self.registered = registered
        self.kind = kind
        self.dtype = dtype
        self.label = layer.qualified
        self.record: Dict[str, Any] = {"nodeid": self.nodeid, "kind": kind,
                                       "layer": layer.qualified, "verdict": None,
                                       "example": None, "excluded": False,
                                       **dict.fromkeys(_FIGURE_KEYS[kind])}

    def runtest(self) -> None:
        from .discovery import CannotBuild, build_example, excluded
        from .errors import NNCheckError
        settings = _settings(self.config)
        self.user_properties.append((_RECORD_KEY, self.record))
        reason = excluded(self.layer, settings.exclude)
        if reason is not None:
            self.record["excluded"] = True
            self._skip(f"{self.layer.qualified} is not checked: {reason}")
        try:
            example = build_example(self.layer, self.registered, seed=settings.seed)
        except CannotBuild as cannot:
            self._skip(str(cannot))
        self.record["example"] = example.description
        try:
            report = _CHECKS[self.kind](self, example, settings)
        except NNCheckError as error:
            if example.explicit:
                raise
            self._skip(f"the inferred example for {self.layer.qualified} "
                       f"({example.description}) does not run: {error}; register one explicitly")
        self.record["verdict"] = report.verdict
        self.record.update(_FIGURES[self.kind](report))
        if report.failed:
            raise CheckFailedInItem(report)
        if not report.passed:
            if example.explicit:
                raise CheckFailedInItem(report)
            self._skip(f"the inferred example for {self.layer.qualified} "
                       f"({example.description}) gives no verdict ({report.verdict}): "
                       f"{report.notes[-1] if report.notes else ''}; register an example")

    def reportinfo(self) -> tuple:
        return self.layer.path or self.layer.module, self.layer.line, self.nodeid


def _gradients(item: LayerItem, example: Any, settings: Settings) -> Any:
    from . import check_gradients
    from .devices import resolve_device
    device = resolve_device(settings.device)
    fn = _to(example.function(), device)
    inputs = [_to(value, device) for value in example.inputs]
    return check_gradients(fn, *inputs, **{"seed": settings.seed, **example.gradient_options})


def _gradient_figures(report: Any) -> Dict[str, Any]:
    worst = report.worst
    return {"max_rel_error": report.max_rel_error, "kinks_crossed": report.kinks_crossed,
            "worst_entry": worst.worst_probe if worst is not None else None}


def _reference(item: LayerItem, example: Any, settings: Settings) -> Any:
    from . import registered_reference
    return registered_reference(item.layer.cls).check(
        example.function(), *example.inputs, dtype=item.dtype or _own_dtype(example.fn),
        device=settings.device, seed=settings.seed)


def _reference_figures(report: Any) -> Dict[str, Any]:
    worst = max(report.entries, key=lambda e: e.ratio, default=None)
    return {"dtype": report.dtype, "worst_entry": worst.name if worst is not None else None,
            "worst_ratio": worst.ratio if worst is not None else None}


_FIGURE_KEYS = {"gradients": ("max_rel_error", "kinks_crossed", "worst_entry"),
                "reference": ("dtype", "worst_entry", "worst_ratio")}
_CHECKS: Dict[str, Callable[[LayerItem, Any, Settings], Any]] = {
    "gradients": _gradients, "reference": _reference}
_FIGURES: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    "gradients": _gradient_figures, "reference": _reference_figures}


def _own_dtype(fn: Any) -> str:
    """A layer's own precision: its first floating parameter's, else float32 (how it trains)."""
    for parameter in getattr(fn, "parameters", lambda: ())():
        if parameter.is_floating_point():
            return str(parameter.dtype).replace("torch.", "")
    return "float32"


def _to(value: Any, device: Any) -> Any:
    if hasattr(value, "to") and not isinstance(value, type):
        moved = value.to(device)
        if getattr(value, "requires_grad", False) and getattr(value, "is_leaf", False) \
                and moved is not value:
            moved = moved.detach().requires_grad_()
        return moved
    return value


class ModelItem(NNCheckItem):
    """``nncheck::digits.layers.DigitsNet::overfit``: one sanity, recipe or training-health
    check of a declared model (``@pytest_nncheck.model`` or the pytest_nncheck_models hook)."""

    def __init__(self, *, spec: Any, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.check = check
        self.label = spec.name
        self.record: Dict[str, Any] = {"nodeid": self.nodeid, "kind": check, "layer": spec.name,
                                       "verdict": None, "problems": None}

    def runtest(self) -> None:
        from .recipe.models import MODEL_CHECKS
        settings = _settings(self.config)
        self.user_properties.append((_RECORD_KEY, self.record))
        report = MODEL_CHECKS[self.check].run(self.spec, settings.seed, settings.device)
        self.record["verdict"] = "passed" if report.passed else "failed"
        self.record["problems"] = [str(p) for p in getattr(report, "problems", [])]
        if settings.html and hasattr(report, "save_html"):
            _record_check(self, self.check, report)
        if not report.passed:
            raise CheckFailedInItem(report)

    def reportinfo(self) -> tuple:
        try:
            path = inspect.getsourcefile(self.spec.factory)
            line = inspect.getsourcelines(self.spec.factory)[1] - 1
        except (OSError, TypeError):
            path, line = self.spec.name, None
        return path, line, self.nodeid


class ModelCollector(pytest.Collector):
    """The checks that apply to one declared model."""

    def __init__(self, *, spec: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def collect(self) -> List[Any]:
        from .recipe.models import MODEL_CHECKS
        return [ModelItem.from_parent(self, name=name, spec=self.spec, check=name)
                for name, check in MODEL_CHECKS.items() if check.applies(self.spec)]


class LayerClassCollector(pytest.Collector):
    """The checks of one layer class: its gradients, or its fused kernel against a reference."""

    def __init__(self, *, layer: Any, registered: Dict[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = layer
        self.registered = registered

    def collect(self) -> List[Any]:
        from . import registered_reference
        if registered_reference(self.layer.cls) is None:
            return [LayerItem.from_parent(self, name="gradients", layer=self.layer,
                                          registered=self.registered, kind="gradients")]
        dtypes = _settings(self.config).dtypes or [None]
        return [LayerItem.from_parent(
            self, name=f"reference[{dtype}]" if dtype else "reference", layer=self.layer,
            registered=self.registered, kind="reference", dtype=dtype) for dtype in dtypes]


class LayerModuleCollector(pytest.Collector):
    """The layer classes defined in one module."""

    def __init__(self, *, layers: List[Any], registered: Dict[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layers = layers
        self.registered = registered

    def collect(self) -> List[Any]:
        return [LayerClassCollector.from_parent(self, name=layer.name, layer=layer,
                                                registered=self.registered) for layer in self.layers]


class UnimportableModule(pytest.Collector):
    """A module of nncheck_modules that does not import: one clear collection error."""

    def __init__(self, *, error: ImportError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def collect(self) -> List[Any]:
        raise self.CollectError(
            f"cannot import {self.name!r} from nncheck_modules: {self.error}; fix the import path "
            f"in nncheck_modules (or --nncheck-modules), e.g. set pythonpath = src")


class NNCheckRoot(pytest.Collector):
    """``nncheck``: the root of the automatically collected checks, one child per module.

    A package is scanned recursively; its layers are grouped under the modules that define them
    (``nncheck::mypkg.layers::Swish``), and a class listed twice (a package and its module) is
    checked once.
    """

    def __init__(self, *, modules: List[str], specs: List[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.modules = modules
        self.specs = specs

    def collect(self) -> List[Any]:
        from .discovery import find_layers
        from .recipe.models import declared_model
        registered: Dict[Any, Any] = {}
        for result in self.config.hook.pytest_nncheck_examples(config=self.config):
            registered.update(result or {})
        children: List[Any] = []
        seen: set = set()
        specs = list(self.specs)
        by_module: Dict[str, List[Any]] = {}
        for name in self.modules:
            try:
                layers = find_layers(name, registered)
            except ImportError as error:
                children.append(UnimportableModule.from_parent(self, name=name, error=error))
                continue
            new = [layer for layer in layers if layer.cls not in seen]
            seen.update(layer.cls for layer in new)
            if not layers:
                self.config.stash[_EMPTY_MODULES].append(name)
            for layer in new:
                by_module.setdefault(layer.module, []).append(layer)
                declared = declared_model(layer.cls)
                if declared is not None and declared.name not in {s.name for s in specs}:
                    specs.append(declared)
        children += [LayerModuleCollector.from_parent(self, name=module, layers=layers,
                                                      registered=registered)
                     for module, layers in by_module.items()]
        children += [ModelCollector.from_parent(self, name=spec.name, spec=spec) for spec in specs]
        return children


def _in_scope(config: Any, module: Optional[str]) -> bool:
    """Whether the paths pytest was given cover ``module`` (all do when none were given; the
    declared models, ``None``, only then or when their node ids are given)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS or config.stash[_SELECTED]:
        return True
    if module is None:
        return False
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return True  # let collection report the import error
    if spec is None or spec.origin is None:
        return True
    origin = Path(spec.origin).resolve()
    root = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (root / arg.split("::")[0]).resolve()
        if origin == path or path in origin.parents:
            return True
    return False


def _selected(item: Any, selection: List[str]) -> bool:
    return any(item.nodeid == chosen or item.nodeid.startswith(chosen.rstrip(":") + "::")
               for chosen in selection)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: Any, config: Any, items: List[Any]) -> None:
    if not config.getoption("--nncheck"):
        skip = pytest.mark.skip(reason="nncheck check: run with pytest --nncheck")
        for item in items:
            if item.get_closest_marker("nncheck") is not None:
                item.add_marker(skip)
        return
    settings = _settings(config)
    modules = [module for module in settings.modules if _in_scope(config, module)]
    specs = [spec for found in config.hook.pytest_nncheck_models(config=config)
             for spec in (found or [])] if _in_scope(config, None) else []
    if modules or specs:
        root = NNCheckRoot.from_parent(session, name="nncheck", nodeid="nncheck", modules=modules,
                                       specs=specs)
        items.extend(session.genitems(root))
    selection = config.stash[_SELECTED]
    if selection:
        keep = [item for item in items if _selected(item, selection)
                or (config.args and not item.nodeid.startswith(_ID_PREFIX))]
        dropped = [item for item in items if item not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _reason(report: Any) -> Optional[str]:
    """A skip's reason, or a failure's text (as pytest shows it, capped)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        lines = str(report.longrepr).splitlines()
        return "\n".join(lines[:MAX_FAILURE_LINES])
    return None


class NNCheckReporter:
    """Collects a record per nncheck item (also from xdist workers), its outcome as pytest saw it."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.records: Dict[str, Dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        if not (report.nodeid.startswith(_ID_PREFIX) or "nncheck" in report.keywords):
            return
        if report.when != "call" and report.passed:
            return
        record = self.records.setdefault(report.nodeid, {
            "nodeid": report.nodeid, "kind": "test", "layer": None, "outcome": None,
            "duration": 0.0, "reason": None})
        checks = []
        for key, value in getattr(report, "user_properties", ()):
            if key == _RECORD_KEY:
                record.update(value)
            elif key == _CHECK_KEY:
                checks.append(value)
        if checks:
            record["checks"] = checks
        if record["outcome"] in (None, "passed") or not report.passed:
            record["outcome"] = report.outcome
            record["reason"] = _reason(report) or record["reason"]
        record["duration"] = round(record["duration"] + report.duration, 6)

    def checked_nothing(self) -> bool:
        """No nncheck item passed or failed: the gate would be green on nothing."""
        return not any(record["outcome"] in ("passed", "failed") for record in self.records.values())

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        settings = self.config.stash[_SETTINGS]
        if not settings.modules:
            terminalreporter.write_line(
                "nncheck: no layers were checked because nncheck_modules is not set; add "
                "nncheck_modules = [\"mypkg.layers\"] to [tool.pytest.ini_options]")
        if self.checked_nothing():
            terminalreporter.write_line(
                f"nncheck: error: --nncheck checked nothing ({len(self.records)} nncheck items, "
                f"none ran to a verdict): list your layers' packages in nncheck_modules, register "
                f"examples for skipped layers, or declare a model with @pytest_nncheck.model",
                red=True)
        if not self.records and not self.config.stash[_EMPTY_MODULES]:
            return
        from .summary import coverage_line, render_summary
        terminalreporter.section("nncheck")
        if self.records:
            terminalreporter.write(render_summary(list(self.records.values()),
                                                  terminalreporter.hasmarkup))
        for module in self.config.stash[_EMPTY_MODULES]:
            terminalreporter.write_line(f"nncheck: warning: {module} (in nncheck_modules) defines "
                                        f"no nn.Module or autograd.Function", yellow=True)
        terminalreporter.write_line(coverage_line(list(self.records.values())))

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        settings = self.config.stash[_SETTINGS]
        if self.checked_nothing() and exitstatus in (pytest.ExitCode.OK,
                                                     pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        pages = [(check["html"], record["nodeid"], check["passed"], check["figures"])
                 for record in self.records.values() for check in record.get("checks", ())
                 if check.get("html")]
        if settings.html and pages:
            from .health.html import write_index
            write_index([(page, nodeid, passed, sorted({p["code"] for p in figures["problems"]}))
                         for page, nodeid, passed, figures in pages], settings.html)
        path = settings.report
        if path:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            checks = sorted(self.records.values(), key=lambda r: r["nodeid"])
            target.write_text(json.dumps({"exitstatus": int(exitstatus), "checks": checks},
                                         indent=2, default=str), encoding="utf-8")
