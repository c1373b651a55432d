"""nas.cli.run_cli's contract: bad input is one line and exit 2, a bug is one line that says so
and exit 3 (with the traceback under -v), and --version prints the installed version."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from nas.cli import EXIT_BAD_INPUT, EXIT_BUG, is_bad_input, main
from results.rundir import RunFolderInUse
from space.errors import UnknownNameError, UsageError
from space.spec import SpecError


def _boom_key_error(args):
    del args
    return {}["x"]


def _boom_with(exc: BaseException):
    def run(args):
        del args
        raise exc

    return run


def test_a_bare_key_error_is_a_bug_one_line_exit_3(monkeypatch, capsys) -> None:
    monkeypatch.setattr("nas.commands.list_cmd.run", _boom_key_error)
    assert main(["list"]) == EXIT_BUG == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["nas: internal error: KeyError: 'x' (a bug in efficientnas; "
                                "rerun with -v for the traceback and report it)"]


def test_with_v_a_bug_prints_the_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setattr("nas.commands.list_cmd.run", _boom_key_error)
    assert main(["-v", "list"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert 'return {}["x"]' in err and "\nKeyError: 'x'\n" in err
    assert err.splitlines()[-1] == ("nas: internal error: KeyError: 'x' (a bug in efficientnas; "
                                    "please report it with the traceback above)")


@pytest.mark.parametrize("exc", [TypeError("unsupported operand"), AttributeError("no attr"),
                                 IndexError("list index out of range"), RuntimeError("boom"),
                                 ImportError("cannot import name 'x' from 'space.spec'",
                                             name="space.spec")],
                         ids=["TypeError", "AttributeError", "IndexError", "RuntimeError",
                              "ImportError-own-module"])
def test_other_programming_errors_are_bugs_too(exc, monkeypatch, capsys) -> None:
    monkeypatch.setattr("nas.commands.list_cmd.run", _boom_with(exc))
    assert main(["list"]) == EXIT_BUG
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"nas: internal error: {type(exc).__name__}: ")
    assert "rerun with -v" in lines[0]


@pytest.mark.parametrize("exc", [
    ValueError("`x > 0` must hold"), SpecError("stages[0].kernel must be odd, got 4"),
    UsageError("--a applies only with --b"), UnknownNameError("unknown sampler 'nope'"),
    FileNotFoundError("no such file"), PermissionError("denied"), IsADirectoryError("a dir"),
    ConnectionError("no network"), RunFolderInUse("run folder 'x' is in use"),
    ModuleNotFoundError("No module named 'ray'", name="ray"),
    ImportError("folder datasets need Pillow: pip install pillow"),
], ids=lambda e: type(e).__name__)
def test_bad_input_is_one_line_and_exit_2_even_with_v(exc, monkeypatch, capsys) -> None:
    assert is_bad_input(exc)
    monkeypatch.setattr("nas.commands.list_cmd.run", _boom_with(exc))
    for argv in (["list"], ["-v", "list"]):
        assert main(argv) == EXIT_BAD_INPUT == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        message = exc.args[0]
        assert err == f"nas: error: {message}\n"


def test_a_bare_key_error_is_not_bad_input_but_an_unknown_name_is() -> None:
    assert not is_bad_input(KeyError("x"))
    assert is_bad_input(UnknownNameError("unknown zoo model 'x'; known: a, b"))
    assert str(UnknownNameError("unknown x")) == "unknown x"  # no KeyError quotes


def test_registry_lookups_raise_unknown_name_error() -> None:
    from space.zoo import get_model

    with pytest.raises(UnknownNameError, match=r"^unknown zoo model 'nope'; known: "):
        get_model("nope")


@pytest.mark.parametrize("argv, start", [
    (["show", "nope-model"], "nas: error: unknown model 'nope-model': not a zoo model"),
    (["export", "efficientnet-b0", "--format", "tflite"],  # onnx is a format since issue 14
     "nas export: error: argument --format: invalid choice: 'tflite'"),
])
def test_unknown_names_in_a_real_process_exit_2_with_one_line(argv, start) -> None:
    proc = subprocess.run([sys.executable, "-m", "nas.cli", *argv], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(start)


def test_version_is_the_installed_one(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"nas {metadata.version('efficientnas')}\n"


def test_version_falls_back_to_pyproject(monkeypatch) -> None:
    import tomllib
    from pathlib import Path

    import nas.cli

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    pyproject = tomllib.loads((Path(nas.cli.__file__).parents[1] / "pyproject.toml").read_text())
    assert nas.cli.package_version() == f"{pyproject['project']['version']} (not installed)"


def test_gridsearch_has_the_same_version_flag(capsys) -> None:
    from gridsearch.cli import main as gridsearch_main

    with pytest.raises(SystemExit) as info:
        gridsearch_main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"gridsearch {metadata.version('efficientnas')}\n"



def test_a_proxy_larger_than_the_dataset_is_refused_before_any_trial(tmp_path, monkeypatch,
                                                                     capsys) -> None:
    # synthetic has 600 training images: 768 more than fit after holding out 32 would fail
    # every trial one by one; it is one line, exit 2, and no run folder instead
    monkeypatch.chdir(tmp_path)
    argv = ["search", "--target-flops", "400M", "--dataset", "synthetic", "--train-samples",
            "768", "--val-samples", "32", "--trials", "2", "--out", "r"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "train_samples=768" in err and "at most 568 remain" in err
    assert not (tmp_path / "r").exists()
