"""Every bad-argument class of every `parascale` subcommand is refused before any work:
exit status 2, one line on stderr naming the option, no traceback, nothing written
(the output folder is byte-for-byte as before, hidden files included) and the inputs
untouched.

The options of each subcommand (parascale_blender/cli/<command>.py) and the classes tried:
  measure   --track (missing) --video (text file, missing) --format/--estimator/--preset
            (bad choice) --offset (negative) --size (zero, malformed, huge) --images
            (missing) --json (a folder, read-only file, read-only folder, = --track)
  transfer  reference (none, both) --track (missing) --video (text) --source-blend (not
            a .blend) --target (not a .blend, missing) --estimator/--method/--depth
            --format (choice) --depth-size (zero, 1x1, huge, malformed) --start-frame (negative,
            100000000, past the scene's end) --end-frame (before the start, past the end)
            --camera (no such object) --result-name (blank, 64 characters) --output (folder,
            read-only, not .blend, = target)
            --report (folder, read-only folder, = --output)
  export    --blend (text, missing) --format (choice) --frames (100000000, 1, -3)
            --frame-range (reversed, negative, outside the keyed frames) --depth-size (0x0)
            --size (0x0, malformed, huge)
            --output (folder for a file format, read-only file, a file for a folder format,
            a folder of the user's files, = --blend) --scene/--camera (no such)
  evaluate  --blend (text) --render-size (0, -5, 10**6) --samples (-3, 0) --reference
            (missing) --format (unknown) --video (text) --frames-dir (a file) --json (folder, read-only)
            --preview (not a video name, a folder, in a read-only folder)
  track     VIDEO (missing) --out (a file) --max-image-size (negative) --mapper (choice)
            --fps (not a rate, zero); the lens options of track, measure and transfer (out of range)
  batch     JOBS.csv (missing, a bad kind) --workers (0) --out (a file, read-only, a folder of the
            user's files) --address (malformed, nobody there)
  bench     --json (folder) --only (choice)
  demo      --out (a file, read-only folder)
"""
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs in their own folder: a reference and a target .blend (frames 1..12, the
    camera keyed 1..12), a RealEstate10K track, a text file, a tiny video."""
    bpy = pytest.importorskip("bpy")
    cv2 = pytest.importorskip("cv2")
    from blender_scenes import save_reference_and_target

    from analytic_scenes import reference_move
    from parascale.core.formats import writers
    from parascale.core.cameras import Track

    d = tmp_path_factory.mktemp("inputs")
    save_reference_and_target(bpy, d)
    c2w = reference_move(12)
    K = np.array([[300.0, 0, 160], [0, 300, 90], [0, 0, 1]])
    writers.write_re10k(Track(c2w=c2w, K=K, width=320, height=180, times=np.arange(12) / 24), d / "track.txt")
    (d / "notes.txt").write_text("not a video, not a scene\n" * 40)
    (d / "jobs.csv").write_text("id,kind,video,track,target,camera\na,measure,clip.mp4,track.txt,,\n")
    (d / "bad_jobs.csv").write_text("id,kind,video,track,target,camera\na,mesure,clip.mp4,track.txt,,\n")
    vw = cv2.VideoWriter(str(d / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 24, (64, 36))
    rng = np.random.default_rng(0)
    for _ in range(12):
        vw.write(rng.integers(0, 255, (36, 64, 3), dtype=np.uint8))
    vw.release()
    huge = d / "huge_frames"  # PNG headers declaring 100000x100000 (a few bytes each)
    huge.mkdir()
    for i in range(12):
        (huge / f"frame_{i:03d}.png").write_bytes(png_header(100000, 100000))
    return d


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height (8-bit RGB), with a token IDAT."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def out(tmp_path):
    """An output folder with an old result, a folder, a read-only file and folder, a
    folder of the user's own files."""
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_folder.mp4").mkdir()
    ro = tmp_path / "readonly.json"
    ro.write_text("{}")
    ro.chmod(0o444)
    (tmp_path / "ro_dir").mkdir()
    (tmp_path / "ro_dir").chmod(0o555)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"\xff\xd8 the user's photo")
    yield tmp_path
    (tmp_path / "ro_dir").chmod(0o755)


