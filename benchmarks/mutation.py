"""Mutation testing of the modules where the maths lives (issue 24), with mutmut 3, per module against that
module's fast test files only. Not part of the default test run (minutes to an hour on 2 cores).

Each module is mutated in a scratch copy of the repository (``git archive`` of --src-ref, default HEAD), so a
run never touches the work tree and others' uncommitted edits are not mutated. ``--tests-ref`` takes tests/
from another commit, which is how the "before" column is measured: same source, older tests. Only the listed
functions of each file are mutated (the maths, not argument checking or logging), and each mutant runs only
the tests of the module's files that call the function (mutmut's own coverage map).

    scripts/mutation.sh                          # all modules, tests as committed, table on stdout
    scripts/mutation.sh --modules latent mesh    # some modules
    scripts/mutation.sh --tests-ref 6c3580d      # the same source against older tests
    scripts/mutation.sh --json out.json          # the counts and the surviving mutants' names, for a report
    scripts/mutation.sh --tests-ref REF --json before.json --planted          # the before column
    scripts/mutation.sh --tests-ref REF --new-tests-from HEAD --rerun-survivors before.json --json after.json
    scripts/mutation.sh --recheck before.json --new-tests-from HEAD --work W  # after, cheaply, in before's copies

Statuses: killed (a test failed), survived (all passed), timeout (counted as killed: the mutant made a test run
far past its usual time, e.g. an endless loop), no tests (no selected test calls the function).
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> the file, the functions to mutate (mutmut's names: x_name for a function, xǁClassǁname for a method)
# and the fast test files that exercise them. A listed test file that a --tests-ref lacks is left out.
MODULES: dict[str, dict] = {
    "latent": {
        "file": "gan_core/latent.py",
        "functions": ["x_sample_z", "x_lerp", "x_slerp", "x_interpolate", "x_path", "x_keyframe_path",
                      "x_along_keyframes", "x__spline", "x_prior_norm", "x_prior_centre", "x_arithmetic"],
        "tests": ["tests/test_latent.py", "tests/test_reliability_latent.py", "tests/test_maths_by_hand.py",
                  "tests/test_mutation_kills.py"],
    },
    "vae_objective": {
        "file": "gan_core/vae_objective.py",
        "functions": ["x_holdout_split", "x_spread", "x_recon_loss", "x_recon_bce", "x_generator_logits",
                      "x_batch_iou"],
        "tests": ["tests/test_vae_train.py", "tests/test_mutation_kills.py"],
        "recheck_k": "holdout or spread or reconstruction or generator_logits or batch_iou",
    },
    "mesh_readers": {
        "file": "gan_core/data/mesh_readers.py",
        "functions": ["x__read_off", "x__read_obj", "x__obj_relative", "x__read_stl", "x__read_ply",
                      "x__ply_binary_element", "x__fan"],
        "tests": ["tests/test_importers.py", "tests/test_maths_by_hand.py", "tests/test_mutation_kills.py"],
    },
    "voxelize": {
        "file": "gan_core/data/voxelize.py",
        "functions": ["x_normalize_vertices", "x_voxelize_mesh", "x__cast_rays", "x__mark_edges"],
        "tests": ["tests/test_importers.py", "tests/test_maths_by_hand.py", "tests/test_mutation_kills.py"],
    },
    "resample": {
        "file": "gan_core/data/resample.py",
        "functions": ["x_resample", "x__upsample"],
        "tests": ["tests/test_dataset.py", "tests/test_importers.py", "tests/test_mutation_kills.py"],
        "recheck_k": "resampl or upsampl or downsampl",
    },
    "mesh": {
        "file": "gan_core/mesh.py",
        "functions": ["x__frame", "x_largest_component", "x__minor_components", "x_voxels_to_mesh",
                      "x_voxels_to_cubes", "x_scaled_to"],
        "tests": ["tests/test_mesh.py", "tests/test_mutation_kills.py"],
        "recheck_k": "voxels_to or largest_component or scaled_to",
    },
    "evaluate": {
        "file": "gan_core/evaluate.py",
        "functions": ["x_iou_distances", "x_coverage_mmd", "x_one_nna", "x_generation_metrics",
                      "x_surface_points", "x_chamfer_distances", "x__to_resolution"],
        "tests": ["tests/test_evaluate.py", "tests/test_mutation_kills.py"],
    },
    "shape_metrics": {
        "file": "gan_core/shape_metrics.py",
        "functions": ["x_frechet_distance", "x_fragmented_rate", "x_tiny_threshold", "x_tiny_rate",
                      "x_class_histogram"],
        "tests": ["tests/test_judge.py", "tests/test_mutation_kills.py"],
    },
    "train (objective, D gating)": {
        "file": "gan_core/train.py",
        # the step (D's gate, the two losses' wiring), the losses, instance noise and R1; not _epoch_metrics
        # (logging and warning texts: 86 mutants at ~15 s each) nor _update_ema (mutmut skips decorated functions)
        "functions": ["xǁTrainerǁtrain_step", "xǁTrainerǁ_d_input", "xǁTrainerǁ_d_loss", "xǁTrainerǁ_g_loss",
                      "xǁTrainerǁ_r1_penalty", "xǁTrainerǁ_noise_std", "x__noisy", "x__mean_pairwise_iou"],
        "tests": ["tests/test_maths_by_hand.py", "tests/test_train.py", "tests/test_untested_behaviours.py",
                  "tests/test_mutation_kills.py"],
    },
}

# The bugs issue 24 planted by hand (mutmut's operators make none of them): each must fail the module's tests.
PLANTED = [
    {"name": "D's real and fake labels swapped", "module": "train (objective, D gating)", "file": "gan_core/train.py",
     "old": "return bce_logits(d_real, 1.0 - self.cfg.label_smoothing) + bce_logits(d_fake, 0.0)",
     "new": "return bce_logits(d_real, 0.0) + bce_logits(d_fake, 1.0 - self.cfg.label_smoothing)"},
    {"name": "slerp with t^2 for t", "module": "latent", "file": "gan_core/latent.py",
     "old": "wa, wb = np.sin((1 - t) * omega) / s, np.sin(t * omega) / s",
     "new": "wa, wb = np.sin((1 - t**2) * omega) / s, np.sin(t**2 * omega) / s"},
    {"name": "OFF reader swapping y and z", "module": "mesh_readers", "file": "gan_core/data/mesh_readers.py",
     "old": "verts = np.array(flat, dtype=np.float64).reshape(-1, 3)\n",
     "new": "verts = np.array(flat, dtype=np.float64).reshape(-1, 3)[:, [0, 2, 1]]\n"},
]

KILLED = {1, 3, -24, 24, 152, 255, 36}  # a failing test, pytest's internal error, a timeout (mutmut's codes)
SURVIVED = {0}
NO_TESTS = {5, 33}


def _git(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, **kw)


def _export(ref: str, paths: list[str], dest: Path) -> None:
    archive = _git("archive", ref, *paths, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def prepare(name: str, spec: dict, work: Path, src_ref: str, tests_ref: str | None,
            extra_tests_ref: str | None = None) -> list[str]:
    """A scratch copy with a setup.cfg for mutmut; returns the test files used."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _export(src_ref, ["gan_core", "explorer", "tests", "pyproject.toml"], work)
    if tests_ref:
        shutil.rmtree(work / "tests")
        _export(tests_ref, ["tests"], work)
    for t in spec["tests"]:
        if extra_tests_ref and not (work / t).is_file():  # a test file added later, over the older tests
            shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{extra_tests_ref}:{t}"], capture_output=True)
            if shown.returncode == 0:
                (work / t).write_bytes(shown.stdout)
    tests = [t for t in spec["tests"] if (work / t).is_file()]
    cfg = configparser.ConfigParser()
    cfg["mutmut"] = {
        "source_paths": "gan_core",
        "only_mutate": spec["file"],
        "also_copy": "explorer",
        "pytest_add_cli_args_test_selection": "\n" + "\n".join(tests),
        # one thread per test: the workers run one at a time on a machine whose cores may be busy
        "pytest_add_cli_args": "\n-p\nno:cacheprovider\n-m\nnot slow and not render",
        "timeout_multiplier": "10",
    }
    with open(work / "setup.cfg", "w") as f:
        cfg.write(f)
    (work / "mutants").mkdir()
    os.symlink(ROOT / "assets", work / "mutants" / "assets")  # the bundled registry, read only
    return tests


