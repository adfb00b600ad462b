"""What `cem up` hands its filing process: the settings spelled out, and the sealing setting left
unset when the parent's is (the child then decides from the same identity store as the parent:
sealed, or an older clear store kept clear), set when the parent's is set."""

from __future__ import annotations

from pathlib import Path

from cem.filing_process import child_environment
from kernel.settings import IngestSettings


def test_an_unset_sealing_setting_stays_unset_in_the_child(tmp_path: Path) -> None:
    parent = {"CEM_SEAL_PERSONAL_DATA": "", "HOME": "/home/x"}
    env = child_environment(IngestSettings(data_dir=tmp_path), parent)
    assert "CEM_SEAL_PERSONAL_DATA" not in env
    assert env["CEM_DATA_DIR"] == str(tmp_path.resolve())
    assert env["HOME"] == "/home/x"


def test_a_set_sealing_setting_is_spelled_out_for_the_child(tmp_path: Path) -> None:
    for value, spelled in ((True, "true"), (False, "false")):
        settings = IngestSettings(data_dir=tmp_path, seal_personal_data=value)
        env = child_environment(settings, {})
        assert env["CEM_SEAL_PERSONAL_DATA"] == spelled
        assert settings.sealing is value
    assert IngestSettings(data_dir=tmp_path, seal_personal_data=None).sealing  # unset: sealed