def snapshot(folder: Path) -> dict:
    """Every path under folder (hidden ones too) with its bytes and mode."""
    out = {}
    for root, dirs, names in os.walk(folder):
        for n in dirs + names:
            p = Path(root) / n
            st = p.stat()
            out[str(p.relative_to(folder))] = (stat.S_IMODE(st.st_mode),
                                                p.read_bytes() if p.is_file() else None)
    return out


def refused(capsys, argv, expect, folders):
    """Run `parascale argv` in process; assert the one-line refusal and that nothing
    in `folders` changed."""
    from parascale.parascale_blender.cli import main

    before = [snapshot(f) for f in folders]
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"parascale {argv[0]}: error: "), err
    assert "Traceback" not in err
    assert expect in lines[0], f"{expect!r} not in {lines[0]!r}"
    assert [snapshot(f) for f in folders] == before, "something was written"
    return lines[0]


def cases(f: Path, o: Path):
    """(id, argv, expected fragment of the message)."""
    track, video, txt = f / "track.txt", f / "clip.mp4", f / "notes.txt"
    ref, target = f / "ref.blend", f / "target.blend"
    m = ["measure", "--track", track]
    mj = m + ["--json", o / "pi.json"]
    t = ["transfer", "--track", track, "--target", target]
    tj = t + ["--output", o / "out.blend", "--report", o / "report.json"]
    tb = ["transfer", "--source-blend", ref, "--source-camera", "Reference", "--target", target,
          "--output", o / "out.blend", "--report", o / "report.json"]
    e = ["export", "--blend", ref, "--camera", "Reference"]
    er = e + ["--format", "re10k", "--output", o / "poses.txt"]
    ev = ["evaluate", "--blend", ref, "--camera", "Reference", "--json", o / "eval.json"]
    return [
        # the lens options (tracking a video): shared by measure, transfer and track
        *[(f"{cmd}-{opt[2:]}-{bad}", pre + [opt, bad], opt)
          for cmd, pre in (("measure", mj), ("transfer", tj), ("track", ["track", video, "--out", o / "trk"]))
          for opt, bad in (("--focal", -3), ("--focal-y", 0), ("--fov", 200), ("--sensor", -1), ("--lens", 0))],
        ("measure-track-out-file", mj + ["--video", video, "--track-out", track], "--track-out"),
        ("transfer-track-out-file", tj + ["--track-out", track], "--track-out"),
        ("transfer-sensor-alone", tj + ["--sensor", 36], "--sensor and --lens"),
        ("track-video-missing", ["track", f / "nope.mp4", "--out", o / "trk"], "VIDEO"),
        ("track-video-huge-frames", ["track", f / "huge_frames", "--out", o / "trk"], "100000x100000"),
        ("track-out-file", ["track", video, "--out", track], "--out"),
        ("track-max-image-size", ["track", video, "--out", o / "trk", "--max-image-size", -5], "--max-image-size"),
        ("track-mapper-choice", ["track", video, "--out", o / "trk", "--mapper", "magic"], "--mapper"),
        ("track-fps-not-a-rate", ["track", video, "--out", o / "trk", "--fps", "fast"], "--fps fast: expected a frame rate"),
        ("track-fps-zero", ["track", video, "--out", o / "trk", "--fps", "0"], "--fps 0"),
        ("track-keyframes-choice", ["track", video, "--out", o / "trk", "--keyframes", "some"], "--keyframes"),
        # measure
        ("measure-track-missing", ["measure", "--track", f / "nope.txt", "--json", o / "pi.json"], "--track"),
        ("measure-video-text", mj + ["--video", txt], "not a video file"),
        ("measure-video-missing", mj + ["--video", f / "nope.mp4"], "--video"),
        ("measure-video-huge-frames", mj + ["--video", f / "huge_frames"], "100000x100000"),
        ("measure-format-choice", mj + ["--format", "xyz"], "--format"),
        ("measure-estimator-choice", mj + ["--estimator", "median"], "--estimator"),
        ("measure-preset-choice", mj + ["--preset", "slow"], "--preset"),
        ("measure-offset-negative", mj + ["--video", video, "--offset", -1], "--offset -1"),
        ("measure-size-zero", mj + ["--size", "0x0"], "--size"),
        ("measure-size-malformed", mj + ["--size", "big"], "--size"),
        ("measure-size-huge", mj + ["--size", "100000000x2"], "--size"),
        ("measure-images-missing", mj + ["--images", f / "no_images"], "--images"),
        ("measure-json-folder", m + ["--json", o / "a_folder"], "is a folder"),
        ("measure-json-readonly", m + ["--json", o / "readonly.json"], "read-only"),
        ("measure-json-readonly-dir", m + ["--json", o / "ro_dir" / "pi.json"], "read-only"),
        ("measure-json-is-track", m + ["--json", track], "the same file"),
        # transfer
        ("transfer-no-reference", ["transfer", "--target", target, "--output", o / "out.blend",
                                   "--report", o / "r.json"], "--track"),
        ("transfer-both-references", tj + ["--source-blend", ref], "--track"),
        ("transfer-track-missing", ["transfer", "--track", f / "nope.txt", "--target", target,
                                    "--output", o / "out.blend", "--report", o / "r.json"], "--track"),
        ("transfer-video-text", tj + ["--video", txt], "not a video file"),
        ("transfer-source-not-blend", ["transfer", "--source-blend", txt, "--target", target,
                                       "--output", o / "out.blend", "--report", o / "r.json"], "not a .blend"),
        ("transfer-target-not-blend", ["transfer", "--track", track, "--target", txt,
                                       "--output", o / "out.blend", "--report", o / "r.json"], "not a .blend"),
        ("transfer-target-missing", ["transfer", "--track", track, "--target", f / "nope.blend",
                                     "--output", o / "out.blend", "--report", o / "r.json"], "--target"),
        ("transfer-format-unknown", tj + ["--format", "fbx"], "--format 'fbx'"),
        ("transfer-estimator-choice", tj + ["--estimator", "median"], "--estimator"),
        ("transfer-method-choice", tj + ["--method", "median"], "--method"),
        ("transfer-realised-grid-zero", tj + ["--realised-grid", "0x0"], "--realised-grid"),
        ("transfer-depth-choice", tj + ["--depth", "lidar"], "--depth"),
        ("transfer-depth-size-zero", tj + ["--depth-size", "0x0"], "--depth-size"),
        ("transfer-depth-size-one", tj + ["--depth-size", "1x1"], "--depth-size"),
        ("transfer-depth-size-huge", tj + ["--depth-size", "100000x2"], "--depth-size"),
        ("transfer-depth-size-malformed", tj + ["--depth-size", "96"], "--depth-size"),
        ("transfer-start-negative", tj + ["--start-frame", -50], "--start-frame -50"),
        ("transfer-start-huge", tj + ["--start-frame", 100_000_000], "--start-frame 100000000"),
        ("transfer-end-before-start", tj + ["--start-frame", 5, "--end-frame", 3], "the end must be after"),
        ("transfer-start-past-scene", tj + ["--start-frame", 40], "outside the scene's frames 1..12"),
        ("transfer-end-past-scene", tj + ["--end-frame", 500], "outside the scene's frames 1..12"),
        ("transfer-blend-end-past-scene", tb + ["--end-frame", 13], "outside the scene's frames 1..12"),
        ("transfer-camera-missing", tj + ["--camera", "NoSuchCam"], "NoSuchCam"),
        ("transfer-result-name-empty", tj + ["--result-name", " "], "--result-name"),
        ("transfer-result-name-long", tj + ["--result-name", "x" * 64], "--result-name"),
        ("transfer-output-folder", t + ["--output", o / "a_folder", "--report", o / "r.json"], "--output"),
        ("transfer-output-readonly-dir", t + ["--output", o / "ro_dir" / "out.blend", "--report", o / "r.json"],
         "read-only"),
        ("transfer-output-not-blend", t + ["--output", o / "out.txt", "--report", o / "r.json"], ".blend"),
        ("transfer-output-is-target", t + ["--output", target, "--report", o / "r.json"], "the same file"),
        ("transfer-report-folder", t + ["--output", o / "out.blend", "--report", o / "a_folder"], "is a folder"),
        ("transfer-report-readonly", t + ["--output", o / "out.blend", "--report", o / "readonly.json"],
         "read-only"),
        ("transfer-report-readonly-dir", t + ["--output", o / "out.blend", "--report", o / "ro_dir" / "r.json"],
         "read-only"),
        # export
        ("export-blend-text", ["export", "--blend", txt, "--camera", "C", "--format", "re10k",
                               "--output", o / "p.txt"], "not a .blend"),
        ("export-blend-missing", ["export", "--blend", f / "nope.blend", "--camera", "C", "--format", "re10k",
                                  "--output", o / "p.txt"], "--blend"),
        ("export-format-choice", e + ["--format", "fbx", "--output", o / "p.txt"], "--format"),
        ("export-generator-unknown", er + ["--generator", "sora"], "--generator 'sora'"),
        ("export-speed-negative", er + ["--speed", -2], "--speed -2"),
        ("export-speed-nan", er + ["--speed", "nan"], "--speed nan"),
        ("export-speed-huge", er + ["--speed", "1e308"], "1e+06"),
        ("export-speed-tiny", er + ["--speed", "1e-308"], "1e-06"),
        ("export-speed-in-scene-units", er + ["--generator", "scene", "--speed", 2], "--speed"),
        ("export-frames-huge", er + ["--frames", 100_000_000], "--frames 100000000"),
        ("export-frames-one", er + ["--frames", 1], "--frames 1"),
        ("export-frames-negative", er + ["--frames", -3], "--frames -3"),
        ("export-range-reversed", er + ["--frame-range", 9, 2], "the end must be after"),
        ("export-range-negative", er + ["--frame-range", -5, 5], "--frame-range START -5"),
        ("export-range-outside-keys", er + ["--frame-range", 1, 1000], "outside the keyed frames 1..12"),
        ("export-depth-size-zero", er + ["--depth-size", "0x0"], "--depth-size"),
        ("export-size-zero", er + ["--size", "0x0"], "--size"),
        ("export-size-malformed", er + ["--size", "832"], "--size"),
        ("export-size-huge", er + ["--size", "100000x2"], "--size"),
        ("export-output-folder", e + ["--format", "re10k", "--output", o / "a_folder"], "is a folder"),
        ("export-output-readonly", e + ["--format", "nerf", "--output", o / "readonly.json"], "read-only"),
        ("export-folder-format-on-file", e + ["--format", "colmap", "--output", o / "old.json"],
         "not a folder"),
        ("export-folder-format-users-files", e + ["--format", "gen3c", "--output", o / "mine"],
         "holiday.jpg"),
        ("export-folder-format-readonly", e + ["--format", "colmap", "--output", o / "ro_dir" / "model"],
         "read-only"),
        ("export-output-is-blend", e + ["--format", "re10k", "--output", ref], "the same file"),
        ("export-scene-missing", er + ["--scene", "NoScene"], "NoScene"),
        ("export-camera-missing", ["export", "--blend", ref, "--camera", "NoSuchCam", "--format", "re10k",
                                   "--output", o / "p.txt"], "NoSuchCam"),
        # evaluate
        ("evaluate-blend-text", ["evaluate", "--blend", txt, "--camera", "C", "--json", o / "e.json"],
         "not a .blend"),
        ("evaluate-render-size-zero", ev + ["--render-size", 0], "--render-size 0"),
        ("evaluate-render-size-negative", ev + ["--render-size", -5], "--render-size -5"),
        ("evaluate-render-size-huge", ev + ["--render-size", 10 ** 6], "--render-size 1000000"),
        ("evaluate-render-size-memory", ev + ["--render-size", 65536], "GiB of memory"),
        ("evaluate-samples-negative", ev + ["--samples", -3], "--samples -3"),
        ("evaluate-samples-zero", ev + ["--samples", 0], "--samples 0"),
        ("evaluate-reference-missing", ev + ["--reference", f / "nope.txt"], "--reference"),
        ("evaluate-format-unknown", ev + ["--reference", track, "--format", "fbx"], "--format 'fbx'"),
        ("evaluate-video-text", ev + ["--reference", track, "--video", txt], "not a video file"),
        ("evaluate-frames-dir-file", ev + ["--frames-dir", o / "old.json"], "not a folder"),
        ("evaluate-json-folder", ["evaluate", "--blend", ref, "--camera", "Reference",
                                  "--json", o / "a_folder"], "is a folder"),
        ("evaluate-json-readonly", ["evaluate", "--blend", ref, "--camera", "Reference",
                                    "--json", o / "readonly.json"], "read-only"),
        ("evaluate-preview-not-video", ev + ["--preview", o / "preview.json"], "--preview"),
        ("evaluate-preview-folder", ev + ["--preview", o / "a_folder.mp4"], "is a folder"),
        ("evaluate-preview-readonly", ev + ["--preview", o / "ro_dir" / "p.mp4"], "read-only"),
        # batch (refused before Ray starts: nothing written, no cluster waited for)
        ("batch-jobs-missing", ["batch", f / "nope.csv", "--out", o / "runs"], "JOBS.csv"),
        ("batch-jobs-bad-kind", ["batch", f / "bad_jobs.csv", "--out", o / "runs"], "bad_jobs.csv:2: job a: kind"),
        ("batch-workers-zero", ["batch", f / "jobs.csv", "--out", o / "runs", "--workers", 0], "--workers 0"),
        ("batch-out-file", ["batch", f / "jobs.csv", "--out", o / "old.json"], "not a folder"),
        ("batch-out-readonly", ["batch", f / "jobs.csv", "--out", o / "ro_dir"], "read-only"),
        ("batch-out-users-files", ["batch", f / "jobs.csv", "--out", o / "mine"], "holiday.jpg"),
        ("batch-address-malformed", ["batch", f / "jobs.csv", "--out", o / "runs", "--address", "nowhere"],
         "--address 'nowhere'"),
        ("batch-address-unreachable", ["batch", f / "jobs.csv", "--out", o / "runs", "--address", "127.0.0.1:1"],
         "no Ray cluster answers"),
        # bench, demo
        ("bench-json-folder", ["bench", "--json", o / "a_folder"], "is a folder"),
        ("bench-only-choice", ["bench", "--only", "gpu"], "--only"),
        ("demo-out-file", ["demo", "--out", o / "old.json"], "not a folder"),
        ("demo-out-readonly", ["demo", "--out", o / "ro_dir"], "read-only"),
    ]


