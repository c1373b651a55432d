"""`nas list`, `nas show` and `nas export`, run in-process through nas.cli.main, plus real
subprocesses for the exit-code contract: bad input is one stderr line and exit code 2."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from nas.cli import main
from space.counting import count_analytic
from space.spec import ArchSpec, save_spec
from space.zoo import get_model, list_models

B0_TF = ["r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25",
         "r2_k5_s22_e6_i24_o40_se0.25", "r3_k3_s22_e6_i40_o80_se0.25",
         "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25",
         "r1_k3_s11_e6_i192_o320_se0.25"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- list
def test_list_shows_every_zoo_model_with_params_gmacs_and_resolution(capsys) -> None:
    code, out, err = run(capsys, "list")
    assert code == 0 and err == ""
    for name in list_models():
        assert name in out
    assert re.search(r"efficientnet-b0\s+5,288,548\s+0\.40\s+224\b", out)
    assert re.search(r"efficientnet-b7\s+66,347,960\s+38\.45\s+600\b", out)
    assert re.search(r"resnet-50\s+25,557,032\s+4\.11\s+224\b", out)


def test_list_json_is_the_zoo_rows(capsys) -> None:
    code, out, err = run(capsys, "list", "--json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list_models()
    assert rows[0] == {"name": "efficientnet-b0", "params": 5_288_548, "macs": 401_659_392,
                       "resolution": 224}
    for r in rows:
        spec = get_model(r["name"])
        counts = count_analytic(spec)
        assert (r["params"], r["macs"], r["resolution"]) == (counts.params, counts.macs,
                                                             spec.resolution)


# ----------------------------------------------------------------------------- show
def test_show_prints_the_stage_table_and_totals(capsys) -> None:
    code, out, err = run(capsys, "show", "efficientnet-b0")
    assert code == 0 and err == ""
    assert "total: 5,288,548 params, 401,659,392 MACs (0.402 GMACs) at 224x224" in out
    assert re.search(r"\bstem\s+conv\s+1\s+3\s+2\s+32\s+112\s+928\b", out)
    assert re.search(r"\b5\s+mbconv\s+4\s+5\s+2\s+6\s+0\.25\s+identity\s+192\s+7\s+2,026,348\b",
                     out)
    assert "head" in out


def test_show_json_has_the_counts_hash_stages_and_spec(capsys) -> None:
    code, out, _ = run(capsys, "show", "efficientnet-b0", "--json")
    assert code == 0
    info = json.loads(out)
    spec = get_model("efficientnet-b0")
    assert (info["name"], info["params"], info["macs"], info["resolution"]) == (
        "efficientnet-b0", 5_288_548, 401_659_392, 224)
    assert info["arch_hash"] == spec.arch_hash()
    assert [row["stage"] for row in info["stages"]] == ["stem", *map(str, range(7)), "head"]
    assert sum(row["macs"] for row in info["stages"]) == info["macs"]
    assert ArchSpec.from_dict(info["spec"]) == spec
    assert "fvcore" not in info


def test_show_retargets_resolution_classes_and_channels(capsys) -> None:
    code, out, _ = run(capsys, "show", "efficientnet-b0", "--resolution", "64",
                       "--num-classes", "10", "--in-channels", "1", "--json")
    assert code == 0
    info = json.loads(out)
    expected = get_model("efficientnet-b0").with_task(in_channels=1, num_classes=10,
                                                      resolution=64)
    counts = count_analytic(expected)
    assert (info["params"], info["macs"], info["resolution"]) == (counts.params, counts.macs, 64)
    assert (info["in_channels"], info["num_classes"]) == (1, 10)
    assert ArchSpec.from_dict(info["spec"]) == expected
    assert info["arch_hash"] == expected.arch_hash() != get_model("efficientnet-b0").arch_hash()


def test_show_fvcore_agrees_and_reports_what_it_skipped(capsys) -> None:
    code, out, _ = run(capsys, "show", "mobilenet-v2", "--resolution", "32", "--fvcore",
                       "--json")
    assert code == 0
    info = json.loads(out)
    assert (info["fvcore"]["params"], info["fvcore"]["macs"]) == (info["params"], info["macs"])
    assert info["fvcore"]["uncounted_ops"]["aten::hardtanh_"] == 35  # ReLU6: counted as zero
    code, out, _ = run(capsys, "show", "mobilenet-v2", "--resolution", "32", "--fvcore")
    assert "(equal to the analytic count)" in out
    assert "fvcore did not count (taken as zero): aten::add x10, aten::hardtanh_ x35" in out


def test_show_reads_spec_files_and_run_folders(tmp_path, capsys) -> None:
    spec = get_model("mnasnet-a1").replace(name="my-net").with_task(num_classes=10)
    path = save_spec(spec, tmp_path / "my-net.json")
    save_spec(spec, tmp_path / "run" / "best.json")
    for model in (str(path), str(tmp_path / "run")):
        code, out, _ = run(capsys, "show", model, "--json")
        assert code == 0
        info = json.loads(out)
        assert info["name"] == "my-net"
        assert info["params"] == count_analytic(spec).params


# ----------------------------------------------------------------------------- export
def test_export_json_to_stdout_and_to_a_file(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, "export", "resnet-50")
    assert code == 0
    assert ArchSpec.from_json(out) == get_model("resnet-50")
    target = tmp_path / "r50.json"
    code, out, _ = run(capsys, "export", "resnet-50", "--format", "json", "-o", str(target))
    assert code == 0 and out == ""
    assert ArchSpec.from_json(target.read_text()) == get_model("resnet-50")


def test_export_out_and_its_old_name_output(tmp_path, capsys) -> None:
    for flag in ("--out", "--output"):  # --output: 0.1's name, kept hidden
        target = tmp_path / f"b0{flag}.txt"
        code, out, _ = run(capsys, "export", "efficientnet-b0", "--format", "tf", flag,
                           str(target))
        assert code == 0 and out == ""
        assert target.read_text().splitlines() == B0_TF
    parser_help = subprocess.run([sys.executable, "-m", "nas.cli", "export", "--help"],
                                 capture_output=True, text=True, timeout=120).stdout
    assert "-o FILE, --out FILE" in parser_help and "--output" not in parser_help


@pytest.mark.parametrize("fmt", ["json", "timm", "tf"])
def test_export_json_wraps_the_text_with_format_and_model(fmt, tmp_path, capsys) -> None:
    spec = get_model("efficientnet-b0")
    code, plain, _ = run(capsys, "export", "efficientnet-b0", "--format", fmt)
    assert code == 0
    code, out, _ = run(capsys, "export", "efficientnet-b0", "--format", fmt, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc == {"format": fmt, "model": "efficientnet-b0", "text": plain[:-1]}
    if fmt == "json":
        assert ArchSpec.from_json(doc["text"]) == spec
    target = tmp_path / "b0.json"
    assert run(capsys, "export", "efficientnet-b0", "--format", fmt, "--json", "-o",
               str(target))[0] == 0
    assert json.loads(target.read_text()) == doc


def test_export_tf_and_timm(capsys) -> None:
    code, out, _ = run(capsys, "export", "efficientnet-b0", "--format", "tf")
    assert code == 0
    assert out.splitlines() == B0_TF
    code, out, _ = run(capsys, "export", "efficientnet-b0", "--format", "timm")
    assert code == 0
    timm = json.loads(out)
    assert timm["arch_def"][1] == ["ir_r2_k3_s2_e6_c24_se0.25"]
    assert (timm["stem_size"], timm["num_features"], timm["act_layer"]) == (32, 1280, "silu")


# ----------------------------------------------------------------------------- bad input
@pytest.fixture()
def bad_files(tmp_path) -> dict[str, str]:
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", ')
    d = get_model("efficientnet-b0").to_dict()
    d["stages"][3]["kernel"] = 4
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(d))
    return {"broken": str(broken), "invalid": str(invalid), "folder": str(tmp_path)}


@pytest.mark.parametrize("argv, message", [
    (["show", "nope"], "unknown model 'nope': not a zoo model and no such file or folder; "
                       "zoo models: efficientnet-b0, "),
    (["show", "{broken}"], "{broken}: spec is not valid JSON: "),
    (["show", "{invalid}"], "{invalid}: stages[3].kernel must be odd, got 4"),
    (["show", "{folder}"], "run folder '{folder}' has no best.json"),
    (["show", "efficientnet-b0", "--resolution", "-5"], "resolution must be >= 8, got -5"),
    (["show", "efficientnet-b0", "--num-classes", "0"], "num_classes must be >= 1, got 0"),
    (["export", "nope", "--format", "timm"], "unknown model 'nope'"),
    (["export", "{invalid}"], "{invalid}: stages[3].kernel must be odd, got 4"),
    (["export", "resnet-50", "--format", "tf"],
     "stages[0].block must be one of mbconv, dsconv for TF EfficientNet block strings"),
], ids=["unknown", "broken-json", "invalid-field", "empty-folder", "negative-resolution",
        "zero-classes", "export-unknown", "export-invalid", "tf-bottleneck"])
def test_bad_input_is_one_line_and_exit_2(argv, message, bad_files, capsys) -> None:
    argv = [a.format(**bad_files) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nas: error: " + message.format(**bad_files))


@pytest.mark.parametrize("argv, message", [
    (["show", "nope"], "nas: error: unknown model 'nope'"),
    (["show", "efficientnet-b0", "--resolution", "-5"],
     "nas: error: resolution must be >= 8, got -5"),
])
def test_real_process_exits_2_with_one_line_and_no_traceback(argv, message) -> None:
    proc = subprocess.run([sys.executable, "-m", "nas.cli", *argv], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(message)
