"""resolve_spec: a MODEL argument is a zoo name, a spec file or a run folder with best.json."""
from __future__ import annotations

import json

import pytest

from space.resolve import resolve_spec
from space.spec import SpecError, save_spec
from space.zoo import get_model, list_models


@pytest.mark.parametrize("name", ["efficientnet-b0", "resnet-50"])
def test_zoo_names(name: str) -> None:
    assert resolve_spec(name) == get_model(name)


def test_spec_file_and_run_folder(tmp_path) -> None:
    spec = get_model("mnasnet-a1").with_task(num_classes=10, resolution=64)
    path = save_spec(spec, tmp_path / "net.json")
    assert resolve_spec(str(path)) == spec
    save_spec(spec, tmp_path / "run" / "best.json")
    assert resolve_spec(str(tmp_path / "run")) == spec


def test_zoo_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch) -> None:
    save_spec(get_model("mobilenet-v2"), tmp_path / "resnet-50" / "best.json")
    monkeypatch.chdir(tmp_path)
    assert resolve_spec("resnet-50") == get_model("resnet-50")
    assert resolve_spec("./resnet-50") == get_model("mobilenet-v2")


def test_unknown_name_lists_the_zoo_and_the_other_forms() -> None:
    with pytest.raises(KeyError) as info:
        resolve_spec("efficientnet-b9")
    message = info.value.args[0]
    assert message.startswith("unknown model 'efficientnet-b9'")
    assert ", ".join(list_models()) in message
    assert "a path to a spec .json file or to a run folder with best.json also works" in message


def test_folder_without_best_json(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=f"run folder '{tmp_path}' has no best.json"):
        resolve_spec(str(tmp_path))


def test_broken_and_invalid_files_name_the_file_and_the_field(tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SpecError, match=f"^{broken}: spec is not valid JSON"):
        resolve_spec(str(broken))
    d = get_model("efficientnet-b0").to_dict()
    d["stages"][3]["kernel"] = 4
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(d))
    with pytest.raises(SpecError) as info:
        resolve_spec(str(invalid))
    assert str(info.value) == f"{invalid}: stages[3].kernel must be odd, got 4"


def test_empty_model_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="a model must be a zoo name or a path, got ''"):
        resolve_spec("")