CASE_IDS = [c[0] for c in cases(Path("f"), Path("o"))]


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_argument_is_refused_before_any_work(files, out, capsys, case):
    _, argv, expect = next(c for c in cases(files, out) if c[0] == case)
    refused(capsys, argv, expect, [out, files])


def test_every_option_of_every_subcommand_is_covered():
    """A new option must get its bad-argument case here (flags and --help aside)."""
    from parascale.parascale_blender.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    tried = {(c[1][0], str(a)) for c in cases(Path("f"), Path("o")) for a in c[1] if str(a).startswith("--")}
    exempt = {"--help", "--force", "--quick", "--follow-zoom", "--stop-short", "--no-denoise", "--keep-implausible", "--progress", "--source-camera", "--camera", "--scene"}
    missing = []
    for name, p in sub.choices.items():
        for action in p._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt not in exempt and (name, opt) not in tried:
                    missing.append(f"{name} {opt}")
    assert not missing, f"options without a bad-argument case: {missing}"


@pytest.mark.parametrize("argv, expect", [
    (["transfer", "--track", "{track}", "--target", "{txt}", "--output", "{o}/out.blend",
      "--report", "{o}/r.json"], "not a .blend file"),
    (["export", "--blend", "{ref}", "--camera", "Reference", "--format", "re10k", "--output", "{o}/p.txt",
      "--frames", "100000000"], "--frames 100000000"),
    (["evaluate", "--blend", "{ref}", "--camera", "Reference", "--json", "{o}/e.json", "--render-size", "0"],
     "--render-size 0"),
    (["measure", "--track", "{track}", "--video", "{txt}", "--json", "{o}/pi.json"], "not a video file"),
])
def test_refusal_as_a_process(files, tmp_path, argv, expect):
    """The real process: status 2, one stderr line, nothing on disk."""
    argv = [a.format(track=files / "track.txt", txt=files / "notes.txt", ref=files / "ref.blend", o=tmp_path)
            for a in argv]
    r = subprocess.run([sys.executable, "-m", "parascale", *argv], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert os.listdir(tmp_path) == []


def test_colmap_export_into_the_users_fern_model_is_refused(files, data_dir, tmp_path):
    """A copy of fern's COLMAP model holds exactly the names a COLMAP export writes; no
    manifest of ParaScale's says it wrote them: exit 2, every file byte-identical."""
    import shutil

    model = tmp_path / "fern_model"
    shutil.copytree(data_dir / "llff_fern/data/nerf_llff_data/fern/colmap_text", model)
    for p in [model, *model.iterdir()]:  # the shared data is read-only; the user's copy is not
        p.chmod(0o755 if p.is_dir() else 0o644)
    before = snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "parascale", "export", "--blend", str(files / "ref.blend"),
                        "--camera", "Reference", "--format", "colmap", "--output", str(model)],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cameras.txt" in r.stderr and "--force" in r.stderr, r.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("extra, expect", [
    (["--speed", "1e308"], "1e+06"), (["--speed", "1e-308"], "1e-06"), (["--speed", "nan"], "--speed nan"),
    (["--generator", "scene", "--speed", "2"], "scene units"), (["--generator", "sora"], "sora"),
    (["--format", "colmap", "--output", "{mine}"], "holiday.jpg"),
])
def test_export_options_are_refused_before_the_scene_is_opened(files, out, extra, expect):
    """check_args, the step before bpy opens the .blend (about 450 MB), refuses them."""
    from parascale.parascale_blender.cli import build_parser
    from parascale.parascale_blender.cli.export import check_args
    from parascale.parascale_blender.cli.parser import CommandError

    argv = ["export", "--blend", str(files / "ref.blend"), "--camera", "Reference", "--format", "re10k",
            "--output", str(out / "p.txt")] + [a.format(mine=out / "mine") for a in extra]
    args = build_parser().parse_args(argv)
    with pytest.raises(CommandError, match=re.escape(expect)):
        check_args(args)


