from conftest import Repo


def test_direct_commit_on_main_is_blocked_and_dev_is_open(repo: Repo) -> None:
    repo.write("model/net.py", "NET = 2\n")
    blocked = repo.commit("feat: tweak", check=False)
    assert blocked.returncode == 1
    assert "main-protected" in blocked.stderr and "model/net.py" in blocked.stderr
    repo.git("stash")
    repo.git("switch", "dev")
    repo.git("stash", "pop")
    assert repo.commit("feat: tweak").returncode == 0
