"""pytest glue: options, markers, the ``nncheck`` fixture, layer collection, summary, JSON report.

Without ``--nncheck`` nothing is imported or collected (no torch import), and tests marked
``@pytest.mark.nncheck`` are skipped. All numerics live in the library; this module translates.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import time
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


class GradientCheckFailed(Exception):
    """Raised by a layer item; pytest shows the report table instead of a traceback."""

    def __init__(self, report: Any) -> None:
        super().__init__(report.render())
        self.report = report


class LayerGradientItem(pytest.Item):
    """One custom layer's gradient check: ``nncheck::mypkg.layers::Swish::gradients``."""

    def __init__(self, *, layer: Any, registered: Dict[Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = layer
        self.registered = registered
        self.example: Any = None

    def runtest(self) -> None:
        from .devices import resolve_device
        from .discovery import CannotBuild, build_example
        from .errors import NNCheckError
        from .gradients.seeded import seeded
        settings = _settings(self.config)
        record: Dict[str, Any] = {"nodeid": self.nodeid, "kind": "gradients",
                                  "layer": self.layer.qualified, "verdict": None,
                                  "max_rel_error": None, "worst_entry": None,
                                  "kinks_crossed": None, "example": None}
        self.user_properties.append((_RECORD_KEY, record))
        with seeded(settings.seed):  # the same inferred example in every process
            try:
                built, explicit = build_example(self.layer, self.registered)
            except CannotBuild as reason:
                self._skip(str(reason))
        self.example = built
        fn, *inputs = [_to(value, resolve_device(settings.device)) for value in built]
        try:
            report = self._check(fn, inputs, settings.seed)
        except NNCheckError as error:
            if explicit:
                raise
            self._skip(f"the inferred example for {self.layer.qualified} does not run "
                       f"({error}); register one explicitly")
        worst = report.worst
        record.update(verdict=report.verdict, max_rel_error=report.max_rel_error,
                      kinks_crossed=report.kinks_crossed,
                      worst_entry=worst.worst_probe if worst is not None else None)
        if report.failed:
            raise GradientCheckFailed(report)
        if report.untested or report.inconclusive:
            if explicit:
                raise GradientCheckFailed(report)
            self._skip(f"the inferred example for {self.layer.qualified} gives no verdict "
                       f"({report.verdict}): {report.notes[-1] if report.notes else ''}; "
                       f"register an example")

    def _check(self, fn: Any, inputs: List[Any], seed: int) -> Any:
        from . import check_gradients
        return check_gradients(fn, *inputs, seed=seed)

    def repr_failure(self, excinfo: Any, style: Optional[str] = None) -> str:
        if excinfo.errisinstance(GradientCheckFailed):
            report = excinfo.value.report
            text = report.render()
            if len(text.splitlines()) > MAX_FAILURE_LINES:
                text = report.render(only_problems=True, max_rows=MAX_FAILURE_LINES // 2)
            if self.config.get_terminal_writer().hasmarkup:
                from .summary import colour_report
                return colour_report(text)
            return text
        return self._short_error(excinfo)

    def _short_error(self, excinfo: Any) -> str:
        """The one-line error and the user's own frames, not ours or torch's."""
        import torch
        ours = (str(Path(__file__).parent), str(Path(torch.__file__).parent), "_pytest", "pluggy")
        frames = [entry for entry in excinfo.traceback
                  if not any(part in str(entry.path) for part in ours)]
        from .errors import first_line
        lines = [f"{self.layer.qualified}: {first_line(excinfo.value)}"]
        for entry in frames[-3:]:
            lines.append(f"  {entry.path}:{entry.lineno + 1}")
            source = entry.statement
            if source is not None:
                lines.append(f"    {str(source).strip()[:200]}")
        return "\n".join(lines)

    def reportinfo(self) -> tuple:
        path = getattr(self.layer, "path", None)
        if path is None:
            try:
                path = inspect.getsourcefile(self.layer.cls)
                line = inspect.getsourcelines(self.layer.cls)[1] - 1
            except (OSError, TypeError):
                path, line = self.layer.module, None
            return path, line, self.nodeid
        return path, self.layer.line, self.nodeid

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
        if not layers:
            self.config.stash[_EMPTY_MODULES].append(self.module_name)
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


def _in_scope(config: Any, module: str) -> bool:
    """Whether the paths pytest was given cover ``module`` (all do when none were given)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS or config.stash[_SELECTED]:
        return True
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
    if modules:
        root = NNCheckRoot.from_parent(session, name="nncheck", nodeid="nncheck", modules=modules)
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

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        settings = self.config.stash[_SETTINGS]
        if not settings.modules:
            terminalreporter.write_line(
                "nncheck: no layers were checked because nncheck_modules is not set; add "
                "nncheck_modules = [\"mypkg.layers\"] to [tool.pytest.ini_options]")
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