def test_export_replaces_only_what_it_wrote(files, tmp_path, capsys):
    """A file export is a set: the pose file, the bridge beside it and its manifest
    (<name>.manifest.json, listing both by size and SHA-256, written last). The user's
    file of the same name is refused (--force replaces it); a bridge the user edited is
    kept and the export says so; a folder export keeps the files the user added."""
    import hashlib
    import json

    from parascale.parascale_blender.cli import main

    e = ["export", "--blend", str(files / "ref.blend"), "--camera", "Reference"]
    poses = tmp_path / "poses.txt"
    poses.write_text("my own RealEstate10K poses\n")
    refused(capsys, e + ["--format", "re10k", "--output", poses], "--force", [tmp_path])
    assert main(e + ["--format", "re10k", "--output", str(poses), "--force"]) == 0
    man = json.loads((tmp_path / "poses.txt.manifest.json").read_text())
    listed = {x["name"]: x for x in man["files"]}
    assert sorted(listed) == ["parascale_bridge.py", "poses.txt"]
    for name, x in listed.items():
        data = (tmp_path / name).read_bytes()
        assert x["size"] == len(data) and x["sha256"] == hashlib.sha256(data).hexdigest()
    assert main(e + ["--format", "re10k", "--output", str(poses), "--frames", "5"]) == 0  # its own: replaced
    assert len(poses.read_text().splitlines()) == 6
    (tmp_path / "parascale_bridge.py").write_text("# my edited bridge\n")
    capsys.readouterr()
    assert main(e + ["--format", "re10k", "--output", str(poses)]) == 0
    assert "parascale_bridge.py" in capsys.readouterr().err
    assert (tmp_path / "parascale_bridge.py").read_text() == "# my edited bridge\n"
    poses.write_text("edited after the export\n")  # changed since ParaScale wrote it: the user's now
    refused(capsys, e + ["--format", "re10k", "--output", poses], "changed since ParaScale wrote it", [tmp_path])
    model = tmp_path / "model"
    assert main(e + ["--format", "colmap", "--output", str(model)]) == 0
    (model / "notes.md").write_text("mine")
    capsys.readouterr()
    assert main(e + ["--format", "colmap", "--output", str(model), "--frames", "4"]) == 0
    assert "notes.md" in capsys.readouterr().err and (model / "notes.md").read_text() == "mine"
