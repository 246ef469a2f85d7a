"""Which chromium the browser tests use: Debian's when it is there, else Playwright's own; without either they
skip locally and fail in CI, saying how to install one."""
import pytest

from . import browser_helpers


def test_require_skips_locally_and_fails_in_ci(monkeypatch):
    browser_helpers.require(True, "never said")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="the reason"):
        browser_helpers.require(False, "the reason")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="the reason"):
        browser_helpers.require(False, "the reason")


def test_debian_chromium_first_then_path_then_playwrights_own(tmp_path, monkeypatch):
    debian = tmp_path / "usr-bin-chromium"
    debian.touch()
    on_path = str(tmp_path / "bin" / "chromium")
    monkeypatch.setattr(browser_helpers.shutil, "which", lambda name: on_path if name == "chromium" else None)
    monkeypatch.setattr(browser_helpers, "CHROMIUM", str(debian))
    assert browser_helpers.chromium_executable() == str(debian)
    monkeypatch.setattr(browser_helpers, "CHROMIUM", str(tmp_path / "absent"))
    assert browser_helpers.chromium_executable() == on_path
    monkeypatch.setattr(browser_helpers.shutil, "which", lambda name: None)
    assert browser_helpers.chromium_executable() is None  # launch() without executable_path: Playwright's own


@pytest.mark.browser
@pytest.mark.parametrize("ci", ["", "true"])
def test_without_debian_chromium_playwrights_own_or_how_to_install_one(monkeypatch, ci):
    """With no Debian chromium the browser is Playwright's own; when that is not installed either, the test skips
    (fails in CI) with a message naming both ways to install one."""
    monkeypatch.setattr(browser_helpers, "chromium_executable", lambda: None)
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    try:
        with browser_helpers.chromium() as browser:
            assert browser.version  # Playwright's own chromium is installed here
    except outcome as e:
        assert str(e).startswith("no chromium:"), e
        assert "apt-get install chromium" in str(e) and "python -m playwright install chromium" in str(e)