def run_module(name: str, spec: dict, work: Path, max_children: int, log, budget_s: float | None,
               only: list[str] | None = None) -> dict:
    module = spec["file"][:-3].replace("/", ".")
    patterns = only if only is not None else [f"{module}.{fn}__mutmut_*" for fn in spec["functions"]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
           "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *patterns],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        rc = proc.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:  # out of time: what was checked stands, the rest is "not checked"
        os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait()
    seconds = time.time() - t0
    meta = work / "mutants" / (spec["file"] + ".meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.is_file() else {}
    prefixes = tuple(f"{module}.{fn}__mutmut_" for fn in spec["functions"])
    mine = {k: v for k, v in codes.items() if k.startswith(prefixes) and (only is None or k in only)}
    checked = {k: v for k, v in mine.items() if v is not None}
    res = {"module": name, "file": spec["file"], "rc": rc, "seconds": round(seconds),
           "total": len(mine), "not_checked": len(mine) - len(checked),
           "killed": sum(v in KILLED for v in checked.values()),
           "survived": sorted(k for k, v in checked.items() if v in SURVIVED),
           "no_tests": sorted(k for k, v in checked.items() if v in NO_TESTS),
           "other": {k: v for k, v in checked.items() if v not in KILLED | SURVIVED | NO_TESTS}}
    return res


def planted(bug: dict, work: Path, src_ref: str, tests_ref: str | None, log, new_tests_from: str | None) -> dict:
    """Apply one hand-made bug to a scratch copy and run the module's test files: killed if any fails."""
    spec = MODULES[bug["module"]]
    tests = prepare(bug["module"], spec, work, src_ref, tests_ref, new_tests_from)
    f = work / bug["file"]
    text = f.read_text()
    if text.count(bug["old"]) != 1:
        raise SystemExit(f"planted bug {bug['name']!r}: the line to change is not in {bug['file']} once")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow and not render",
           *tests]
    t0 = time.time()
    clean = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if clean != 0:  # the tests fail without the bug (older tests on newer code): no verdict
        return {"bug": bug["name"], "file": bug["file"], "killed": None, "rc": clean,
                "seconds": round(time.time() - t0), "tests": tests, "note": "the tests fail without the bug"}
    f.write_text(text.replace(bug["old"], bug["new"]))
    rc = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    return {"bug": bug["name"], "file": bug["file"], "killed": rc not in (0, 5), "rc": rc,
            "seconds": round(time.time() - t0), "tests": tests}


RECHECK = """
import json, os, sys
import pytest
names, k, tests = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3:]
args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-m", "not slow and not render", "-k", k, *tests]
os.environ["MUTANT_UNDER_TEST"] = ""
if pytest.main(args) != 0:
    sys.exit("the new tests fail without a mutant")
out = {}
for n in names:  # mutmut's trampolines read MUTANT_UNDER_TEST at each call: one process for all
    os.environ["MUTANT_UNDER_TEST"] = n
    out[n] = int(pytest.main(args))
json.dump(out, open(sys.argv[1] + ".out", "w"))
"""


def recheck(name: str, before: dict, work: Path, new_ref: str, log) -> dict:
    """The 'after' column without mutmut's per-run overhead: the mutants that survived the old tests, in the
    before run's mutated copy, against the new test files only (one pytest process). A mutant the old tests did
    not kill is killed after exactly when a new test fails on it; the old tests' kills stand."""
    spec = MODULES[name]
    mutants = work / "mutants"
    new = []
    for t in spec["tests"]:
        if not (work / t).is_file():  # not in the before run's tests: a new file
            shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{new_ref}:{t}"], capture_output=True)
            if shown.returncode == 0:
                (mutants / t).write_bytes(shown.stdout)
                new.append(t)
    survivors = before["survived"]
    (mutants / "recheck.json").write_text(json.dumps(survivors))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    t0 = time.time()
    k = spec.get("recheck_k", "")  # the new tests of this module only: every mutant reruns them
    proc = subprocess.run([sys.executable, "-c", RECHECK, "recheck.json", k, *new], cwd=mutants, env=env, stdout=log,
                          stderr=subprocess.STDOUT)
    if proc.returncode != 0 or not survivors and not new:
        raise SystemExit(f"{name}: the recheck failed (rc {proc.returncode}; log {log.name})")
    codes = json.loads((mutants / "recheck.json.out").read_text())
    still = sorted(k for k, v in codes.items() if v == 0)
    r = {**before, "survived": still, "killed": before["killed"] + len(survivors) - len(still),
         "killed_now": sorted(set(survivors) - set(still)), "new_tests": new,
         "seconds": before["seconds"] + round(time.time() - t0)}
    return r


def table(results: list[dict]) -> str:
    rows = ["| module | killed / mutants | score | survived | no test | not checked | minutes |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        checked = r["total"] - r.get("not_checked", 0)
        score = f"{r['killed'] / checked:.0%}" if checked else "-"
        rows.append(f"| {r['module']} | {r['killed']} / {checked} | {score} | {len(r['survived'])} | "
                    f"{len(r['no_tests'])} | {r.get('not_checked', 0)} | {r['seconds'] / 60:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", nargs="*", default=list(MODULES), help=f"of: {', '.join(MODULES)}")
    ap.add_argument("--src-ref", default="HEAD", help="the commit whose gan_core is mutated")
    ap.add_argument("--tests-ref", help="take tests/ from this commit instead (the 'before' column)")
    ap.add_argument("--new-tests-from", metavar="REF", help="add the modules' listed test files that --tests-ref "
                    "lacks from this commit (the 'after' column: the older tests plus the new files)")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "gan3d-mutation")
    ap.add_argument("--max-children", type=int, default=1, help="parallel mutant workers (default 1)")
    ap.add_argument("--json", type=Path, help="write the results here (a rerun of some modules with the same refs "
                    "replaces theirs)")
    ap.add_argument("--budget-minutes", type=float, help="stop a module's run after this long (the rest: not checked)")
    ap.add_argument("--planted", action="store_true", help="also run the planted bugs of issue 24")
    ap.add_argument("--recheck", type=Path, metavar="JSON", help="the after column quickly: rerun only the new test "
                    "files (--new-tests-from) on the survivors of this before --json, in its --work copies")
    ap.add_argument("--rerun-survivors", type=Path, metavar="JSON",
                    help="test only the mutants that survived in this earlier --json (same --src-ref); the others "
                    "count as killed, as they were (the 'after' column: tests were only added)")
    args = ap.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown modules {unknown}; known: {list(MODULES)}")
    previous = json.loads(args.json.read_text()) if args.json and args.json.is_file() else {}
    if previous and (previous.get("src_ref"), previous.get("tests_ref")) != (args.src_ref, args.tests_ref):
        previous = {}  # another measurement: start the file afresh
    results = [r for r in previous.get("results", []) if r["module"] not in args.modules]
    bugs = [b for b in previous.get("planted", []) if not args.planted]

    def save() -> None:  # after each module, so a stopped run keeps what it measured
        if args.json:
            args.json.write_text(json.dumps({"src_ref": args.src_ref, "tests_ref": args.tests_ref,
                                             "new_tests_from": args.new_tests_from, "results": results,
                                             "planted": bugs}, indent=1, ensure_ascii=False))

    if args.recheck:  # the after column from the before run's copies: see recheck()
        before = json.loads(args.recheck.read_text())
        after = []
        for r in before["results"]:
            if r["module"] not in args.modules or not r["survived"]:
                after.append(r)
                continue
            work = args.work / r["module"].split()[0]
            with open(work / "recheck.log", "w") as log:
                after.append(recheck(r["module"], r, work, args.new_tests_from or "HEAD", log))
            print(f"== {r['module']}: {len(after[-1]['killed_now'])} of {len(r['survived'])} survivors killed by "
                  f"{' '.join(after[-1]['new_tests'])}", flush=True)
            if args.json:
                args.json.write_text(json.dumps({**before, "new_tests_from": args.new_tests_from,
                                                 "results": after + before["results"][len(after):]},
                                                indent=1, ensure_ascii=False))
        print(table(after))
        return 0
    earlier = {}
    if args.rerun_survivors:
        before = json.loads(args.rerun_survivors.read_text())
        if before["src_ref"] != args.src_ref:
            ap.error(f"{args.rerun_survivors} mutated {before['src_ref']}, not {args.src_ref}")
        earlier = {r["module"]: r for r in before["results"]}
    for name in args.modules:
        spec = MODULES[name]
        work = args.work / name.split()[0]
        tests = prepare(name, spec, work, args.src_ref, args.tests_ref, args.new_tests_from)
        only = None
        if args.rerun_survivors:
            if name not in earlier:
                print(f"== {name}: not in {args.rerun_survivors}, skipped", flush=True)
                continue
            only = earlier[name]["survived"]
        print(f"== {name}: {spec['file']} against {' '.join(tests)}"
              + (f" ({len(only)} survivors of {args.rerun_survivors.name})" if only is not None else ""), flush=True)
        with open(work / "mutmut.log", "w") as log:
            r = run_module(name, spec, work, args.max_children, log,
                           args.budget_minutes * 60 if args.budget_minutes else None, only) if only != [] else {
                "module": name, "file": spec["file"], "rc": 0, "seconds": 0, "total": 0, "not_checked": 0,
                "killed": 0, "survived": [], "no_tests": [], "other": {}}
        if only is not None:  # a mutant killed before stays killed: tests were only added; count it so
            e = earlier[name]
            r["total"] += e["total"] - len(only)
            r["killed"] += e["killed"]
            r["no_tests"] = sorted(set(r["no_tests"]) | set(e["no_tests"]))
            r["other"] = {**e["other"], **r["other"]}
            r["not_checked"] += e.get("not_checked", 0)
            r["killed_now"] = sorted(set(only) - set(r["survived"]) - set(r["no_tests"]))
        r["tests"] = tests
        results.append(r)
        print(f"   {r['killed']}/{r['total'] - r['not_checked']} killed, {len(r['survived'])} survived, "
              f"{r['not_checked']} not checked, {r['seconds']} s (log: {work / 'mutmut.log'})", flush=True)
        save()
    if args.planted:
        args.work.mkdir(parents=True, exist_ok=True)
        for bug in PLANTED:
            work = args.work / "planted"
            with open(args.work / "planted.log", "a") as log:
                b = planted(bug, work, args.src_ref, args.tests_ref, log, args.new_tests_from)
            bugs.append(b)
            verdict = {True: "killed", False: "SURVIVED", None: "no verdict (the tests fail without it)"}[b["killed"]]
            print(f"== planted: {b['bug']}: {verdict} by {' '.join(b['tests'])}", flush=True)
            save()
    order = list(MODULES)
    results.sort(key=lambda r: order.index(r["module"]))
    print(table(results))
    for b in bugs:
        print(f"planted bug: {b['bug']} ({b['file']}): "
              f"{ {True: 'killed', False: 'survived', None: 'no verdict'}[b['killed']] }")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
