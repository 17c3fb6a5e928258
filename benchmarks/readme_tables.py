"""Generate the README's benchmark tables from ``benchmarks/results/headline.json`` (the only source of their
numbers): each block between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->`` holds the records that
:data:`BLOCKS` selects for it (``headline``: every record marked for the README; ``headline:task``: every
task-loss arm, for the README's section on translation that keeps the label; ``headline:speed``: the CPU speed
records of ``benchmarks/bench_reference.py``; ``headline:superres``: the SRGAN comparisons of
``benchmarks/bench_superres.py``).

    python benchmarks/readme_tables.py [--check]

``--check`` exits 1 if a README table differs from what headline.json gives (used by the tests).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import fmt_interval  # noqa: E402

HEADLINE = ROOT / "benchmarks" / "results" / "headline.json"
README = ROOT / "README.md"
BLOCKS = {"headline": lambda r: bool(r.get("readme")), "headline:task": lambda r: "task" in r["arm"],
          "headline:speed": lambda r: r["study"] == "speed",
          "headline:superres": lambda r: r["study"] == "superres" and r["reference_arm"] is not None}
START, END = "<!-- headline:start -->", "<!-- headline:end -->"
STUDY_ORDER = ("breast", "pneumonia5", "pneumonia10", "pneumonia100", "pneumonia5_long", "breast_resnet18_small",
               "pneumonia5_resnet18_small", "pneumonia_labels1", "pneumonia_labels5", "breast_labels25", "digits",
               "mnistm", "weather", "driving", "speed", "efficiency")
STUDY_TITLE = {
    "breast": "BreastMNIST (546 images)", "pneumonia5": "PneumoniaMNIST 5% (236)",
    "pneumonia10": "PneumoniaMNIST 10% (470)", "pneumonia100": "PneumoniaMNIST 100% (4,708)",
    "pneumonia5_long": "PneumoniaMNIST 5%, 4x cGAN steps", "breast_resnet18_small": "BreastMNIST, ResNet-18",
    "pneumonia5_resnet18_small": "PneumoniaMNIST 5%, ResNet-18", "digits": "MNIST -> USPS",
    "mnistm": "MNIST -> MNIST-M",
    "weather": "weather (shine -> rain)", "driving": "driving (clear -> fog patches)",
    "pneumonia_labels1": "PneumoniaMNIST 1% labels + pool", "pneumonia_labels5": "PneumoniaMNIST 5% labels + pool",
    "breast_labels25": "BreastMNIST 25% labels + pool", "speed": "CPU training speed",
    "efficiency": "CPU efficiency (fraction of GEMM rate)",
    "superres": "4x super-resolution", "translation_quality": "translators at equal CPU time",
}


def table(records: list[dict], select=BLOCKS["headline"]) -> str:
    rows = [r for r in records if select(r)]
    order = {s: i for i, s in enumerate(STUDY_ORDER)}
    rows.sort(key=lambda r: (order.get(r["study"], 99), r.get("readme_order", 0) if r.get("readme") else 99, r["arm"]))
    lines = ["| study | metric | arm | mean [95% CI] | compared with | difference [95% CI] | p | seeds (generators) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = "–" if r["p"] is None else f"{r['p']:.3f}"
        if r["p"] is None and r.get("note"):
            p = f"no test: {r['note']}"
        gens = f" ({r['n_generator_seeds']})" if r.get("n_generator_seeds") else ""
        arm = r["arm"] + (f" (share chosen on val; 0 in {r['chosen_share_0']} seeds)" if r.get("chosen_share_0")
                          else "")
        proto = f" ({r['protocol']})" if r.get("protocol") else ""
        lines.append(f"| {STUDY_TITLE.get(r['study'], r['study'])}{proto} | {r['metric'].replace('test_', '')} | "
                     f"{arm} | {fmt_interval(r['mean'], r['ci_low'], r['ci_high'])} | {r['reference_arm'] or '–'} | "
                     f"{fmt_interval(r['diff'], r['diff_ci_low'], r['diff_ci_high'], signed=True)} | {p} | "
                     f"{r['n_seeds']}{gens} |")
    return "\n".join(lines)


def render(readme: str, records: list[dict]) -> str:
    """``readme`` with every block of :data:`BLOCKS` it holds regenerated (the ``headline`` block is required)."""
    if START not in readme or END not in readme:
        raise ValueError(f"README: expected the markers {START} and {END}, found them missing")
    for name, select in BLOCKS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if start in readme and end in readme:
            head, rest = readme.split(start, 1)
            _, tail = rest.split(end, 1)
            readme = f"{head}{start}\n{table(records, select)}\n{end}{tail}"
    return readme


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--headline", type=Path, default=HEADLINE)
    ap.add_argument("--readme", type=Path, default=README)
    args = ap.parse_args(argv)
    records = json.loads(args.headline.read_text())["records"]
    old = args.readme.read_text()
    new = render(old, records)
    if args.check:
        if new != old:
            print("README benchmark table is out of date: run python benchmarks/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(new)
    print(f"wrote {sum(1 for r in records if r.get('readme'))} rows into {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
