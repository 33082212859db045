"""Shared by the batch tests: job lists of the real RealEstate10K clips, `parascale batch`
as a real process (Ray local, its own session so that what Ray started can be ended by
session id after a kill), the serial `parascale measure` to compare with."""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAD = "id,kind,video,track,target,camera"
TMP_MARK = ".parascale-tmp-"


def clips(data_dir: Path) -> list:
    """(clip id, pose file, video) of the ten CameraCtrl RealEstate10K clips."""
    root = data_dir / "cameractrl_realestate10k" / "assets"
    return [(p.stem, p, root / "reference_videos" / f"{p.stem}.mp4")
            for p in sorted((root / "pose_files").glob("*.txt"))]


def write_jobs(path: Path, rows) -> Path:
    """rows: (id, kind, video, track, target, camera) with None for empty cells."""
    lines = [HEAD] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def env(tmp: Path) -> dict:
    """The batch's environment: Ray's session files in a folder of the test's own, short
    (Ray's sockets live there: a path of at most 107 bytes), removed at exit."""
    ray_tmp = tempfile.mkdtemp(prefix="psray-")
    atexit.register(shutil.rmtree, ray_tmp, True)
    return dict(os.environ, RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")


def batch_argv(jobs: Path, out: Path, workers: int = 2) -> list:
    return [sys.executable, "-m", "parascale", "batch", str(jobs), "--out", str(out), "--workers", str(workers)]


def start_batch(jobs: Path, out: Path, tmp: Path, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen(batch_argv(jobs, out, workers), cwd=REPO, env=env(tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(p: subprocess.Popen, timeout: float = 600) -> tuple:
    """(returncode, stdout, stderr) of a started batch; what it left running is ended."""
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        end_session(p.pid)
    return p.returncode, out, err


def run_batch(jobs: Path, out: Path, tmp: Path, workers: int = 2, timeout: float = 600) -> tuple:
    return finish(start_batch(jobs, out, tmp, workers), timeout)


def session_pids(sid: int) -> list:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                if os.getsid(int(name)) == sid:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def end_session(sid: int) -> None:
    """SIGKILL every process left in the session a batch was started in (by its pids:
    Ray's agents outlive a killed driver)."""
    for _ in range(50):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)


def task_pid(sid: int, title: str):
    """The pid of the Ray worker in session sid whose process title is `title`."""
    for pid in session_pids(sid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmd == title:
            return pid
    return None


def serial_measure(track: Path, video: Path, out: Path) -> bytes:
    """`parascale measure --track T --video V --json OUT`, in this process (the command's
    main, as the console script runs it); returns the file's bytes."""
    from parascale.parascale_blender.cli import main

    assert main(["measure", "--track", str(track), "--video", str(video), "--json", str(out)]) == 0
    return out.read_bytes()


def records(out: Path) -> dict:
    """{id: job.json} of every finished job folder in out."""
    recs = {}
    for d in sorted(out.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and (d / "job.json").is_file():
            recs[d.name] = json.loads((d / "job.json").read_text())
    return recs


def temporaries(out: Path) -> list:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if TMP_MARK in p.name)
