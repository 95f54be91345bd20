"""fsth.files: the output checks every command makes before its long work."""

import pytest

from fsth.errors import InputError
from fsth.files import check_output_file


def test_an_output_file_is_checked_before_the_work(tmp_path):
    report = dict(suffixes=".json", kind="the report is JSON")
    assert check_output_file(tmp_path / "r.json", **report) == tmp_path / "r.json"
    assert check_output_file(str(tmp_path / "R.JSON"), **report) == tmp_path / "R.JSON"
    with pytest.raises(InputError, match=r"^-o .*r.txt: the report is JSON; name it .json$"):
        check_output_file(tmp_path / "r.txt", **report)
    video = dict(suffixes=(".mp4", ".m4v"), kind="the output is an mp4 video")
    assert check_output_file(tmp_path / "v.m4v", **video) == tmp_path / "v.m4v"
    with pytest.raises(InputError, match="name it .mp4$"):
        check_output_file(tmp_path / "v.avi", **video)
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(InputError, match="already exists; use --force"):
        check_output_file(tmp_path / "old.json", **report)
    assert check_output_file(tmp_path / "old.json", True, **report) == tmp_path / "old.json"
    with pytest.raises(InputError, match="would overwrite an input"):
        check_output_file(tmp_path / "old.json", True, inputs=[None, 0, tmp_path / "old.json"], **report)
    with pytest.raises(InputError, match=r"^--report .*r.json: output directory .*no/such does not exist$"):
        check_output_file(tmp_path / "no" / "such" / "r.json", option="--report", **report)
    (tmp_path / "d.json").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        check_output_file(tmp_path / "d.json", True, **report)
