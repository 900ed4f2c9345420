import os
import shutil
import subprocess

import pytest
import torch

from pytest_nncheck import check_training
from pytest_nncheck.health.html import write_reports
from tests.health.zoo import ConvNet, _images, _vectors, adam, first_bias, mlp


@pytest.fixture(scope="module")
def reports():
    torch.manual_seed(0)
    conv = _images(ConvNet(), adam())
    torch.manual_seed(0)
    dead = _vectors(first_bias(mlp(), -20.0), adam())
    return {name: check_training(model, x, y, loss_fn, optimizer=optimizer, device="cpu", steps=8)
            for name, (model, x, y, loss_fn, optimizer, _) in
            (("conv net", conv), ("dead relu", dead))}


def test_page_is_self_contained_with_every_plot(reports, tmp_path):
    path = reports["dead relu"].save_html(str(tmp_path / "page.html"), title="dead relu")
    page = open(path, encoding="utf-8").read()
    assert page.count("<svg") >= 6 and "<script" not in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for heading in ("Loss", "Update / weight ratio", "Gradients per layer", "Activations per layer"):
        assert f"<h2>{heading}</h2>" in page
    activations = page.split("<h2>Activations per layer</h2>")[1]
    assert "<b>dead-relu</b>" in activations   # the problem sits beside the plot that shows it
    assert "First-layer filters" not in page
    conv = reports["conv net"].save_html(str(tmp_path / "conv.html"))
    assert "First-layer filters (conv1)" in open(conv, encoding="utf-8").read()


def test_write_reports_makes_a_page_per_run_and_an_index(reports, tmp_path):
    written = write_reports(reports, str(tmp_path / "html"))
    assert [os.path.basename(p) for p in written] == ["conv_net.html", "dead_relu.html", "index.html"]
    index = open(written[-1], encoding="utf-8").read()
    assert 'href="dead_relu.html"' in index and "dead-relu" in index


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH "
                                                             "(apt-get install chromium)")
def test_page_loads_in_headless_chromium_and_shows_the_plots(reports, tmp_path):
    path = reports["conv net"].save_html(str(tmp_path / "conv.html"))
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", f"--screenshot={shot}", "--window-size=1400,2400", f"file://{path}"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert shot.stat().st_size > 50_000   # an almost blank page compresses to a few kB
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", f"file://{path}"],
        capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<svg") >= 6 and "polyline" in dom
