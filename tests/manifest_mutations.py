"""Mutations of ParaScale's ownership manifest (core.formats.manifest) for the fuzz suites
of the bridge (tests/bridge/test_fuzz_bridge.py) and of the folder writers
(tests/formats/test_fuzz_manifest.py): structure-aware (the "files" list replaced by a
string, integers, null; entries with names outside the folder, of the user's files,
absolute, empty, with NUL; sizes and hashes at edge values; schema and version changed;
deep nesting), then sometimes byte damage."""
import hashlib
import json
import random

USER_FILES = {"p": b"the user's p", "thesis.tex": b"years of work", "renders/take1.mp4": b"user video",
              "poses.txt": b"my own poses\n"}


def _entry(name, size=1, digest="0" * 64):
    return {"name": name, "size": size, "sha256": digest}


HOSTILE_NAMES = ["p", "thesis.tex", "renders/take1.mp4", "renders", "poses.txt", "../victim.txt", "/etc/hostname",
                 "a/../../victim.txt", ".", "..", "", "a//b", "x\x00y", "C:\\x", "x" * 5000, "manifest.json",
                 "camera_poses/../p", 5, None, ["p"], {"name": "p"}]


def mutate_manifest(r: random.Random, doc) -> str:
    """A mutated manifest.json text (structure-aware, then sometimes byte damage)."""
    doc = json.loads(json.dumps(doc))
    if r.random() < 0.3:  # still a valid manifest: it lists the user's files with made-up hashes, or is as written
        if r.random() < 0.5 and isinstance(doc.get("files"), list):
            doc["files"] += [_entry(n, len(USER_FILES[n]), r.choice(["0" * 64, "a" * 64])) for n in USER_FILES
                             if r.random() < 0.5]
        return json.dumps(doc)
    for _ in range(r.choice([1, 1, 2, 3])):
        if not isinstance(doc, dict):
            break
        op = r.randrange(12)
        if op == 0:
            doc["files"] = r.choice(["poses.txt", 1, None, {}, [1, 2], [["p"]], "p", [None], True])
        elif op == 1 and doc.get("files"):
            e = r.choice(doc["files"]) if isinstance(doc["files"], list) else None
            if isinstance(e, dict):
                e[r.choice(["name", "size", "sha256"])] = r.choice(HOSTILE_NAMES + [-1, 10 ** 400, 2 ** 53 + 1,
                                                                                    "0" * 63, "G" * 64, "A" * 64])
        elif op == 2 and isinstance(doc.get("files"), list):
            doc["files"].append(_entry(r.choice(HOSTILE_NAMES), r.choice([0, 1, 12, 13, 10 ** 20]),
                                       r.choice(["0" * 64, "f" * 64, hashlib.sha256(b"x").hexdigest()])))
        elif op == 3 and isinstance(doc.get("files"), list) and doc["files"]:
            doc["files"].append(dict(doc["files"][0]) if isinstance(doc["files"][0], dict) else 0)
        elif op == 4:
            doc["schema"] = r.choice(["parascale.poses", "", None, 1, "parascale.outputs "])
        elif op == 5:
            doc["version"] = r.choice([0, 2, 1.0, "1", True, None, 2 ** 64])
        elif op == 6:
            doc = r.choice([[], "manifest", 1, None, [doc]])
        elif op == 7 and isinstance(doc, dict) and isinstance(doc.get("files"), list) and doc["files"]:
            e = doc["files"][r.randrange(len(doc["files"]))]
            if isinstance(e, dict):
                e.pop(r.choice(["name", "size", "sha256"]), None) if r.random() < 0.5 else e.update(extra=1)
        elif op == 8 and isinstance(doc, dict):
            doc.pop(r.choice(["files", "schema", "version"]), None)
        elif op == 9 and isinstance(doc, dict):
            depth = r.choice([65, 1000, 100000])
            return '{"files": ' + "[" * depth + "]" * depth + "}"
        elif op == 10 and isinstance(doc, dict) and isinstance(doc.get("files"), list):
            doc["files"] = [_entry(n) for n in ("p", "thesis.tex", "renders/take1.mp4")]
            doc["schema"], doc["version"] = "parascale.outputs", 1
    text = json.dumps(doc)
    if r.random() < 0.15:
        b = bytearray(text.encode())
        for _ in range(r.randint(1, 4)):
            if b:
                b[r.randrange(len(b))] = r.choice([0, 0xFF, ord("["), ord("{"), ord('"'), 0x80])
        text = bytes(b).decode("utf-8", "replace") if r.random() < 0.5 else bytes(b).decode("latin-1")
    return text


