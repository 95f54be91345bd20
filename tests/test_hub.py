"""The one home of other projects' weights files: the torch hub cache, first-use downloads, clear errors."""

import hashlib
from pathlib import Path

import pytest
import torch.hub
from conftest import serve_downloads

from fsth.hub import download_file, hub_checkpoint_dir


@pytest.mark.parametrize("env", [{"TORCH_HOME": "th"}, {"XDG_CACHE_HOME": "xdg"}, {}])
def test_the_cache_is_torch_hubs(env, tmp_path, monkeypatch):
    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    assert hub_checkpoint_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_a_download_arrives_whole_and_checked_or_not_at_all(tmp_path, monkeypatch):
    data = b"weights" * 1000
    serve_downloads(monkeypatch, lambda url: data)
    dest = tmp_path / "cache" / "w.pth"  # its folder is made
    download_file("https://example.invalid/w.pth", dest, hashlib.sha256(data).hexdigest()[:8])
    assert dest.read_bytes() == data
    with pytest.raises(OSError, match="checksum mismatch"):
        download_file("https://example.invalid/w.pth", tmp_path / "cache" / "v.pth", "00000000")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.pth"]  # no partial file, no v.pth

    def unreachable(url):
        raise OSError("network is unreachable")

    serve_downloads(monkeypatch, unreachable)
    with pytest.raises(OSError, match="network is unreachable"):
        download_file("https://example.invalid/u.pth", tmp_path / "cache" / "u.pth")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.pth"]
